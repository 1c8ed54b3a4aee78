"""The run's state picture, its state lines and job events, driven with a fake clock."""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass, field

import jsonschema
import pytest

from snakemake_executor_plugin_prominence.run import events
from snakemake_executor_plugin_prominence.run.progress import RunProgress

REASON = "No matching resources currently available"


@dataclass
class FakeJob:
    jobid: int
    name: str = "align"
    wildcards: dict[str, str] = field(default_factory=lambda: {"sample": "S1"})
    attempt: int = 1

    def is_group(self) -> bool:
        return False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry(status: str, reason: str | None = None, **extra) -> dict:
    found = {"status": status, "events": {"createTime": 1700000000}, **extra}
    if reason is not None:
        found["statusReason"] = reason
    return found


def detail(status: str = "completed", exit_code: int = 0, site: str = "SiteA") -> dict:
    return {
        "status": status,
        "events": {"createTime": 1700000000, "startTime": 1700000010, "endTime": 1700000020},
        "execution": {"site": site, "tasks": [{"exitCode": exit_code}]},
    }


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def lines():
    return []


def make(clock, lines, **kwargs) -> RunProgress:
    kwargs.setdefault("idle_threshold", 600)
    return RunProgress(lines.append, run_id="run1", clock=clock, **kwargs)


def test_a_state_line_counts_states_sites_and_names_the_longest_waiting_job(clock, lines):
    progress = make(clock, lines)
    for pid in (11, 12, 13, 14):
        progress.submitted(pid, FakeJob(pid - 10, name="stuck" if pid == 14 else "align"))
    clock.now += 5
    progress.observe(
        {11: entry("running"), 12: entry("running"), 13: entry("idle"), 14: entry("idle")}
    )
    clock.now += 40
    progress.observe({14: entry("waiting", REASON)})
    progress.finished(11, detail(site="SiteA"), success=True)
    line = progress.report()
    assert line == (
        "PROMINENCE: 1 running, 1 idle, 1 waiting; 1 finished since the last report "
        "(1 succeeded) at SiteA 1; longest queued: PROMINENCE job 13 (rule align, job 3) "
        "idle for 45 s."
    )
    assert lines == [line]


def test_jobs_over_the_idle_threshold_are_named_with_their_reason(clock, lines):
    progress = make(clock, lines, idle_threshold=600, verbose=True)
    for pid in range(1, 9):
        progress.submitted(pid, FakeJob(pid, name="stuck"))
    progress.observe({pid: entry("waiting", REASON) for pid in range(1, 9)})
    clock.now += 300
    progress.submitted(20, FakeJob(20))  # submitted later: waits less
    progress.observe({20: entry("idle")})
    assert "longest queued: PROMINENCE job 1 (rule stuck, job 1) waiting for 5m00s" in (
        progress.report()
    )
    clock.now += 400  # jobs 1-8 have waited 11m40s, job 20 6m40s
    line = progress.report()
    assert "1 idle, 8 waiting" in line
    assert (
        "8 queued longer than 10 min: PROMINENCE job 1 (rule stuck, job 1) waiting for 11m40s: "
        f"{REASON}, PROMINENCE job 2 " in line
    )
    assert line.endswith("and 3 more.")
    assert "job 20" not in line


def test_at_most_one_line_a_minute_at_normal_verbosity(clock):
    stamped: list[tuple[float, str]] = []
    progress = RunProgress(lambda line: stamped.append((clock.now, line)), clock=clock)
    for pid in range(1, 31):
        progress.submitted(pid, FakeJob(pid))
    # A change every 5 seconds for 10 minutes: a job starts or finishes at each cycle.
    for step in range(120):
        clock.now += 5
        pid = step // 4 + 1
        if step % 4 == 0:
            progress.observe({pid: entry("running")})
        elif step % 4 == 2:
            progress.finished(pid, detail(), success=True)
        progress.report()
    times = [when for when, _line in stamped]
    assert all(later - earlier >= 60 for earlier, later in itertools.pairwise(times))
    assert 9 <= len(stamped) <= 11  # about one a minute over 600 s
    clock.now += 60  # the next cycle after the last changes: they are reported then
    progress.report()
    # Jobs that finished between two lines are all counted in the next one.
    finished = [re.search(r"(\d+) finished since", line) for _when, line in stamped]
    assert sum(int(found.group(1)) for found in finished if found) == 30


def test_verbose_writes_every_change_and_nothing_when_nothing_changed(clock, lines):
    progress = make(clock, lines, verbose=True)
    progress.submitted(1, FakeJob(1))
    assert progress.report() is not None
    clock.now += 1
    assert progress.report() is None  # only time passed
    progress.observe({1: entry("running")})
    assert progress.report() == "PROMINENCE: 1 running."
    progress.finished(1, detail(), success=True)
    assert progress.report() == (
        "PROMINENCE: no job queued or running; 1 finished since the last report (1 succeeded) "
        "at SiteA 1."
    )
    assert progress.report() is None
    assert len(lines) == 3


def test_a_site_in_the_listing_is_used_for_running_jobs(clock, lines):
    progress = make(clock, lines, verbose=True)
    for pid in (1, 2):
        progress.submitted(pid, FakeJob(pid))
    progress.observe({1: entry("running", execution={"site": "SiteB"}), 2: entry("running")})
    assert progress.report().startswith(
        "PROMINENCE: 2 running (at SiteB 1, 1 at a site not reported yet)"
    )


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logger():
    log = logging.getLogger("test-progress-events")
    log.setLevel(logging.DEBUG)
    handler = Capture()
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)


def test_events_of_a_success_a_failure_a_cancellation_and_a_rejection(
    clock, lines, logger, tmp_path
):
    log, handler = logger
    path = tmp_path / "events" / "jobs.jsonl"
    sink = events.EventSink(log, path)
    progress = make(clock, lines, sink=sink)
    ok, bad, stuck, refused = FakeJob(1), FakeJob(2, name="bad"), FakeJob(3), FakeJob(4)
    for pid, job in ((11, ok), (12, bad), (13, stuck)):
        progress.submitted(pid, job)
    progress.observe({11: entry("idle"), 12: entry("running"), 13: entry("idle")})
    progress.observe({11: entry("running"), 12: entry("running"), 13: entry("waiting", REASON)})
    progress.finished(11, detail(), success=True)
    progress.finished(12, detail(exit_code=1), success=False)
    progress.failed(bad, "PROMINENCE job 12 completed with exit code 1.\n", 12)  # no repeat
    progress.failed(refused, "Rule 'align': resource mem_mb=-5 is invalid\nNothing was submitted.")
    progress.cancelled({13, 99})
    sink.close()

    records = [json.loads(line) for line in path.read_text().splitlines()]
    schema = json.loads(events.SCHEMA_FILE.read_text())
    for record in records:
        jsonschema.validate(record, schema, format_checker=jsonschema.FormatChecker())
    # The same records went to the logger, as the extra payload of DEBUG records.
    assert [r.__dict__[events.EXTRA_KEY] for r in handler.records] == records
    assert {r.levelno for r in handler.records} == {logging.DEBUG}

    def phases(jobid: int) -> list[tuple]:
        return [
            (r["phase"], r["status"], r["reason"], r["site"], r["exit_code"])
            for r in records
            if r["jobid"] == jobid
        ]

    assert phases(1) == [
        ("submitted", None, None, None, None),
        ("queued", "idle", None, None, None),
        ("running", "running", None, None, None),
        ("succeeded", "completed", None, "SiteA", 0),
    ]
    assert phases(2) == [
        ("submitted", None, None, None, None),
        ("running", "running", None, None, None),
        ("failed", "completed", None, "SiteA", 1),
    ]
    assert phases(3) == [
        ("submitted", None, None, None, None),
        ("queued", "idle", None, None, None),
        ("queued", "waiting", REASON, None, None),
        ("cancelled", "waiting", REASON, None, None),
    ]
    refusal = "Rule 'align': resource mem_mb=-5 is invalid"
    assert phases(4) == [("failed", None, refusal, None, None)]
    first = records[0]
    assert first["run_id"] == "run1" and first["schema_version"] == events.SCHEMA_VERSION
    assert (first["rule"], first["wildcards"], first["attempt"]) == ("align", {"sample": "S1"}, 1)
    assert [r["prominence_id"] for r in records if r["jobid"] == 4] == [None]
    done = next(r for r in records if r["phase"] == "succeeded")
    assert (done["created"], done["started"], done["ended"]) == (1700000000, 1700000010, 1700000020)
    messages = [r.getMessage() for r in handler.records]
    assert f"PROMINENCE job 13 (rule align, job 3): queued (waiting, {REASON})" in messages
    assert "PROMINENCE job 12 (rule bad, job 2): failed (completed, at SiteA, exit code 1)" in (
        messages
    )


def test_no_record_is_built_when_nobody_listens(clock, lines, monkeypatch):
    quiet = logging.getLogger("test-progress-quiet")
    quiet.setLevel(logging.INFO)
    progress = make(clock, lines, sink=events.EventSink(quiet))

    def fail(*args, **kwargs):
        raise AssertionError("a record was built")

    monkeypatch.setattr(events, "json_line", fail)
    progress.submitted(1, FakeJob(1))
    progress.observe({1: entry("running")})
    progress.finished(1, detail(), success=True)


def test_the_docs_document_every_field_of_the_schema():
    from pathlib import Path

    docs = (Path(__file__).resolve().parent.parent / "docs" / "further.md").read_text()
    schema = json.loads(events.SCHEMA_FILE.read_text())
    for name in schema["properties"]:
        assert f"| `{name}` |" in docs, name
    for phase in events.PHASES:
        assert f"`{phase}`" in docs, phase
    assert f"schema version {events.SCHEMA_VERSION}" in docs.lower()


@pytest.mark.parametrize(("level", "interval"), [(logging.INFO, 60.0), (logging.DEBUG, 0.0)])
def test_the_executor_lifts_the_rate_limit_only_for_verbose_runs(level, interval, tmp_path):
    from types import SimpleNamespace

    from snakemake_executor_plugin_prominence.run.startup import make_progress as _make_progress

    log = logging.getLogger(f"test-progress-level-{level}")
    log.setLevel(level)
    settings = SimpleNamespace(idle_threshold=30, events_file=tmp_path / "e.jsonl")
    progress = _make_progress(settings, log, "run1")
    assert progress.min_interval == interval
    progress.close()


def test_an_events_file_that_cannot_be_opened_stops_the_run_with_the_flag(tmp_path):
    from types import SimpleNamespace

    from snakemake_interface_common.exceptions import WorkflowError

    from snakemake_executor_plugin_prominence.run.startup import make_progress as _make_progress

    (tmp_path / "file").write_text("")
    settings = SimpleNamespace(idle_threshold=30, events_file=tmp_path / "file" / "e.jsonl")
    with pytest.raises(WorkflowError, match=r"--prominence-events-file .*file/e\.jsonl"):
        _make_progress(settings, logging.getLogger("x"), "run1")


@pytest.mark.parametrize(
    "wildcards, reason, site, jobid",
    [
        ({"sample": 'a"b\\c'}, 'quote " backslash \\ newline \n tab \t', 'Site "A"', 7),
        ({"échantillon": "ß✓"}, "Ünïcode réason ✓ 🚀", "São Paulo", "7a"),
        ({}, "", "", 0),
    ],
)
def test_a_json_line_is_the_record_json_would_write_for_any_text(wildcards, reason, site, jobid):
    """The events file's lines are formatted field by field for speed: they must still be the
    JSON of the record (every character escaped right) and valid against the schema."""
    schema = json.loads(events.SCHEMA_FILE.read_text())
    job = FakeJob(jobid, name='rule "x"', wildcards=wildcards)
    found = detail(status="failed", exit_code=3, site=site)
    found["statusReason"] = reason
    line = events.json_line(
        events.subject("run ✓ 1", job), "failed", prominence_id=5, entry=found, when=1700000000.25
    )
    assert line.endswith("}\n") and "\n" not in line[:-1]
    parsed = json.loads(line)
    expected = {
        "schema_version": events.SCHEMA_VERSION,
        "time": "2023-11-14T22:13:20.250Z",
        "run_id": "run ✓ 1",
        "jobid": jobid,
        "rule": 'rule "x"',
        "group": None,
        "wildcards": wildcards,
        "attempt": 1,
        "prominence_id": 5,
        "phase": "failed",
        "status": "failed",
        "reason": reason or None,
        "site": site or None,
        "created": 1700000000,
        "started": 1700000010,
        "ended": 1700000020,
        "exit_code": 3,
    }
    assert parsed == expected
    assert list(parsed) == list(expected)  # the documented order
    jsonschema.validate(parsed, schema, format_checker=jsonschema.FormatChecker())


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="unknown phase"):
        events.json_line(events.subject("r", FakeJob(1)), "exploded")


def test_a_held_job_is_shown_as_held_and_a_job_the_run_deleted_as_failed(
    clock, lines, logger, tmp_path
):
    log, _ = logger
    path = tmp_path / "jobs.jsonl"
    sink = events.EventSink(log, path)
    progress = make(clock, lines, sink=sink, verbose=True)
    progress.submitted(1, FakeJob(1))
    progress.observe({1: entry("running")})
    clock.now += 100
    progress.observe({1: entry("failed")})  # the real server's held job: no statusReason key
    clock.now += 30
    assert progress.report() == (
        "PROMINENCE: 1 held; longest queued: PROMINENCE job 1 (rule align, job 1) held for "
        "30 s: listed failed without a reason, usually over its memory."
    )
    because = "was held by PROMINENCE for 200 s without a reason and deleted by this run"
    progress.finished(1, detail(status="deleted"), success=False, deleted_because=because)
    assert "1 finished since the last report (1 failed)" in progress.report()
    sink.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    schema = json.loads(events.SCHEMA_FILE.read_text())
    for record in records:
        jsonschema.validate(record, schema, format_checker=jsonschema.FormatChecker())
    assert [(r["phase"], r["status"], r["reason"]) for r in records] == [
        ("submitted", None, None),
        ("running", "running", None),
        ("queued", "failed", "listed failed without a reason, usually over its memory"),
        ("failed", "deleted", because),
    ]
