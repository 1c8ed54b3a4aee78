"""Job objects shaped as list_jobs.py renders them from HTCondor's attributes and the worker's
report (promlet.py ~2126-2160): absent rather than zero, provisioned resources as the server
computes them, retries that queue again, events, and the job token's claims."""

from __future__ import annotations

import shlex
import time
import uuid

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.emulator.auth import jwt_claims
from tests.emulator_helpers import Api, job, wait_until


@pytest.mark.parametrize(
    ("memory", "disk", "provisioned_memory", "provisioned_disk"),
    [(1, 1, 0, 2), (2, 10, 1, 11), (4, 20, 3, 21), (16, 100, 15, 105), (43, 1, 41, 2)],
)
def test_provisioned_resources_as_the_server_reads_them_back(
    memory, disk, provisioned_memory, provisioned_disk
):
    """int(MemoryProvisioned / 1024) of a 1000 MB-per-GB slot; ceil(disk KB / 10^6)."""
    with Emulator(instant=True, job_seconds=0.01, cpus=3, memory=64) as emu:
        api = Api(emu.url)
        body = job("true", resources={"cpus": 3, "memory": memory, "disk": disk})
        done = api.wait(api.submit(body), timeout=10)
    assert done["execution"]["provisionedResources"] == {
        "cpus": 3,
        "memory": provisioned_memory,
        "disk": provisioned_disk,
        "nodes": 1,
    }


def test_instant_mode_shapes_leave_out_what_is_zero_or_not_measured():
    with Emulator(instant=True, job_seconds=0.01) as emu:
        api = Api(emu.url)
        body = job("true")
        body["tasks"].append(dict(body["tasks"][0]))
        done = api.wait(api.submit(body), timeout=10)
    execution = done["execution"]
    assert not {"stageInTime", "stageOutTime", "maxMemoryUsageKB", "retries"} & set(execution)
    assert set(execution) == {"site", "provisionedResources", "cpu", "runtimeVersion", "tasks"}
    pulled, cached = execution["tasks"]
    assert set(pulled) == {
        "imagePullStatus", "imageSha256", "exitCode", "wallTimeUsage", "cpuTimeUsage",
        "maxResidentSetSizeKB", "retries",
    }  # fmt: skip
    assert (pulled["imagePullStatus"], cached["imagePullStatus"]) == ("completed", "cached")
    assert set(cached) == set(pulled) - {"imageSha256"}
    events = done["events"]
    assert events["createTime"] <= events["startTime"] <= events["endTime"]


def test_instant_mode_reports_the_overheads_it_is_given():
    with Emulator(
        instant=True, job_seconds=0.01, image_pull_seconds=2.5, stage_in_seconds=1.5,
        stage_out_seconds=0.5,
    ) as emu:  # fmt: skip
        api = Api(emu.url)
        body = job("true")
        body["tasks"].append(dict(body["tasks"][0]))
        execution = api.wait(api.submit(body), timeout=10)["execution"]
    assert (execution["stageInTime"], execution["stageOutTime"]) == (1.5, 0.5)
    pulled, cached = execution["tasks"]
    assert pulled["imagePullTime"] == 2.5 and "imagePullTime" not in cached


def test_a_failed_run_queues_again_and_shows_the_last_report_meanwhile(tmp_path):
    """Between HTCondor's retries the job is idle and waits for a slot like any other; its
    events and execution come from the run that exited (list_jobs.py ~398-440, ~490)."""
    with Emulator(state_dir=tmp_path, cpus=1, memory=4) as emu:
        api = Api(emu.url)
        flaky = api.submit(job("sh -c 'sleep 1; exit 3'", policies={"maximumRetries": 1}))
        first = api.wait(flaky, "running")
        # A job that goes first once the slot is free (higher priority): the retry must wait.
        blocker = api.submit(job("sleep 60", policies={"priority": 5}))
        assert wait_until(lambda: api.describe(blocker)["status"] == "running", timeout=20)
        between = api.describe(flaky)
        assert between["status"] == "idle" and "statusReason" not in between
        assert between["events"]["startTime"] == first["events"]["startTime"]
        assert between["events"]["endTime"] >= between["events"]["startTime"]  # went idle
        assert [t["exitCode"] for t in between["execution"]["tasks"]] == [3]
        assert "retries" not in between["execution"]  # one run so far
        time.sleep(1.1)  # the next run starts in a later second
        api.delete(f"/jobs/{blocker}")
        done = api.wait(flaky, timeout=30)
        assert done["status"] == "completed" and done["execution"]["retries"] == 1
        assert done["events"]["startTime"] > first["events"]["startTime"]  # the last run's
        assert [t["exitCode"] for t in done["execution"]["tasks"]] == [3]


def test_the_job_token_carries_the_servers_claims(tmp_path):
    code = "import os; print(os.environ['PROMINENCE_TOKEN'])"
    with Emulator(state_dir=tmp_path) as emu:
        api = Api(emu.url)
        job_id = api.submit(job(shlex.join(["python", "-c", code]), resources={
            "cpus": 1, "memory": 1, "disk": 1, "walltime": 60}))  # fmt: skip
        submitted = time.time()
        api.wait(job_id, timeout=30)
        token = api.get(f"/jobs/{job_id}/stdout").text.strip()
    claims = jwt_claims(token)
    assert set(claims) == {"username", "groups", "job", "email", "exp"}  # create_job_token.py
    assert claims["username"] == "alice"
    assert str(uuid.UUID(claims["job"])) == claims["job"]
    expected = submitted + 10 * 24 * 3600 + 2 * 3 * 60 * 60  # 10 days + 2 x (3 x walltime)
    assert abs(claims["exp"] - expected) < 30
