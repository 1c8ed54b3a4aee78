"""`--prominence-storage-plugins install`: each job pip-installs, from the package index, the
storage plugins the run needs, at the versions installed here, before the remote Snakemake
starts (the fallback for packages that cannot be shipped). This test needs PyPI, as such a job
on a real PROMINENCE site does."""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.emulator_helpers import jwt_for
from tests.processes import plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "one_job"


def test_job_installs_pinned_storage_plugins(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    before = {job["id"] for job in emulator.jobs()}

    result = run_snakemake(
        plugin_args(storage, 1, "--prominence-storage-plugins", "install", install=True),
        cwd=workdir,
        env=plugin_env(emulator.url, jwt_for("install")),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (storage / "hello.txt").read_text() == "hello from PROMINENCE\n"

    (job,) = [job for job in emulator.jobs() if job["id"] not in before]
    cmd = job["tasks"][0]["cmd"]
    assert f"snakemake-storage-plugin-fs=={version('snakemake-storage-plugin-fs')}" in cmd
    assert "snakemake-storage-plugin-s3" not in cmd  # installed here, but the run uses fs only
    # The plugin really landed in the job's own deployment directory.
    scratch = emulator.job_dir(job["id"]) / "userhome"
    assert (scratch / ".snakemake" / "pip-deployments" / "snakemake_storage_plugin_fs").is_dir()
