"""Exactly one job per submission, even when the answer to POST /jobs is lost."""

from __future__ import annotations

import uuid

import pytest

from snakemake_executor_plugin_prominence.auth import TokenProvider
from snakemake_executor_plugin_prominence.client import ProminenceClient, RequestRejected
from snakemake_executor_plugin_prominence.submission import submit_once
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
