"""The checkpoint pattern docs/further.md recommends works through the plugin: the main
process reads the checkpoint's output from storage with `.open()`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.emulator_helpers import jwt_for
from tests.processes import plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "checkpoint"


def test_checkpoint_manifest_read_with_open(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    result = run_snakemake(
        plugin_args(storage, 3),
        cwd=workdir,
        env=plugin_env(emulator.url, jwt_for("checkpoint")),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (storage / "summary.txt").read_text() == "BLUE\nGREEN\nRED\n"
