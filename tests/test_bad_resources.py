"""A rule with an impossible resource fails alone, with a message naming the rule, the
resource and the value; nothing invalid reaches the server; the rest of the run goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.emulator_helpers import jwt_for
from tests.processes import plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "bad_resources"


def test_bad_resources_fail_alone(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    submitted_before = {job["id"] for job in emulator.jobs()}

    result = run_snakemake(
        plugin_args(storage, 4, "--keep-going"),
        cwd=workdir,
        env=plugin_env(emulator.url, jwt_for("bad-resources")),
    )

    assert result.returncode != 0
    log = result.stderr
    assert (
        "Rule 'negative_threads': resource threads=-2 is invalid: expected a number of threads >= 0"
        in log
    )
    assert "Rule 'negative_memory': resource mem_mb=-5 is invalid" in log
    assert "Rule 'string_nodes': resource nodes='lots' is invalid" in log
    # The good jobs ran remotely and their outputs arrived.
    assert (storage / "good" / "1.txt").read_text() == "1\n"
    assert (storage / "good" / "2.txt").read_text() == "2\n"
    # Only the good jobs reached the server.
    ours = [job for job in emulator.jobs() if job["id"] not in submitted_before]
    assert sorted(job["labels"]["snakemakerule"] for job in ours) == ["good", "good", "no_threads"]
    # threads: 0 is valid Snakemake: the job asked for one cpu and completed.
    assert (storage / "zero" / "threads.txt").read_text() == "0\n"
    (zero,) = [job for job in ours if job["labels"]["snakemakerule"] == "no_threads"]
    assert zero["resources"]["cpus"] == 1
    assert zero["status"] == "completed"
