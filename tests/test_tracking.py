"""Status verdicts (pure) and the status cycle over real HTTP against the emulator."""

from __future__ import annotations

import asyncio

import pytest

from snakemake_executor_plugin_prominence.job import verdict as job_verdict
from snakemake_executor_plugin_prominence.run import tracking
from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient
from tests.emulator_helpers import jwt_for

# --- verdicts --------------------------------------------------------------------------


def detail(status, reason=None, codes=(0,), **extra):
    job = {"id": 42, "status": status, "execution": {"tasks": [{"exitCode": c} for c in codes]}}
    if reason:
        job["statusReason"] = reason
    job.update(extra)
    return job


@pytest.mark.parametrize("status", sorted(job_verdict.ACTIVE_STATUSES))
def test_active_statuses_are_not_finished(status):
    assert not job_verdict.is_finished({"status": status})


@pytest.mark.parametrize("status", sorted(job_verdict.TERMINAL_STATUSES))
def test_terminal_statuses_are_finished(status):
    assert job_verdict.is_finished({"status": status})


def test_unknown_status_is_polled_again_not_failed():
    assert not job_verdict.is_finished({"status": "unknown"})
    assert not job_verdict.is_finished({})


def test_success_needs_completed_and_every_exit_code_zero():
    assert job_verdict.verdict(detail("completed", codes=(0, 0))).success
    assert not job_verdict.verdict(detail("completed", codes=(0, 3))).success
    assert not job_verdict.verdict(detail("completed", codes=())).success


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (detail("completed", codes=(3,)), "completed with exit code 3"),
        (detail("completed", codes=(1, 2)), "completed with exit codes 1, 2"),
        (detail("completed", codes=()), "completed but PROMINENCE reported no exit code"),
        (detail("completed", codes=(0, None)), "completed but PROMINENCE reported no exit code"),
        (
            detail("killed", "Walltime limit exceeded", codes=(), resources={"walltime": 5}),
            "killed: Walltime limit exceeded (walltime 5 min from resources.runtime)",
        ),
        (
            detail("killed", "Walltime limit exceeded", codes=(), resources={}),
            "killed: Walltime limit exceeded (no walltime was requested, so the site default "
            "(720 min) applied)",
        ),
        (
            detail("killed", "Job used too much memory", codes=(), resources={"memory": 2}),
            "killed: Job used too much memory (memory 2 GB from resources.mem_mb): raise mem_mb",
        ),
        (
            detail(
                "failed",
                "Container image pull failed",
                codes=(None,),
                tasks=[{"image": "busybox:typo"}],
            ),
            "failed: Container image pull failed (image busybox:typo)",
        ),
        (
            detail(
                "failed",
                "No matching resources",
                codes=(),
                resources={"cpus": 64, "memory": 512, "disk": 10, "nodes": 1},
            ),
            "failed: No matching resources (no site can provide cpus 64, memory 512, disk 10, "
            "nodes 1)",
        ),
        (
            # the server's own removal of a job still waiting for resources at its limit
            detail(
                "failed",
                "No matching resources currently available",
                codes=(),
                policies={"maximumTimeInQueue": 30},
            ),
            "failed: No matching resources currently available (no site had room within "
            "maximumTimeInQueue 30 min)",
        ),
        (detail("deleted", "Job deleted by user", codes=()), "deleted: Job deleted by user"),
        (
            detail("failed", "Maximum time queued was exceeded", codes=()),
            "failed: Maximum time queued was exceeded",
        ),
    ],
)
def test_failure_messages_in_plain_words(job, message):
    verdict = job_verdict.verdict(job)
    assert not verdict.success
    assert verdict.message == message


def test_site_is_named():
    job = detail("completed", codes=(1,))
    job["execution"]["site"] = "OpenStack-Alpha"
    assert job_verdict.verdict(job).message == "completed with exit code 1 at site OpenStack-Alpha"
    killed = detail("killed", "Job used too much memory", codes=(), resources={"memory": 4})
    killed["execution"]["site"] = "OpenStack-Alpha"
    assert job_verdict.verdict(killed).message == (
        "killed: Job used too much memory (memory 4 GB from resources.mem_mb) at site "
        "OpenStack-Alpha: raise mem_mb"
    )


def test_a_job_this_run_deleted_is_judged_with_the_runs_reason():
    deleted = detail("deleted", "Job deleted by user", codes=())
    assert job_verdict.verdict(deleted).message == "deleted: Job deleted by user"
    because = "waited 61.0 min in the queue without starting, over its limit of 60 min"
    assert job_verdict.verdict(deleted, because) == job_verdict.Verdict(False, because)


def test_url_chunks_bound_the_id_list_length():
    assert list(tracking.url_chunks([1, 2, 3, 4, 5], 3)) == [[1, 2], [3, 4], [5]]
    assert list(tracking.url_chunks([], 10)) == []
    assert list(tracking.url_chunks([123456], 2)) == [[123456]]  # never an empty chunk
    ids = list(range(1_000_000, 1_010_000))
    chunks = list(tracking.url_chunks(ids))
    assert [i for chunk in chunks for i in chunk] == ids
    assert all(len(",".join(map(str, chunk))) <= tracking.MAX_ID_CHARS for chunk in chunks)
    assert len(chunks) == 20  # 10,000 seven-digit ids: 500 per request
    with pytest.raises(ValueError):
        list(tracking.url_chunks([1], 0))


def test_poll_interval_backs_off_and_snaps_back():
    interval = tracking.PollInterval(floor=10, ceiling=60)
    assert [interval.after_cycle(False) for _ in range(6)] == [15, 22.5, 33.75, 50.625, 60, 60]
    assert interval.after_cycle(True) == 10
    # A zero floor (tests, --seconds-between-status-checks 0) still backs off from 1 s.
    zero = tracking.PollInterval(floor=0, ceiling=5)
    assert zero.after_cycle(False) == 1.0
    assert zero.after_cycle(True) == 0


# --- the status cycle against the emulator --------------------------------------------------


@pytest.fixture(scope="module")
def instant(tmp_path_factory):
    """An emulator whose jobs never run: they stay active for an hour, for counting requests."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(
        port=0, instant=True, job_seconds=3600, state_dir=tmp_path_factory.mktemp("instant")
    ) as emu:
        yield emu


def client_for(emu, attempts=5):
    return ProminenceClient(
        emu.url, TokenProvider(jwt_for("tracking"), None, {}), attempts=attempts, backoff=0
    )


def submit(client, n):
    job = {
        "resources": {"cpus": 1, "memory": 1, "disk": 1, "nodes": 1},
        "tasks": [{"image": "busybox", "runtime": "singularity", "cmd": "true"}],
    }
    return [client.create_job(job) for _ in range(n)]


def requests_by_route(emu):
    return dict(emu.stats()["requests"])


def test_status_requests_per_cycle_are_the_number_of_chunks(instant):
    client = client_for(instant)
    ids = submit(client, 1000)
    max_chars = 1000  # about 250 ids per request here, to get several chunks from 1,000 jobs
    expected = len(list(tracking.url_chunks(ids, max_chars)))
    assert expected > 1
    tracker = tracking.JobTracker(client, max_id_chars=max_chars)
    before = requests_by_route(instant)
    result = asyncio.run(tracker.cycle(ids))
    after = requests_by_route(instant)
    assert sorted(result.running) == sorted(ids)
    assert after.get("GET /jobs", 0) - before.get("GET /jobs", 0) == expected
    assert after.get("GET /jobs/<id>", 0) == before.get("GET /jobs/<id>", 0)


def test_finished_jobs_are_read_once_in_detail_in_one_batch(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, instant=True, job_seconds=0, state_dir=tmp_path) as emu:
        client = client_for(emu)
        ids = submit(client, 3)
        tracker = tracking.JobTracker(client)
        result = asyncio.run(tracker.cycle(ids))
        assert sorted(result.finished) == sorted(ids)
        assert all(job_verdict.verdict(d).success for d in result.finished.values())
        assert result.changed
        stats = requests_by_route(emu)
        # One listing, then one detailed listing of the three that finished.
        assert stats["GET /jobs"] == 2 and stats.get("GET /jobs/<id>", 0) == 0
        assert all(d["execution"]["tasks"][0]["exitCode"] == 0 for d in result.finished.values())


def test_missing_job_gets_a_grace_period_then_is_lost(instant):
    client = client_for(instant)
    now = [0.0]
    tracker = tracking.JobTracker(client, grace_cycles=3, grace_seconds=30, clock=lambda: now[0])
    unknown = 987_654
    for _ in range(2):  # within the grace period: still running
        now[0] += 20
        result = asyncio.run(tracker.cycle([unknown]))
        assert result.running == [unknown] and not result.lost
    now[0] += 20
    result = asyncio.run(tracker.cycle([unknown]))
    assert result.running == []
    assert "PROMINENCE no longer knows job 987654" in result.lost[unknown]


def test_transient_outage_keeps_every_job_and_is_measured(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, instant=True, job_seconds=3600, state_dir=tmp_path) as emu:
        client = client_for(emu, attempts=1)
        ids = submit(client, 3)
        now = [100.0]
        tracker = tracking.JobTracker(client, clock=lambda: now[0])
        emu.set_faults(fault_rate=1.0)
        result = asyncio.run(tracker.cycle(ids))
        assert not result.reachable and sorted(result.running) == sorted(ids)
        assert result.errors
        now[0] += 90
        asyncio.run(tracker.cycle(ids))
        assert tracker.unreachable_for() == 90
        emu.set_faults(fault_rate=0.0)
        result = asyncio.run(tracker.cycle(ids))
        assert result.reachable and sorted(result.running) == sorted(ids)
        assert tracker.unreachable_for() == 0
