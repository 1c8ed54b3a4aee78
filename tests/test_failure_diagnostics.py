"""Each common way a PROMINENCE job fails is reported in plain words, with a log file that
exists and holds the job's stderr: a rule that exits 3, a walltime kill, an image without
Snakemake, an image that cannot be pulled, and a job deleted from outside."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient
from tests.emulator_helpers import jwt_for
from tests.processes import BIN, plugin_args, plugin_env

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "failures"


@pytest.fixture(scope="module")
def failing_emulator(tmp_path_factory):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    # time_scale 0.6: a 1-minute walltime fires after 36 s, time enough for the remote
    # Snakemake to start and the rule to print something even on a busy machine (15 s was not,
    # once, with the suite's four workers beside two other test runs).
    with Emulator(
        port=0,
        cpus=8,
        memory=16,
        time_scale=0.6,
        missing_images=["example/does-not-exist*"],
        state_dir=tmp_path_factory.mktemp("failing"),
    ) as emu:
        yield emu


def error_block(output: str, rule: str) -> str:
    start = output.index(f"Error in rule {rule}:")
    end = output.find("\n\n", start)
    return output[start : end if end != -1 else None]


def log_file(workdir: Path, block: str) -> Path:
    match = re.search(r"Log: (\S+\.log)", block)
    assert match, block
    path = workdir / match.group(1)
    assert path.is_file(), path
    return path


def test_failures_are_explained_with_logs(tmp_path, failing_emulator):
    emu = failing_emulator
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    process = subprocess.Popen(
        [str(BIN / "snakemake"), *plugin_args(tmp_path / "storage", 6, "--keep-going")],
        cwd=workdir,
        env={**os.environ, **plugin_env(emu.url, jwt_for("failures"))},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Delete the `deleted` job from outside once it runs, as a user would with the CLI.
        client = ProminenceClient(emu.url, TokenProvider(jwt_for("failures"), None, {}))
        deadline = time.time() + 120
        while time.time() < deadline:
            running = [
                job
                for job in emu.jobs()
                if job["labels"].get("snakemakerule") == "deleted" and job["status"] == "running"
            ]
            job_id = running[0]["id"] if running else None
            if job_id and b"deleted starts sleeping" in client.read_output(job_id, "stderr"):
                assert client.delete_jobs([job_id])
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the `deleted` job never ran")
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0

    block = error_block(output, "exit3")
    assert "completed with exit code 1" in block
    assert "rule exit3's command exited with status 3" in block
    assert "exit3 is about to fail" in log_file(workdir, block).read_text()

    block = error_block(output, "walltime")
    assert "killed: Walltime limit exceeded (walltime 1 min from resources.runtime)" in block
    assert "walltime starts sleeping" in log_file(workdir, block).read_text()

    block = error_block(output, "bare_image")
    assert "the image busybox:1.36 has Python but no Snakemake" in block
    assert "No module named snakemake" in log_file(workdir, block).read_text()

    block = error_block(output, "missing_image")
    assert "failed: Container image pull failed (image example/does-not-exist:1)" in block
    assert log_file(workdir, block).read_text().startswith("# PROMINENCE job")

    block = error_block(output, "deleted")
    assert "deleted: Job deleted by user" in block
    assert "deleted starts sleeping" in log_file(workdir, block).read_text()

    # Snakemake prints no message for a failed group job; the plugin says it itself.
    match = re.search(r"Group pair \(\S+\) failed: (.*)", output)
    assert match, output[-3000:]
    assert "completed with exit code 1" in match.group(1)
    assert "rule grouped_second's command exited with status 4" in match.group(1)
    group_log = re.search(r"(\.snakemake/prominence_logs/groups/pair/\d+\.log)", output)
    assert group_log and "grouped_second is about to fail" in (
        (workdir / group_log.group(1)).read_text()
    )

    # --show-failed-logs style: the log path is listed under `log:` for Snakemake.
    assert ".snakemake/prominence_logs/exit3/" in output
