"""The job's memory limit as HTCondor enforces it on the real service (create_htcondor_job.py
RequestMemory = 1000 x memory MB; list_jobs.py JobStatus 5 and the memory hold reasons;
04-prominence-rules, which removes held jobs), with real processes."""

from __future__ import annotations

import math
import shlex
import subprocess
import sys

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.emulator.memory import (
    SAMPLES_OVER,
    Watched,
    limit_bytes,
    resident_bytes_by_session,
)
from tests.emulator_helpers import Api, ids, job, process_gone, wait_until


def memory_hog(seconds: int = 120) -> str:
    """A task that takes 1100 MiB, more than the 1000 MB (MiB) HTCondor gives a 1 GB job, and
    holds on to it for ``seconds``."""
    code = (
        "import os, time\n"
        "print(os.getpid(), flush=True)\n"
        "b = bytearray(1100 * 1024 * 1024)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        f"time.sleep({seconds})\n"
    )
    return shlex.join(["python", "-c", code])


ONE_GB = {"cpus": 1, "memory": 1, "disk": 1}


def test_a_job_over_its_memory_is_held_frees_its_slot_and_stays_queued(tmp_path):
    with Emulator(state_dir=tmp_path, cpus=1, memory=2, remove_held_after=math.inf) as emu:
        api = Api(emu.url)
        hog = api.submit(job(memory_hog(), resources=ONE_GB))
        api.wait(hog, "running")
        behind = api.submit(job("echo ran", resources=ONE_GB))  # waits for the only CPU
        held = api.wait(hog, "failed", timeout=60)
        # JobStatus 5: "failed" with no statusReason key at all, still in the queue.
        assert "statusReason" not in held
        assert set(held["events"]) == {"createTime", "startTime"}
        assert "tasks" not in held["execution"]  # the worker never wrote its report
        assert hog in ids(api.get("/jobs").json())
        assert hog not in ids(api.get("/jobs?status=idle").json())
        assert hog not in ids(api.get("/jobs?status=running").json())
        assert "used more than the 1000 MB" in api.get(f"/jobs/{hog}/stderr").text
        pid = int(api.get(f"/jobs/{hog}/stdout").text)
        assert wait_until(lambda: process_gone(pid), timeout=5)
        # Its CPU slot is free again: the job behind it runs.
        assert api.wait(behind, timeout=30)["status"] == "completed"
        assert api.describe(hog)["status"] == "failed"  # held for ever here
        assert emu.stats()["jobs"]["held"] == 1
        assert api.delete(f"/jobs/{hog}").json() == {}  # a held job can be deleted
        deleted = api.describe(hog)
        assert (deleted["status"], deleted["statusReason"]) == ("deleted", "Job deleted by user")


def test_a_held_job_is_removed_as_killed_after_the_grace(tmp_path):
    with Emulator(state_dir=tmp_path, cpus=1, memory=2, remove_held_after=1.0) as emu:
        api = Api(emu.url)
        hog = api.submit(job(memory_hog(), resources=ONE_GB))
        api.wait(hog, "failed", "killed", timeout=60)
        done = api.wait(hog, "killed", timeout=30)
        assert done["statusReason"] == "Job used too much memory"
        assert {"startTime", "endTime"} <= set(done["events"])
        assert done["events"]["endTime"] >= done["events"]["startTime"]
        assert "tasks" not in done["execution"]
        assert hog not in ids(api.get("/jobs").json())  # removed: in the history now
        assert hog in ids(api.get("/jobs?completed=true&num=5").json())


def test_a_job_within_its_memory_runs_and_reports_its_peak(tmp_path):
    """A job of 2 GB may use what a 1 GB job may not; its peak is reported in KB (bytes/1000)."""
    with Emulator(state_dir=tmp_path, cpus=1, memory=2) as emu:
        api = Api(emu.url)
        job_id = api.submit(job(memory_hog(seconds=1), resources={**ONE_GB, "memory": 2}))
        done = api.wait(job_id, timeout=60)
        assert done["status"] == "completed"
        peak = done["execution"]["maxMemoryUsageKB"]
        assert isinstance(peak, float) and peak > 1100 * 1024 * 1024 / 1000


def test_resident_memory_is_summed_per_session():
    code = (
        "import time\n"
        "b = bytearray(64 * 1024 * 1024)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL
    )
    try:
        assert wait_until(
            lambda: resident_bytes_by_session().get(child.pid, 0) > 64 * 1024 * 1024, timeout=10
        )
    finally:
        child.kill()
        child.wait()


def test_a_job_is_held_only_when_over_its_limit_several_looks_in_a_row():
    watched = Watched(limit=100)
    watched.sessions = {1, 2}
    assert not watched.sample({1: 60, 2: 50})  # over once: a fork before exec looks like that
    assert not watched.sample({1: 10})
    results = [watched.sample({1: 60, 2: 60, 3: 999}) for _ in range(SAMPLES_OVER)]
    assert results[-1] and not any(results[:-1])
    assert watched.peak == 120  # session 3 is not the job's
    assert limit_bytes(1) == 1000 * 1024 * 1024 and limit_bytes(4) == 4000 * 1024 * 1024
