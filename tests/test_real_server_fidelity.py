"""One real run against an emulator that behaves as the real server's code does where a naive
one would not (``docs/further.md``, "The local emulator", has the table of those behaviours):

- udocker env: the worker splits a command line holding every ``--env=K=V``; a value with
  spaces, quotes, ``$``, a backslash and a newline must still arrive intact;
- memory: a job over its memory is held (listed ``failed`` without a reason), then removed as
  ``killed`` / "Job used too much memory", and the user reads "raise mem_mb";
- transient 400s on a third of the submissions: every Snakemake job still gets exactly one
  PROMINENCE job.

Images written ``docker://...`` and ``library://...`` are covered by ``test_bad_resources.py``;
the queue deadline by ``test_queue_deadline_run.py``.
"""

from __future__ import annotations

import collections
import csv
import re
import shutil
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import jwt_for
from tests.processes import plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "fidelity"
NOTE = 'it\'s "quoted",  two spaces, $HOME stays, a back\\slash,\na new line and ünïcode'


def test_udocker_env_memory_kills_and_transient_400s_as_on_the_real_server(tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    with Emulator(
        port=0,
        cpus=4,
        memory=16,
        state_dir=tmp_path / "emulator",
        submit_fault_rate=0.34,
        seed=7,
        remove_held_after=1.0,
    ) as emu:
        result = run_snakemake(
            plugin_args(storage, 4, "--keep-going"),
            workdir,
            {**plugin_env(emu.url, jwt_for("fidelity")), "FIDELITY_NOTE": NOTE},
            timeout=400,
        )
        jobs = emu.jobs()
        faults = emu.stats()["submit_faults"]
    log = result.stderr
    assert result.returncode != 0, log[-3000:]  # the hog fails; everything else completes

    # The value reached both runtimes unchanged (udocker through the worker's shlex split).
    assert (storage / "env" / "udocker.txt").read_text() == NOTE
    assert (storage / "env" / "singularity.txt").read_text() == NOTE
    (udocker,) = [job for job in jobs if job["tasks"][0]["runtime"] == "udocker"]
    assert udocker["status"] == "completed"

    # The hog was held, then killed for its memory, and the error says what to do.
    (hog,) = [job for job in jobs if job["labels"]["snakemakerule"] == "hog"]
    assert hog["status"] == "killed" and hog["statusReason"] == "Job used too much memory"
    assert re.search(
        rf"PROMINENCE job {hog['id']} killed: Job used too much memory \(memory 1 GB from "
        r"resources\.mem_mb\)( at site [\w-]+)?: raise mem_mb",
        log,
    ), log[-3000:]
    [report_dir] = (workdir / ".snakemake" / "prominence_reports").iterdir()
    with (report_dir / "rules.tsv").open() as handle:
        rules = {row["rule"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert rules["hog"]["memory_kills"] == "1"
    with (report_dir / "jobs.tsv").open() as handle:
        rows = {row["rule"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert rows["hog"]["reason"] == "Job used too much memory"

    # A third of the submissions met a transient 400, some after the job was created; still
    # one PROMINENCE job per Snakemake job, and every other job completed.
    assert faults["total"] >= 2, faults
    per_snakemake_job = collections.Counter(job["labels"]["snakemakejob"] for job in jobs)
    assert set(per_snakemake_job.values()) == {1}, per_snakemake_job
    assert len(jobs) == 9  # udocker_env, singularity_env, hog and six many
    assert sorted(p.name for p in (storage / "many").iterdir()) == [f"{n}.txt" for n in range(6)]
    others = [job for job in jobs if job["id"] != hog["id"]]
    assert all(job["status"] == "completed" for job in others), [j["status"] for j in others]
