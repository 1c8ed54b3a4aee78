"""Ctrl-C on a running `snakemake --executor prominence` deletes every job of the run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient
from tests.emulator_helpers import jwt_for
from tests.processes import BIN, plugin_args, plugin_env

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "sleepers"


def test_sigint_deletes_all_unfinished_jobs(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    before = {job["id"] for job in emulator.jobs()}
    process = subprocess.Popen(
        [
            str(BIN / "snakemake"),
            *plugin_args(tmp_path / "storage", 3, "--config", "count=3", "seconds=300"),
        ],
        cwd=workdir,
        env={**os.environ, **plugin_env(emulator.url, jwt_for("cancel"))},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            ours = [job for job in emulator.jobs() if job["id"] not in before]
            if len(ours) == 3 and all(job["status"] == "running" for job in ours):
                break
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        else:
            raise AssertionError("the jobs never all ran")
        # A job of this run the plugin does not track, as when a submission's answer was lost
        # and the server could not be asked about it: the cancellation must find it too.
        run_id = next(iter(ours))["labels"]["snakemakerun"]
        client = ProminenceClient(emulator.url, TokenProvider(jwt_for("cancel"), None, {}))
        stray = client.create_job(
            {
                "resources": {"cpus": 1, "memory": 1, "disk": 1, "nodes": 1},
                "tasks": [{"image": "busybox", "runtime": "singularity", "cmd": "sleep 300"}],
                "labels": {"snakemakerun": run_id},
            }
        )
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    ours = [job for job in emulator.jobs() if job["id"] not in before and job["id"] != stray]
    assert len(ours) == 3
    # Cancelled by the plugin, not just gone: each job ends as deleted by the user.
    assert {job["status"] for job in ours} == {"deleted"}, output[-3000:]
    assert {job.get("statusReason") for job in ours} == {"Job deleted by user"}
    assert "Deleting 3 unfinished PROMINENCE job(s)" in output
    assert "Deleting 1 untracked PROMINENCE job(s) of this run." in output
    assert emulator.wait(stray, statuses={"deleted"})["statusReason"] == "Job deleted by user"


def test_sigint_in_the_middle_of_a_submission_batch_orphans_nothing(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    # Slow API: 30 submissions, 4 at a time, take about 3 s; interrupt after the first few.
    with Emulator(port=0, cpus=64, memory=64, latency=0.4, state_dir=tmp_path / "emu") as emu:
        process = subprocess.Popen(
            [
                str(BIN / "snakemake"),
                *plugin_args(
                    tmp_path / "storage",
                    30,
                    "--prominence-submit-concurrency", "4",
                    "--config", "count=30", "seconds=300",
                ),
            ],
            cwd=workdir,
            env={**os.environ, **plugin_env(emu.url, jwt_for("batch"))},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.time() + 120
            while len(emu.jobs()) < 4 and time.time() < deadline:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
        jobs = emu.jobs()
        assert 4 <= len(jobs) < 30, output[-3000:]  # interrupted mid-batch
        assert {job["status"] for job in jobs} == {"deleted"}, output[-3000:]
