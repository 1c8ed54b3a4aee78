"""Which jobs of earlier runs a run adopts, turns away or leaves alone (``run.adoption``), over
HTTP against the emulator: jobs posted with the labels the plugin gives them, Snakemake jobs
and records stood in for (the end-to-end run with real Snakemake: test_adoption_run.py)."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from snakemake_executor_plugin_prominence.detached import headjob
from snakemake_executor_plugin_prominence.job import labels as L
from snakemake_executor_plugin_prominence.job.fingerprint import identity_of_job, identity_of_labels
from snakemake_executor_plugin_prominence.job.verdict import ACTIVE_STATUSES
from snakemake_executor_plugin_prominence.run import adoption, runinfo
from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient
from tests.emulator_helpers import job as job_body
from tests.emulator_helpers import jwt_for

WORKDIR = "/home/me/workflow"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, cpus=32, memory=64, state_dir=tmp_path_factory.mktemp("adopt")) as emu:
        yield emu


@pytest.fixture
def client(emu, request):
    """A client of a user of this test's own: the listings see this test's jobs only."""
    user = request.node.name[:40]
    with_user = ProminenceClient(emu.url, TokenProvider(jwt_for(user), None, {}))
    yield with_user
    left = [job["id"] for job in emu.jobs() if emu.owner(job["id"]) == user]
    with_user.delete_jobs(left)  # their slots, for the next test
    with_user.close()


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda message: self.lines.append((level, message))

    def text(self, level: str | None = None) -> str:
        return "\n".join(m for lv, m in self.lines if level is None or lv == level)


@dataclass
class FakeJob:
    """What adoption reads of a Snakemake rule job."""

    name: str
    wildcards: dict[str, str] = field(default_factory=dict)
    jobid: int = 1

    def is_group(self) -> bool:
        return False


def records(mapping: dict[str, list[Any]]) -> Any:
    """A Snakemake workflow whose records (``.snakemake/incomplete``) hold these ids."""
    persistence = types.SimpleNamespace(external_jobids=lambda job: mapping.get(job.name, []))
    return types.SimpleNamespace(persistence=persistence)


NO_RECORDS = records({})


def post(
    client: ProminenceClient,
    run: str,
    job: FakeJob,
    work: str | None,
    cmd: str = "sleep 600",
    key: str | None = None,
    **more: str,
) -> int:
    """A job as an earlier run ``run`` of WORKDIR posted it."""
    labels = {
        L.RUN_LABEL: run,
        L.WORKDIR_LABEL: key or runinfo.workdir_key(WORKDIR),
        L.RULE_LABEL: job.name,
        L.JOB_ID_LABEL: "3",
        L.ATTEMPT_LABEL: "1",
        **more,
    }
    if job.wildcards:
        text = ",".join(f"{k}={v}" for k, v in job.wildcards.items())
        labels[L.WILDCARDS_LABEL] = L.encode_wildcards(text)
    if work is not None:
        labels[L.WORK_LABEL] = work
    return client.create_job(job_body(cmd, labels=labels))


def adoption_for(
    client: ProminenceClient, log: Log, cancel: bool = False, run_id: str = "now"
) -> adoption.Adoption:
    settings = types.SimpleNamespace(no_adopt=False, cancel_leftovers=cancel)
    run = runinfo.RunLabels(run_id, runinfo.workdir_key(WORKDIR))
    return adoption.Adoption.at_start(client, run, settings, log)


def wait_status(emu, job_id: int, *statuses: str) -> dict:
    return emu.wait(job_id, statuses=set(statuses), timeout=60)


def test_an_active_job_of_the_same_work_is_adopted_once(emu, client):
    align_a = FakeJob("align", {"sample": "A"})
    first = post(client, "old", align_a, "w1")
    twin = post(client, "older", align_a, "w1")  # a second killed run left the same work
    wait_status(emu, first, "running")
    other = post(client, "old", FakeJob("align", {"sample": "B"}), "w2")
    log = Log()
    adopt = adoption_for(client, log)
    assert "3 job(s) of earlier runs of this workflow directory" in log.text("info")

    found = adopt.claim(align_a, "w1", NO_RECORDS)
    assert found is not None and found.prominence_id == first  # running before queued
    assert not found.done
    assert f"adopted job {first} of run old (rule align, sample=A; running)" in log.text()
    # its twin would write the same outputs later: named, with the command that deletes it
    assert f"job {twin} of run older" in log.text("warning")
    assert f"it does the same work as job {first}, which this run adopted" in log.text()
    assert f"`prominence delete {twin}`" in log.text("warning")
    assert emu.job(twin)["status"] in ACTIVE_STATUSES  # only named, not deleted
    adopt.batch_done()
    assert "adopted 1 job(s) of earlier runs in this batch (1 queued or running, 0" in log.text()
    # one candidate adopts one job: asked again (a retry), nothing is left to adopt
    assert adopt.claim(align_a, "w1", NO_RECORDS) is None
    assert adopt.adopted() == {first: "1"}

    adopt.finish()  # the work no job asked for: reported with the command, not deleted
    assert f"for id in {other}; do prominence delete $id; done" in log.text("warning")
    assert emu.job(other)["status"] in ACTIVE_STATUSES


def test_work_that_differs_is_not_adopted_and_deleted_under_cancel_leftovers(emu, client):
    sort = FakeJob("sort", {"n": "1"})
    old = post(client, "old", sort, "before-the-edit")
    untouched = post(client, "old", FakeJob("unrelated"), "u")
    log = Log()
    adopt = adoption_for(client, log, cancel=True)

    assert adopt.claim(sort, "after-the-edit", NO_RECORDS) is None  # submitted again
    assert wait_status(emu, old, "deleted")["status"] == "deleted"  # at once
    assert f"deleted job {old} of run old (rule sort, n=1;" in log.text("warning")
    assert "not adopted, its work differs: the rule's code, inputs, params, image or" in log.text()
    assert emu.job(untouched)["status"] in ACTIVE_STATUSES

    adopt.finish()  # under --prominence-cancel-leftovers the unasked ones go at the end
    assert wait_status(emu, untouched, "deleted")["status"] == "deleted"
    assert (
        "deleted 1 job(s) of earlier runs of this workflow directory that no job of this run "
        f"asked for: {untouched}." in log.text("warning")
    )


def test_a_job_without_a_fingerprint_is_never_adopted(emu, client):
    job = FakeJob("plot")
    old = post(client, "old", job, None)  # an older plugin version submitted it
    log = Log()
    adopt = adoption_for(client, log)
    assert adopt.claim(job, "w", records({"plot": [str(old)]})) is None
    assert "it carries no work fingerprint" in log.text("warning")


def test_a_job_this_run_cannot_fingerprint_adopts_nothing_and_names_its_rivals(emu, client):
    job = FakeJob("plot", {"n": "2"})
    old = post(client, "old", job, "w")
    log = Log()
    adopt = adoption_for(client, log)
    assert adopt.claim(job, None, records({"plot": [str(old)]})) is None
    assert f"job {old} of run old (rule plot, n=2;" in log.text("warning")
    assert "could not fingerprint its own job" in log.text("warning")


def test_a_group_job_is_known_by_its_group_job_id_not_its_group_name(emu, client):
    """A pipe group's id (in its name and rule label) is new in every run; the group job id is
    derived from the rule and wildcards of its last job, the same in every run."""
    uuid = "5b0e0c6a-1111-5222-9333-444455556666"
    labels = {
        L.RUN_LABEL: "old",
        L.WORKDIR_LABEL: runinfo.workdir_key(WORKDIR),
        L.GROUP_LABEL: "1",
        L.JOB_ID_LABEL: uuid,
    }
    same = client.create_job(
        job_body("sleep 600", labels={**labels, L.RULE_LABEL: "a1b2_produce", L.WORK_LABEL: "g"})
    )
    stale = client.create_job(
        job_body("sleep 600", labels={**labels, L.RULE_LABEL: "c3d4_produce", L.WORK_LABEL: "h"})
    )
    group = types.SimpleNamespace(jobid=uuid, name="e5f6_produce", is_group=lambda: True)
    log = Log()
    adopt = adoption_for(client, log)
    found = adopt.claim(group, "g", NO_RECORDS)
    assert found is not None and found.prominence_id == same
    assert f"adopted job {same} of run old (group a1b2_produce, group job {uuid};" in log.text()
    assert f"job {stale} of run old (group c3d4_produce" in log.text("warning")
    assert "its work differs" in log.text("warning")


def test_a_recorded_job_that_completed_meanwhile_is_taken_as_done(emu, client):
    merge = FakeJob("merge")
    ok = post(client, "old", merge, "w-merge", cmd="true")
    wait_status(emu, ok, "completed")
    failed_job = FakeJob("report")
    failed = post(client, "old", failed_job, "w-report", cmd="false")
    wait_status(emu, failed, "completed")
    log = Log()
    adopt = adoption_for(client, log)
    assert "job(s) of earlier runs" not in log.text()  # no active candidate at start

    # Snakemake's records name the jobs (as under --rerun-incomplete, with 9.3.5's None); the
    # batch's recorded jobs that are no candidates are read in one request
    workflow = records({"merge": [str(ok), None], "report": [str(failed)]})
    reads: list[list[int]] = []
    listing = client.list_jobs
    client.list_jobs = lambda ids, detail=False: (
        reads.append(list(ids)) or listing(ids, detail=detail)
    )
    adopt.read_ahead([merge, failed_job], workflow)
    found = adopt.claim(merge, "w-merge", workflow)
    assert found is not None and found.prominence_id == ok and found.done
    assert "completed with exit code 0 after its run lost sight of it" in log.text()
    # a recorded job that failed, or did other work, is submitted again
    assert adopt.claim(failed_job, "w-report", workflow) is None
    assert adopt.claim(FakeJob("merge"), "w-other", workflow) is None
    assert reads == [sorted([ok, failed])]


def test_a_recorded_job_of_this_run_or_unknown_id_is_not_adopted(emu, client):
    job = FakeJob("count")
    mine = post(client, "now", job, "w")  # this run's own (a retry of an adopted failure)
    log = Log()
    adopt = adoption_for(client, log)
    assert adopt.claim(job, "w", records({"count": [str(mine), "999999", "not-an-id"]})) is None
    assert adopt.claim(job, None, records({"count": [str(mine)]})) is None  # no fingerprint


def test_jobs_of_a_live_detached_run_are_left_alone(emu, client):
    work = FakeJob("align", {"sample": "A"})
    head = client.create_job(
        job_body(
            "sleep 600",
            labels={
                L.RUN_LABEL: "live",
                L.WORKDIR_LABEL: runinfo.workdir_key(WORKDIR),
                L.HEAD_LABEL: "1",
            },
        )
    )
    live = post(client, "live", work, "w")
    dead = post(client, "dead", FakeJob("align", {"sample": "B"}), "w-b")
    log = Log()
    adopt = adoption_for(client, log, cancel=True)
    assert "2 active job(s) of detached run live, whose head job is still active" in log.text()
    assert adopt.claim(work, "w", NO_RECORDS) is None  # same work, but its run is alive
    adopt.finish()
    assert wait_status(emu, dead, "deleted")["status"] == "deleted"
    assert emu.job(live)["status"] in ACTIVE_STATUSES
    assert emu.job(head)["status"] in ACTIVE_STATUSES

    # with adoption off, --prominence-cancel-leftovers spares the live run too
    settings = types.SimpleNamespace(no_adopt=True, cancel_leftovers=True)
    run = runinfo.RunLabels("later", runinfo.workdir_key(WORKDIR))
    off = adoption.Adoption.at_start(client, run, settings, Log())
    assert off.claim(work, "w", NO_RECORDS) is None
    assert emu.job(live)["status"] in ACTIVE_STATUSES


def test_with_adoption_off_leftovers_are_reported_at_start_as_before(emu, client):
    job = FakeJob("align")
    old = post(client, "old", job, "w")
    settings = types.SimpleNamespace(no_adopt=True, cancel_leftovers=False)
    log = Log()
    off = adoption.Adoption.at_start(
        client, runinfo.RunLabels("now", runinfo.workdir_key(WORKDIR)), settings, log
    )
    assert (
        f"1 PROMINENCE job(s) from an earlier run of this workflow directory are still queued "
        f"or running: {old}." in log.text("warning")
    )
    assert off.claim(job, "w", NO_RECORDS) is None
    off.finish()
    assert emu.job(old)["status"] in ACTIVE_STATUSES


def test_another_directory_s_jobs_are_no_candidates(emu, client):
    job = FakeJob("align")
    post(client, "old", job, "w", key=runinfo.workdir_key("/elsewhere"))
    log = Log()
    assert adoption_for(client, log).claim(job, "w", NO_RECORDS) is None
    assert log.lines == []


def test_identity_of_a_job_and_of_its_labels_agree():
    rule_job = FakeJob("align", {"sample": "A b", "n": "1"})
    labels = {
        L.RULE_LABEL: "align",
        L.WILDCARDS_LABEL: L.encode_wildcards("sample=A b,n=1"),
    }
    assert identity_of_job(rule_job) == identity_of_labels(labels)
    assert identity_of_job(FakeJob("all")) == identity_of_labels({L.RULE_LABEL: "all"})
    too_long = FakeJob("x", {"w": "y" * 600})
    assert identity_of_job(too_long) is None
    assert identity_of_labels({L.RULE_LABEL: "x", L.WILDCARDS_LABEL: "_"}) is None

    group = types.SimpleNamespace(jobid="5b0e-uuid", is_group=lambda: True, name="g_a_b")
    group_labels = {L.RULE_LABEL: "other-run-name", L.GROUP_LABEL: "1", L.JOB_ID_LABEL: "5b0e-uuid"}
    assert identity_of_job(group) == identity_of_labels(group_labels)


def test_a_detached_head_gives_its_jobs_the_key_of_the_submitting_directory(monkeypatch):
    """On the real worker every head runs in /home/user: its own directory's key would differ
    between two heads of one run, and be shared by heads of different runs."""
    command = headjob.head_command("r1", ["--jobs", "2"], [], workdir_key="k3y")
    assert "export PROMINENCE_SNAKEMAKE_RUN_ID=r1 PROMINENCE_SNAKEMAKE_WORKDIR_KEY=k3y " in command
    assert runinfo.WORKDIR_KEY_ENV not in headjob.head_command("r1", [], [])

    monkeypatch.setenv(runinfo.RUN_ID_ENV, "r1")
    monkeypatch.setenv(runinfo.WORKDIR_KEY_ENV, "k3y")
    assert runinfo.RunLabels.new("/home/user") == runinfo.RunLabels("r1", "k3y")
    monkeypatch.delenv(runinfo.WORKDIR_KEY_ENV)
    assert runinfo.RunLabels.new("/home/user").workdir_key == runinfo.workdir_key("/home/user")


def test_the_run_report_marks_adopted_jobs(tmp_path):
    from snakemake_executor_plugin_prominence.report import tables, writer
    from snakemake_executor_plugin_prominence.report.summary import summary_lines
    from tests.test_report import detail

    report = writer.RunReport("now", tmp_path, 0.5)
    report.add(detail(1, snakemakerun="now"), True)
    report.add(detail(2, snakemakerun="old"), True)  # it carries the run that submitted it
    report.add(detail(3), True)
    jobs, _rules, summary = writer.build("now", report.records(), str(tmp_path), 0.5)
    rows = {row["prominence_id"]: row for row in jobs}
    assert {job_id: row["adopted"] for job_id, row in rows.items()} == {1: False, 2: True, 3: False}
    assert "adopted from an earlier run" in tables.job_cell(rows[2], "prominence_id", str)
    assert "adopted" not in tables.job_cell(rows[1], "prominence_id", str)
    assert summary["adopted"] == 1
    assert (
        "3 ok, 0 failed, 1 adopted from earlier runs; core-hours"
        in summary_lines(summary, False)[0]
    )

    written = writer.write("now", report.records(), tmp_path / "out", 0.5, Log())
    header, *lines = (tmp_path / "out" / "jobs.tsv").read_text().splitlines()
    column = header.split("\t").index("adopted")
    assert [line.split("\t")[column] for line in lines] == ["False", "True", "False"]
    assert written["adopted"] == 1
    # a rebuild reads the jobs by the run's own label: none of them is adopted there
    rebuilt = writer.build("old", [writer.record_of(detail(2, snakemakerun="old"))], "", 0.5)
    assert rebuilt[0][0]["adopted"] is False
