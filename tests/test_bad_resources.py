"""A rule with an impossible resource fails alone, with a message naming the rule, the
resource and the value; nothing invalid reaches the server; the rest of the run goes on.

The same real run shows how real Snakemake rules map: a disk the rule (or --set-resources)
sets is taken as is, Snakemake's default disk_mb is raised to the floor, and an image written
``docker://...`` reaches the server without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.job import labels
from tests.emulator_helpers import jwt_for
from tests.processes import plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "bad_resources"


def job_key(job):
    """The rule of a job, or the group of a group job."""
    rule = job["labels"]["snakemakerule"]
    return rule.split("_")[0] if job["labels"].get(labels.GROUP_LABEL) else rule


def test_bad_resources_fail_alone(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    submitted_before = {job["id"] for job in emulator.jobs()}

    result = run_snakemake(
        plugin_args(
            storage,
            4,
            "--keep-going",
            # Snakemake's default disk for a rule with small inputs, as a profile sets it (a
            # constant: 9.3.5 cannot evaluate input sizes in a group whose inputs are made
            # by the group)
            "--default-resources",
            "mem_mb=1000",
            "disk_mb=1000",
            "--set-resources",
            "set_disk:disk_mb=3000",
            # both kinds of retries: a warning at start (the bad jobs fail again, alone)
            "--retries",
            "1",
            "--prominence-max-retries",
            "2",
        ),
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
    assert "Rule 'gpu': resource nvidia_gpu=1 asks for a GPU" in log
    assert "Rule 'library': resource container='library://sylabs/default/alpine:3.19'" in log
    assert "--prominence-max-retries 2 and Snakemake's --retries 1 multiply" in log
    assert "a job that keeps failing can run 6 times" in log
    # The good jobs ran remotely and their outputs arrived.
    assert (storage / "good" / "1.txt").read_text() == "1\n"
    assert (storage / "good" / "2.txt").read_text() == "2\n"
    # Only the good jobs reached the server.
    ours = [job for job in emulator.jobs() if job["id"] not in submitted_before]
    # groups are labelled <group>_<rules>
    rules = sorted(job_key(job) for job in ours)
    assert rules == [
        "good", "good", "mixedgroup", "no_threads", "own_disk", "owngroup", "pulled", "set_disk"
    ]  # fmt: skip
    disk = {job_key(job): job["resources"]["disk"] for job in ours}
    # the rules' own values as they are; Snakemake's default (1000 MB) raised to 10 GB; a
    # group with a rule that inherits the default gets the floor
    assert disk == {
        "own_disk": 2, "set_disk": 3, "owngroup": 2, "mixedgroup": 10, "good": 10,
        "no_threads": 10, "pulled": 10,
    }  # fmt: skip
    (pulled,) = [job for job in ours if job["labels"]["snakemakerule"] == "pulled"]
    assert pulled["tasks"][0]["image"] == "snakemake/snakemake:v9.3.5"
    assert pulled["status"] == "completed"
    assert all(job["status"] == "completed" for job in ours), [job["status"] for job in ours]
    # threads: 0 is valid Snakemake: the job asked for one cpu and completed.
    assert (storage / "zero" / "threads.txt").read_text() == "0\n"
    (zero,) = [job for job in ours if job["labels"]["snakemakerule"] == "no_threads"]
    assert zero["resources"]["cpus"] == 1
    assert zero["status"] == "completed"
