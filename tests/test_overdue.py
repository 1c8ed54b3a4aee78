"""Held jobs and the plugin's own queue deadline: pure decisions with an injected clock."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from snakemake_executor_plugin_prominence.run import overdue
from snakemake_executor_plugin_prominence.run.overdue import OverdueJobs, Request


def description(limit=None, memory=2):
    job = {"resources": {"cpus": 1, "memory": memory, "disk": 10, "nodes": 1}}
    if limit is not None:
        job["policies"] = {"maximumTimeInQueue": limit}
    return job


def snakemake_job(name="align", **resources):
    return SimpleNamespace(name=name, resources=resources, is_group=lambda: False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


HELD = {"status": "failed"}  # the real server: held (HTCondor 5) has no statusReason key
WAITING = {"status": "waiting", "statusReason": "No matching resources currently available"}
IDLE = {"status": "idle"}


@pytest.mark.parametrize(
    ("entry", "held"),
    [
        ({"status": "failed"}, True),
        ({"status": "failed", "statusReason": ""}, False),  # removed: the key is always there
        ({"status": "failed", "statusReason": "No matching resources"}, False),
        ({"status": "killed"}, False),
        ({"status": "idle"}, False),
    ],
)
def test_only_a_failed_entry_without_a_reason_key_is_held(entry, held):
    assert overdue.is_held(entry) is held


def test_the_limit_comes_from_the_description_and_names_its_source():
    from_rule = Request.of(description(30), snakemake_job(prominence_max_time_in_queue=30))
    assert from_rule.queue_limit == 30
    assert from_rule.limit_source == "resource prominence_max_time_in_queue of rule align"
    from_setting = Request.of(description(45), snakemake_job(mem_mb=1000))
    assert from_setting.limit_source == "--prominence-max-time-in-queue"
    assert from_setting.asked == "cpus 1, memory 2 GB from resources.mem_mb, disk 10 GB"
    # 0 is the server's "no limit"; no policy at all is none either.
    assert Request.of(description(0), snakemake_job()).queue_limit is None
    assert Request.of(description(), snakemake_job()).queue_limit is None
    # Without the Snakemake job (a description alone), the policy itself is named.
    assert Request.of(description(5)).limit_source == "policies.maximumTimeInQueue"


def test_a_group_names_the_member_rule_that_set_the_limit():
    first = snakemake_job("a")
    second = snakemake_job("b", prominence_max_time_in_queue=5)
    group = SimpleNamespace(name="grp", jobs=[first, second], is_group=lambda: True)
    assert overdue.limit_source(group) == "resource prominence_max_time_in_queue of rule b"


def test_a_held_job_is_given_the_grace_then_deleted_with_what_it_asked_for():
    clock = Clock()
    jobs = OverdueJobs(held_grace=200, clock=clock)
    jobs.submitted(7, Request.of(description(memory=2)))
    assert jobs.check(7, {"status": "running"}) is None
    assert jobs.check(7, HELD) is None  # held from now
    clock.now += 150
    assert jobs.check(7, HELD) is None  # the server removes it after 80 s + a minute or two
    clock.now += 60
    message = jobs.check(7, HELD)
    assert message is not None
    assert "held by PROMINENCE for 210 s without a reason" in message
    assert "memory 2 GB from resources.mem_mb" in message and "raise mem_mb" in message


def test_a_released_hold_starts_the_grace_again():
    clock = Clock()
    jobs = OverdueJobs(held_grace=200, clock=clock)
    jobs.submitted(7, Request())
    jobs.check(7, HELD)
    clock.now += 150
    assert jobs.check(7, {"status": "running"}) is None  # released by the server
    clock.now += 10
    assert jobs.check(7, HELD) is None
    clock.now += 150
    assert jobs.check(7, HELD) is None  # 150 s held this time, not 310
    clock.now += 60
    assert jobs.check(7, HELD) is not None


def test_a_job_queued_past_its_limit_is_deleted_with_the_servers_last_word():
    clock = Clock()
    jobs = OverdueJobs(clock=clock)
    request = Request.of(description(10), snakemake_job(prominence_max_time_in_queue=10))
    jobs.submitted(3, request)
    clock.now += 9 * 60
    assert jobs.check(3, WAITING) is None
    clock.now += 2 * 60
    message = jobs.check(3, WAITING)
    assert message == (
        "waited 11.0 min in the queue without starting, over its limit of 10 min (resource "
        "prominence_max_time_in_queue of rule align), and was deleted by this run; PROMINENCE "
        "last listed it as waiting: No matching resources currently available"
    )
    # An idle job the server would never remove gets the same deadline.
    jobs.submitted(4, Request.of(description(1), snakemake_job()))
    clock.now += 61
    assert "(no reason given)" in jobs.check(4, IDLE)


def test_a_job_that_started_has_no_queue_deadline_any_more():
    clock = Clock()
    jobs = OverdueJobs(clock=clock)
    jobs.submitted(1, Request.of(description(1)))
    jobs.submitted(2, Request.of(description(1)))
    assert jobs.check(1, {"status": "running"}) is None
    clock.now += 3600
    assert jobs.check(1, IDLE) is None  # back in the queue (a PROMINENCE retry): started
    # A start seen only in the events (it ran between two status checks) counts too.
    assert jobs.check(2, {"status": "idle", "events": {"startTime": 1700000000}}) is None


def test_no_limit_no_deadline_and_unknown_jobs_only_get_the_held_rule():
    clock = Clock()
    jobs = OverdueJobs(held_grace=200, clock=clock)
    jobs.submitted(1, Request.of(description()))
    clock.now += 10**6
    assert jobs.check(1, IDLE) is None
    assert jobs.check(99, IDLE) is None  # never noted as submitted: no start time known
    jobs.check(99, HELD)
    clock.now += 200
    assert jobs.check(99, HELD) is not None


def test_a_deleted_job_is_not_deleted_again_and_is_given_up_after_the_confirmation_time():
    clock = Clock()
    jobs = OverdueJobs(held_grace=200, confirm=300, clock=clock)
    jobs.submitted(5, Request())
    jobs.check(5, HELD)
    clock.now += 200
    reason = jobs.check(5, HELD)
    assert reason is not None
    assert jobs.deleted_because(5) is None  # not deleted yet: the DELETE may fail
    jobs.deleted(5, reason)
    assert jobs.deleted_because(5) == reason
    assert jobs.check(5, HELD) is None
    assert jobs.unconfirmed(5, HELD) is None
    clock.now += 300
    assert jobs.unconfirmed(5, HELD) == (
        f"{reason}; PROMINENCE still listed it as failed without a reason (held) 300 s after "
        "this run deleted it"
    )
    jobs.forget(5)
    assert jobs.deleted_because(5) is None


def test_the_held_grace_covers_the_servers_removal():
    # 80 s held, then the next evaluation of the periodic rules (about a minute): the plugin
    # must not give up before the server had its chance to say "Job used too much memory".
    assert overdue.HELD_GRACE_SECONDS >= 80 + 60


def test_the_docs_give_the_held_grace_the_code_uses():
    root = Path(__file__).resolve().parent.parent
    for doc in ("README.md", "docs/further.md"):
        assert f"{overdue.HELD_GRACE_SECONDS:.0f} s" in (root / doc).read_text(), doc
