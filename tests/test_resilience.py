"""No lost job and no orphan: an API outage while jobs finish, and jobs left behind by a
Snakemake that was killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.emulator_helpers import jwt_for
from tests.processes import BIN, plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "sleepers"


@pytest.fixture(scope="module")
def own_emulator(tmp_path_factory):
    """An emulator of our own: these tests switch faults on and leave jobs running."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, cpus=8, memory=16, state_dir=tmp_path_factory.mktemp("resil")) as emu:
        yield emu


def snakemake_args(storage: Path, count: int, seconds: int, *extra: str) -> list[str]:
    return plugin_args(storage, 4, "--config", f"count={count}", f"seconds={seconds}", *extra)


def start_snakemake(args: list[str], cwd: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "snakemake"), *args],
        cwd=cwd,
        env={**os.environ, **plugin_env(url, jwt_for("resilience"))},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_running(emu, before: set[int], n: int, process: subprocess.Popen) -> list[dict]:
    deadline = time.time() + 120
    while time.time() < deadline:
        ours = [job for job in emu.jobs() if job["id"] not in before]
        if len(ours) == n and all(job["status"] == "running" for job in ours):
            return ours
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    raise AssertionError(f"{n} jobs never ran")


def test_jobs_finishing_during_an_outage_are_not_lost(tmp_path, own_emulator):
    emu = own_emulator
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    before = {job["id"] for job in emu.jobs()}
    process = start_snakemake(snakemake_args(storage, 3, 6), workdir, emu.url)
    try:
        wait_for_running(emu, before, 3, process)
        faults_before = emu.stats()["total_faults"]
        emu.set_faults(fault_rate=1.0)  # nothing but 502/503 and dropped connections
        try:
            deadline = time.time() + 60
            ours = []
            while time.time() < deadline:
                ours = [job for job in emu.jobs() if job["id"] not in before]
                if all(job["status"] == "completed" for job in ours):
                    break
                time.sleep(0.2)
            time.sleep(3)  # the plugin keeps failing to ask for a while after they finished
        finally:
            emu.set_faults(fault_rate=0.0)
        # Only the plugin talks to the API here: these faults hit its requests.
        assert emu.stats()["total_faults"] > faults_before
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-4000:]
    assert sorted(p.name for p in (storage / "slept").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    ours = [job for job in emu.jobs() if job["id"] not in before]
    assert len(ours) == 3  # one PROMINENCE job per Snakemake job, none resubmitted


def test_leftovers_of_a_killed_run_are_reported_then_cancelled(tmp_path, own_emulator):
    emu = own_emulator
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    before = {job["id"] for job in emu.jobs()}

    killed = start_snakemake(snakemake_args(storage, 2, 300), workdir, emu.url)
    try:
        leftovers = wait_for_running(emu, before, 2, killed)
        killed.send_signal(signal.SIGKILL)  # no chance to cancel anything
        killed.communicate(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    leftover_ids = sorted(job["id"] for job in leftovers)
    assert [emu.job(i)["status"] for i in leftover_ids] == ["running", "running"]

    assert run_snakemake(["--unlock"], cwd=workdir).returncode == 0
    env = plugin_env(emu.url, jwt_for("resilience"))
    # Adoption off: they are only reported at start (the jobs now sleep 1 s, not 300: other
    # work, which adoption would not take either; see test_adoption_run.py for adoption).
    again = run_snakemake(
        snakemake_args(storage, 2, 1, "--rerun-incomplete", "--prominence-no-adopt"), workdir, env
    )
    assert again.returncode == 0, again.stderr[-4000:]
    ids_text = ", ".join(map(str, leftover_ids))
    assert (
        "2 PROMINENCE job(s) from an earlier run of this workflow directory are still queued "
        f"or running: {ids_text}." in again.stderr
    )
    assert "adopted" not in again.stderr
    assert [emu.job(i)["status"] for i in leftover_ids] == ["running", "running"]

    # Adoption on: they are candidates for the same Snakemake jobs, but their work differs
    # (another sleep): not adopted, and deleted at once under --prominence-cancel-leftovers.
    cancelled = run_snakemake(
        snakemake_args(storage, 2, 1, "--forceall", "--prominence-cancel-leftovers"), workdir, env
    )
    assert cancelled.returncode == 0, cancelled.stderr[-4000:]
    for job_id in leftover_ids:
        assert f"PROMINENCE: deleted job {job_id} of run" in cancelled.stderr
        assert emu.wait(job_id, statuses={"deleted"}, timeout=30)["status"] == "deleted"
    assert cancelled.stderr.count("not adopted, its work differs") == 2


def test_a_long_outage_stops_the_run_and_says_how_to_find_the_jobs(tmp_path, own_emulator):
    emu = own_emulator
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    before = {job["id"] for job in emu.jobs()}
    # --prominence-max-outage 0: stop at the second status cycle nobody answers.
    args = snakemake_args(tmp_path / "storage", 1, 300, "--prominence-max-outage", "0")
    process = start_snakemake(args, workdir, emu.url)
    try:
        (job,) = wait_for_running(emu, before, 1, process)
        emu.set_faults(fault_rate=1.0)
        try:
            output, _ = process.communicate(timeout=240)
        finally:
            emu.set_faults(fault_rate=0.0)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "has not answered for" in output
    assert f"1 job(s) of this run may still be running: {job['id']}" in output
    assert "prominence list --all --constraint snakemakerun=" in output
    # It really may still be running: nothing could delete it.
    assert emu.job(job["id"])["status"] == "running"
