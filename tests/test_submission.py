"""Exactly one job per submission, even when the answer to POST /jobs is lost."""

from __future__ import annotations

import uuid

import pytest

from snakemake_executor_plugin_prominence.run.submission import is_transient_refusal, submit_once
from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import (
    ProminenceClient,
    ProminenceError,
    RequestRejected,
)
from tests.emulator_helpers import jwt_for


def description(key: str) -> dict:
    return {
        "resources": {"cpus": 1, "memory": 1, "disk": 1, "nodes": 1},
        "tasks": [{"image": "busybox", "runtime": "singularity", "cmd": "true"}],
        "labels": {"snakemakekey": key},
    }


@pytest.fixture
def faulty(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(
        port=0, instant=True, job_seconds=0, fault_rate=0.3, seed=7, state_dir=tmp_path
    ) as emu:
        yield emu


def test_one_job_per_submission_under_faults(faulty):
    client = ProminenceClient(faulty.url, TokenProvider(jwt_for("t"), None, {}), backoff=0)
    keys = [uuid.uuid4().hex for _ in range(150)]
    ids = [submit_once(client, description(key), backoff=0) for key in keys]

    faulty.set_faults(fault_rate=0.0)
    jobs = faulty.jobs()
    assert len(jobs) == len(keys)  # no duplicates, none lost
    assert sorted(ids) == sorted(job["id"] for job in jobs)
    assert sorted(job["labels"]["snakemakekey"] for job in jobs) == sorted(keys)
    faults = faulty.stats()["faults"]
    # The nasty case happened: jobs created whose answer was lost, found again by their key.
    assert faults["lost_created_jobs"] > 0
    assert faults["http_502"] + faults["http_503"] + faults["drop"] > 0


def test_a_rejected_job_is_not_retried(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, instant=True, state_dir=tmp_path) as emu:
        client = ProminenceClient(emu.url, TokenProvider(jwt_for("t"), None, {}))
        bad = description("k1")
        bad["resources"]["memory"] = 0
        with pytest.raises(RequestRejected, match="memory must be at least 1"):
            submit_once(client, bad, backoff=0)
        assert emu.stats()["requests"].get("POST /jobs") == 1
        assert emu.jobs() == []


# --- the real server's transient 400s ---------------------------------------------------------
# The emulator does not answer them yet: a client that really talks to it, except that some
# POSTs get the real server's 400, with or without having created the job first.

SERVER_FAILURE = "Job submission failed with an exception: Failed to commit and disconnect"


class TransientRefusals(ProminenceClient):
    """POST /jobs answers ``failures`` 400s first; with ``created``, after really creating the
    job (the server's own tries may have queued it before one of them raised)."""

    def __init__(self, url, failures, message=SERVER_FAILURE, created=False):
        super().__init__(url, TokenProvider(jwt_for("t"), None, {}), backoff=0)
        self.failures, self.message, self.created = failures, message, created
        self.posts = 0

    def create_job(self, description):
        self.posts += 1
        if self.failures:
            self.failures -= 1
            if self.created:
                super().create_job(description)
            raise RequestRejected(self.message, 400)
        return super().create_job(description)


@pytest.fixture
def emulator(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, instant=True, job_seconds=3600, state_dir=tmp_path) as emu:
        yield emu


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        (SERVER_FAILURE, True),
        ("Unable to create job sandbox", True),
        ("Unable to write .job.json", True),
        ("Unable to write .job.mapped.json due to [Errno 28] No space left on device", True),
        ("Image me/typo does not exist", False),
        ("memory must be at least 1", False),
    ],
)
def test_which_400s_are_the_servers_own_failures(message, transient):
    assert is_transient_refusal(RequestRejected(message, 400)) is transient
    assert not is_transient_refusal(RequestRejected(message, 401))


@pytest.mark.parametrize(
    "message", [SERVER_FAILURE, "Unable to create job sandbox", "Unable to write .job.json"]
)
def test_a_transient_400_is_retried_after_looking_for_the_job(emulator, message):
    client = TransientRefusals(emulator.url, failures=2, message=message)
    sleeps = []
    job_id = submit_once(client, description("k-retry"), backoff=1, sleep=sleeps.append)
    assert client.posts == 3
    assert [job["id"] for job in emulator.jobs()] == [job_id]
    assert sleeps == [1, 2]  # backoff between the tries
    # Each 400 was followed by a look-up of the submission key before the next POST.
    assert emulator.stats()["requests"]["GET /jobs"] == 2


def test_a_job_created_before_the_400_is_found_and_not_submitted_again(emulator):
    client = TransientRefusals(emulator.url, failures=1, created=True)
    job_id = submit_once(client, description("k-created"), backoff=0)
    assert client.posts == 1
    jobs = emulator.jobs()
    assert [job["id"] for job in jobs] == [job_id]
    assert jobs[0]["labels"]["snakemakekey"] == "k-created"


def test_a_server_that_keeps_failing_gives_a_clear_message_and_no_job(emulator):
    client = TransientRefusals(emulator.url, failures=100)
    with pytest.raises(ProminenceError) as failure:
        submit_once(client, description("k-never"), attempts=4, backoff=0)
    assert not isinstance(failure.value, RequestRejected)
    message = str(failure.value)
    assert "failed on its side 4 times in a row" in message
    assert SERVER_FAILURE in message
    assert "snakemakekey=k-never" in message and "none was created" in message
    assert client.posts == 4 and emulator.jobs() == []


def test_exactly_once_when_every_try_fails_after_creating_the_job(emulator):
    # The worst case: the server created the job and still answered 400, each time.
    client = TransientRefusals(emulator.url, failures=100, created=True)
    job_id = submit_once(client, description("k-worst"), attempts=5, backoff=0)
    assert client.posts == 1
    assert [job["id"] for job in emulator.jobs()] == [job_id]


def test_other_400s_stay_final(emulator):
    client = TransientRefusals(emulator.url, failures=1, message="Image me/typo does not exist")
    with pytest.raises(RequestRejected, match="Image me/typo does not exist"):
        submit_once(client, description("k-image"), backoff=0)
    assert client.posts == 1
    assert emulator.stats()["requests"].get("GET /jobs", 0) == 0
