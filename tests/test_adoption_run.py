"""A restarted run adopts the jobs of a run killed with SIGKILL (issue 19), end to end: six
one-minute jobs still running are adopted, a job that completed between the kill and the
rerun is taken as done (after Snakemake's own incomplete-files stop and the documented
``--rerun-incomplete``), and the job of a rule whose command was edited in between is not
adopted but deleted (``--prominence-cancel-leftovers``). The outputs equal a local run's, the
emulator holds one job per Snakemake job, and the rerun takes a fraction of a job's time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.emulator_helpers import jwt_for
from tests.processes import BIN, plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "adopt"
#: seconds of the six long jobs, of the job that completes after the kill, and how long after
#: every job runs the first run is killed (the long jobs have then used about half their time)
LONG, QUICK, KILL_AFTER = 60, 40, 25
#: seconds of the first version of the edited rule: still running whenever the rerun starts,
#: however loaded the machine (the rerun must find it running to delete it)
EDITED = 900
FIRST_COMMAND = '"sleep {params.seconds} && echo first version > {output}"'
EDITED_COMMAND = '"sleep 1 && echo second version > {output}"'
TOKEN = jwt_for("adopter")
RESULTS = [*(f"long/{i}.txt" for i in range(6)), "quick.txt", "edited.txt", "summary.txt"]


@pytest.fixture(scope="module")
def own_emulator(tmp_path_factory):
    """Room for the eight jobs of the first run at once; jobs outlive the killed Snakemake."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, cpus=10, memory=40, state_dir=tmp_path_factory.mktemp("adopt")) as emu:
        yield emu


def edit_the_rule(workdir: Path) -> None:
    snakefile = workdir / "Snakefile"
    text = snakefile.read_text()
    assert FIRST_COMMAND in text
    snakefile.write_text(text.replace(FIRST_COMMAND, EDITED_COMMAND))


def args(storage: Path, *extra: str) -> list[str]:
    config = ["--config", f"long={LONG}", f"quick={QUICK}", f"edited={EDITED}"]
    return plugin_args(storage, 10, "--prominence-max-status-interval", "3", *config, *extra)


def rule_of(job: dict) -> str:
    return job["labels"]["snakemakerule"]


def test_a_rerun_adopts_the_jobs_of_a_killed_run(tmp_path, own_emulator):
    emu = own_emulator
    local = tmp_path / "local"
    shutil.copytree(WORKFLOW, local)
    edit_the_rule(local)
    done = run_snakemake(["--cores", "2", "--config", "long=1", "quick=1"], cwd=local)
    assert done.returncode == 0, done.stderr[-3000:]

    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    storage = tmp_path / "storage"
    env = plugin_env(emu.url, TOKEN)
    before = {job["id"] for job in emu.jobs()}
    killed = subprocess.Popen(
        [str(BIN / "snakemake"), *args(storage)],
        cwd=workdir,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            first = [job for job in emu.jobs() if job["id"] not in before]
            if len(first) == 8 and all(job["status"] == "running" for job in first):
                break
            assert killed.poll() is None, killed.stdout.read()
            time.sleep(0.5)
        else:
            raise AssertionError("the eight jobs of the first run never ran together")
        time.sleep(KILL_AFTER)
        assert killed.poll() is None, killed.stdout.read()
        killed.send_signal(signal.SIGKILL)  # no chance to delete anything
        killed.communicate(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    first = {job["id"]: job for job in emu.jobs() if job["id"] not in before}
    by_rule = {rule_of(job): job["id"] for job in first.values()}
    assert Counter(map(rule_of, first.values())) == {"long": 6, "quick": 1, "edited": 1}
    assert all(emu.job(i)["status"] == "running" for i in first), "killed too late"

    edit_the_rule(workdir)
    quick = emu.wait(by_rule["quick"], statuses={"completed"}, timeout=120)
    assert quick["execution"]["tasks"][0]["exitCode"] == 0
    assert (storage / "quick.txt").read_text() == "quick\n"  # finished while nobody watched

    # Snakemake's own stops come first: the killed run's lock, then the finished job's
    # outputs, which its records still mark incomplete. Nothing is submitted meanwhile.
    assert run_snakemake(["--unlock"], cwd=workdir).returncode == 0
    plain = run_snakemake(args(storage), workdir, env)
    assert plain.returncode != 0
    assert "incomplete" in plain.stderr and "--rerun-incomplete" in plain.stderr, plain.stderr
    assert {job["id"] for job in emu.jobs()} - before == set(first)

    started = time.monotonic()
    again = run_snakemake(
        args(storage, "--rerun-incomplete", "--prominence-cancel-leftovers"), workdir, env
    )
    wall = time.monotonic() - started
    log = again.stderr
    assert again.returncode == 0, log[-6000:]
    print(f"rerun: {wall:.1f} s wall time; one long job sleeps {LONG} s")
    # Running a long job again alone takes LONG seconds, plus Snakemake's start and the summary
    # job after it: a rerun shorter than LONG cannot have run the work again (the margin is for
    # a loaded machine, where the rerun's own start and the summary job take tens of seconds).
    assert wall < LONG, f"the rerun took {wall:.1f} s: the work ran again?"

    # the outputs are a local run's
    assert {name: (storage / name).read_bytes() for name in RESULTS} == {
        name: (local / name).read_bytes() for name in RESULTS
    }

    # one PROMINENCE job per Snakemake job across both runs, and the edited rule's old one
    everything = [job for job in emu.jobs() if job["id"] not in before]
    assert Counter(map(rule_of, everything)) == {"long": 6, "quick": 1, "edited": 2, "summary": 1}
    old_edited = by_rule["edited"]
    assert emu.wait(old_edited, statuses={"deleted"}, timeout=30)["status"] == "deleted"
    assert f"PROMINENCE: deleted job {old_edited} of run" in log
    assert "not adopted, its work differs" in log
    adopted = {i for i in first if f"adopted job {i} of run" in log}
    assert adopted == set(first) - {old_edited}, log[-6000:]
    done = log.count("after its run lost sight of it")
    print(f"adopted {len(adopted)} jobs: {len(adopted) - done} running, {done} completed")
    assert (
        f"adopted job {by_rule['quick']} of run" in log
        and "completed with exit code 0 after its run lost sight of it" in log
    )
    assert "job(s) of earlier runs of this workflow directory are still queued or running" in log
    assert "in this batch (" in log  # the summary after the first batch

    # the run report counts the adopted jobs, marked
    [report] = (workdir / ".snakemake" / "prominence_reports").iterdir()
    rows = [json.loads(line) for line in (report / "jobs.jsonl").read_text().splitlines()]
    marked = {row["prominence_id"]: row["adopted"] for row in rows}
    assert {i for i, is_adopted in marked.items() if is_adopted} == adopted
    assert Counter(row["rule"] for row in rows if not row["adopted"]) == {
        "edited": 1,
        "summary": 1,
    }
