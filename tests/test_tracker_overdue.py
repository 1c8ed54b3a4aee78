"""The status cycle with held jobs and the plugin's queue deadline.

The emulator cannot hold a job yet (no memory limit), so the held-job cycles use a small fake
of the client that answers with the real server's shapes (``prominence/backend/list_jobs.py``):
held is ``failed`` with no ``statusReason`` key, then ``killed`` / ``Job used too much memory``
once the server's periodic rule removed it. The queue deadline runs against the emulator.
"""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace

import pytest

from snakemake_executor_plugin_prominence.job import verdict as job_verdict
from snakemake_executor_plugin_prominence.run import tracking
from snakemake_executor_plugin_prominence.run.overdue import OverdueJobs, Request
from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient, ServiceUnavailable
from tests.emulator_helpers import jwt_for

RESOURCES = {"cpus": 1, "memory": 2, "disk": 10, "nodes": 1}
HELD = {"status": "failed"}
MEMORY_KILLED = {"status": "killed", "statusReason": "Job used too much memory"}
DELETED = {"status": "deleted", "statusReason": "Job deleted by user"}


class FakeClient:
    """Answers listings from ``states`` (id -> listing entry); DELETE marks a job deleted."""

    def __init__(self, states: dict[int, dict]) -> None:
        self.states = states
        self.deletes: list[list[int]] = []
        self.detail_reads: list[list[int]] = []
        self.fail_deletes = 0

    def list_jobs(self, ids, *, detail=False):
        if detail:
            self.detail_reads.append(list(ids))
        entries = []
        for job_id in ids:
            entry = {"id": job_id, **self.states[job_id]}
            if detail:
                entry["resources"] = dict(RESOURCES)
            entries.append(entry)
        return entries

    def delete_jobs(self, ids):
        self.deletes.append(list(ids))
        if self.fail_deletes:
            self.fail_deletes -= 1
            raise ServiceUnavailable("No answer from PROMINENCE (DELETE /jobs): timed out")
        for job_id in ids:
            if self.states[job_id]["status"] not in job_verdict.TERMINAL_STATUSES or (
                self.states[job_id] == HELD
            ):
                self.states[job_id] = dict(DELETED)
        return True

    def get_job(self, job_id):
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tracker_for(client, clock, held_grace=200.0, confirm=300.0):
    watch = OverdueJobs(held_grace=held_grace, confirm=confirm, clock=clock)
    return tracking.JobTracker(client, clock=clock, overdue=watch)


def cycle(tracker, ids):
    return asyncio.run(tracker.cycle(ids))


def test_a_held_job_is_tracked_until_the_server_says_it_used_too_much_memory():
    client = FakeClient({1: {"status": "running"}})
    clock = Clock()
    tracker = tracker_for(client, clock)
    tracker.submitted(1, Request(asked="cpus 1, memory 2 GB from resources.mem_mb, disk 10 GB"))
    assert cycle(tracker, [1]).running == [1]
    client.states[1] = dict(HELD)
    clock.now += 30
    result = cycle(tracker, [1])
    assert result.running == [1] and not result.finished and result.changed
    assert result.entries[1] == {"id": 1, "status": "failed"}  # the state picture sees it
    assert client.detail_reads == []  # not judged
    client.states[1] = dict(MEMORY_KILLED)
    clock.now += 120
    result = cycle(tracker, [1])
    assert list(result.finished) == [1] and not result.deleted_because
    assert job_verdict.verdict(result.finished[1]).message == (
        "killed: Job used too much memory (memory 2 GB from resources.mem_mb): raise mem_mb"
    )
    assert client.deletes == []


def test_a_job_held_too_long_is_deleted_then_failed_with_the_plugins_reason():
    client = FakeClient({1: dict(HELD), 2: {"status": "running"}})
    clock = Clock()
    tracker = tracker_for(client, clock)
    tracker.submitted(1, Request(asked="cpus 1, memory 2 GB from resources.mem_mb, disk 10 GB"))
    tracker.submitted(2, Request())
    assert sorted(cycle(tracker, [1, 2]).running) == [1, 2]
    clock.now += 150
    assert not cycle(tracker, [1, 2]).deleting
    clock.now += 60
    result = cycle(tracker, [1, 2])
    assert list(result.deleting) == [1] and client.deletes == [[1]]
    assert sorted(result.running) == [1, 2]  # still tracked: its final details come next
    assert result.changed  # so that the next check comes soon
    clock.now += 10
    result = cycle(tracker, [1, 2])
    assert list(result.finished) == [1]
    reason = result.deleted_because[1]
    assert reason.startswith("was held by PROMINENCE for 210 s without a reason")
    assert "memory 2 GB from resources.mem_mb" in reason
    verdict = job_verdict.verdict(result.finished[1], reason)
    assert not verdict.success and verdict.message == reason
    assert result.finished[1]["status"] == "deleted"  # the run report gets the real details
    assert client.deletes == [[1]]


def test_when_the_server_finished_the_job_first_its_own_verdict_wins():
    client = FakeClient({1: dict(HELD)})
    clock = Clock()
    tracker = tracker_for(client, clock)
    cycle(tracker, [1])
    clock.now += 200
    client.delete_jobs = lambda ids: client.states.update({1: dict(MEMORY_KILLED)}) or True
    assert list(cycle(tracker, [1]).deleting) == [1]
    result = cycle(tracker, [1])
    assert list(result.finished) == [1] and not result.deleted_because


def test_a_failed_deletion_is_retried_and_a_deletion_never_confirmed_is_given_up():
    client = FakeClient({1: dict(HELD)})
    client.fail_deletes = 1
    clock = Clock()
    tracker = tracker_for(client, clock)
    cycle(tracker, [1])
    clock.now += 200
    result = cycle(tracker, [1])
    assert not result.deleting and result.errors and result.running == [1]
    clock.now += 20
    client.delete_jobs = lambda ids: client.deletes.append(list(ids)) or True  # no effect
    assert list(cycle(tracker, [1]).deleting) == [1]
    assert len(client.deletes) == 2
    clock.now += 299
    assert cycle(tracker, [1]).running == [1]
    clock.now += 2
    result = cycle(tracker, [1])
    assert result.running == [] and not result.finished
    assert result.lost[1].startswith("PROMINENCE job 1 was held by PROMINENCE")
    assert "still listed it as failed without a reason (held) 301 s after" in result.lost[1]
    assert len(client.deletes) == 2


def test_a_removed_job_with_an_empty_reason_is_final_at_once():
    client = FakeClient({1: {"status": "failed", "statusReason": ""}})
    tracker = tracker_for(client, Clock())
    result = cycle(tracker, [1])
    assert list(result.finished) == [1] and client.detail_reads == [[1]]


# --- the queue deadline against the emulator --------------------------------------------------


@pytest.fixture
def one_slot(tmp_path):
    """One cpu: a second job stays idle behind the first, as on resources already deployed
    (the real server never removes such a job for maximumTimeInQueue). The long time scale
    keeps the emulator's own queue limit out of the way."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, cpus=1, memory=16, time_scale=1000, state_dir=tmp_path) as emu:
        yield emu


def job_description(name, limit):
    return {
        "name": name,
        "resources": dict(RESOURCES),
        "tasks": [{"image": "busybox", "runtime": "singularity", "cmd": "sleep 600"}],
        "policies": {"maximumTimeInQueue": limit},
    }


def test_jobs_queued_past_their_limit_are_deleted_and_judged_with_the_limit(one_slot):
    client = ProminenceClient(one_slot.url, TokenProvider(jwt_for("t"), None, {}), backoff=0)
    one_slot.hold_idle(math.inf, match=["waits*"])
    clock = Clock()
    tracker = tracker_for(client, clock)
    ids = {}
    for name in ("runs", "idles", "waits"):
        description = job_description(name, 1)
        ids[name] = client.create_job(description)
        job = SimpleNamespace(name=name, resources={}, is_group=lambda: False)
        tracker.submitted(ids[name], Request.of(description, job))
    everything = list(ids.values())
    result = cycle(tracker, everything)
    assert result.entries[ids["runs"]]["status"] == "running"
    assert result.entries[ids["idles"]]["status"] == "idle"
    assert result.entries[ids["waits"]]["status"] == "waiting"
    clock.now += 50
    assert not cycle(tracker, everything).deleting
    clock.now += 20  # 70 s: past the 1-minute limit
    result = cycle(tracker, everything)
    assert sorted(result.deleting) == sorted([ids["idles"], ids["waits"]])
    clock.now += 5
    result = cycle(tracker, everything)
    assert sorted(result.finished) == sorted([ids["idles"], ids["waits"]])
    assert result.running == [ids["runs"]]  # it started: no deadline any more
    waits = result.deleted_because[ids["waits"]]
    assert "over its limit of 1 min (--prominence-max-time-in-queue)" in waits
    assert "last listed it as waiting: No matching resources currently available" in waits
    assert "last listed it as idle" in result.deleted_because[ids["idles"]]
    for job_id in (ids["idles"], ids["waits"]):
        assert result.finished[job_id]["status"] == "deleted"
        assert one_slot.job(job_id)["status"] == "deleted"
