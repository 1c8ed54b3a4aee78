"""Core-hours a run killed with SIGKILL and then restarted spends, with adoption and without.

    python benchmarks/adoption.py                          # 6 jobs of 60 s, killed at half time
    python benchmarks/adoption.py --jobs 4 --seconds 30 --kill-at 0.5

Each variant is one fresh workflow directory and storage: a run of ``--jobs`` jobs that sleep
``--seconds`` is killed with SIGKILL once every job has run ``--kill-at`` of its time, then
``snakemake --unlock`` and the same command again:

- ``adopt``: the default; the rerun adopts the killed run's jobs;
- ``resubmit``: ``--prominence-no-adopt --prominence-cancel-leftovers``, what a careful user
  had to do before: the killed run's jobs are deleted at the rerun's start and the work is
  submitted again;
- ``uninterrupted``, the reference: the same run, never killed.

The emulator, in its own process, really runs every job (the rule's ``sleep`` under
``python -m snakemake``, on this machine) and reports each job's start, end and cpus. A job's
core-hours are its cpus x (end - start); the figure is the sum over every PROMINENCE job of
both runs, deleted ones included (their end is the deletion), so it holds each job's own
start-up (Snakemake inside the job) as PROMINENCE would bill it. The wall time is the rerun's
(the uninterrupted run's own); status checks are at most 5 s apart in every variant
(``--prominence-max-status-interval 5``). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "tests" / "workflows" / "sleepers"
VARIANTS = {
    "uninterrupted": [],
    "adopt": [],
    "resubmit": ["--prominence-no-adopt", "--prominence-cancel-leftovers"],
}


def snakemake(url: str, storage: Path, jobs: int, seconds: int, *extra: str) -> list[str]:
    return [
        str(common.BIN / "snakemake"), "--executor", "prominence", "--jobs", str(jobs),
        "--default-storage-provider", "fs", "--default-storage-prefix", str(storage),
        "--prominence-storage-plugins", "image", "--prominence-url", url,
        "--seconds-between-status-checks", "1", "--prominence-max-status-interval", "5",
        "--config", f"count={jobs}", f"seconds={seconds}", *extra,
    ]  # fmt: skip


def listing(url: str) -> list[dict[str, Any]]:
    answer = requests.get(
        f"{url}/jobs",
        params={"all": "true", "detail": "true"},
        headers={"Authorization": f"Bearer {common.TOKEN}"},
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()


def run_variant(
    url: str, workdir: Path, name: str, jobs: int, seconds: int, kill_at: float
) -> dict[str, Any]:
    before = {job["id"] for job in listing(url)}
    wf = workdir / name
    shutil.copytree(WORKFLOW, wf)
    storage = workdir / f"{name}-storage"
    env = {**os.environ, "PATH": f"{common.BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update({"PROMINENCE_TOKEN": common.TOKEN, "PROMINENCE_URL": url})
    command = snakemake(url, storage, jobs, seconds)
    if name == "uninterrupted":
        started = time.monotonic()
        subprocess.run(command, cwd=wf, env=env, capture_output=True, check=True)
        return measured(url, before, name, time.monotonic() - started, storage)
    killed = subprocess.Popen(
        command, cwd=wf, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ours = [job for job in listing(url) if job["id"] not in before]
        if len(ours) == jobs and all(job["status"] == "running" for job in ours):
            break
        time.sleep(0.5)
    else:
        killed.kill()
        raise RuntimeError(f"{name}: the {jobs} jobs never ran together")
    time.sleep(kill_at * seconds)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    subprocess.run(
        [str(common.BIN / "snakemake"), "--unlock"], cwd=wf, env=env, capture_output=True
    )
    started = time.monotonic()
    rerun = subprocess.run(
        [*command, *VARIANTS[name]], cwd=wf, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if rerun.returncode != 0:
        raise RuntimeError(f"{name}: the rerun failed: {rerun.stderr[-3000:]}")
    return measured(url, before, name, wall, storage)


def measured(url: str, before: set[int], name: str, wall: float, storage: Path) -> dict[str, Any]:
    """The figures of one variant, from the emulator's jobs created since ``before``."""
    ours = [job for job in listing(url) if job["id"] not in before]
    held = [core_seconds(job) for job in ours]
    deleted = [core_seconds(job) for job in ours if job["status"] == "deleted"]
    return {
        "variant": name,
        "prominence_jobs": len(ours),
        "core_hours": round(sum(held) / 3600, 4),
        "core_hours_deleted": round(sum(deleted) / 3600, 4),
        "wall_s": round(wall, 1),
        "outputs": len(list((storage / "slept").iterdir())),
    }


def core_seconds(job: dict[str, Any]) -> float:
    """cpus x (end - start) of one job (0 for a job that never started)."""
    events = job.get("events") or {}
    start, end = events.get("startTime"), events.get("endTime")
    if not start or not end:
        return 0.0
    return float((job.get("resources") or {}).get("cpus", 1)) * max(0.0, end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6, help="jobs per run (default 6)")
    parser.add_argument("--seconds", type=int, default=60, help="each job's sleep (default 60)")
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="fraction of a job's time run at the kill"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="prominence-adopt-") as tmp:
        workdir = Path(tmp)
        cpus = str(args.jobs * 2 + 2)
        with common.emulator("--state-dir", str(workdir / "emulator"), "--cpus", cpus) as url:
            for name in VARIANTS:
                rows.append(run_variant(url, workdir, name, args.jobs, args.seconds, args.kill_at))
    reference, adopt, resubmit = rows
    for row in rows:
        row["over_uninterrupted"] = round(row["core_hours"] / reference["core_hours"], 2)
    figures = {
        "jobs": args.jobs,
        "seconds": args.seconds,
        "kill_at": args.kill_at,
        "sleep_core_hours": round(args.jobs * args.seconds / 3600, 4),
        "variants": rows,
        "resubmit_over_adopt": round(resubmit["core_hours"] / adopt["core_hours"], 2),
    }
    common.print_table(
        f"A run of {args.jobs} jobs x {args.seconds} s, killed at {args.kill_at:.0%} of their "
        "time, then restarted (core-hours of every PROMINENCE job of both runs)",
        rows,
    )
    print(f"resubmit / adopt: {figures['resubmit_over_adopt']}x the core-hours")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
