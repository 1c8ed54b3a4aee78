"""In-job time of a trivial job: the default storage-plugin path against ``image`` mode.

    python benchmarks/lean_jobs.py                    # default vs image, 3 rounds of 4 jobs
    python benchmarks/lean_jobs.py --with-install     # also the per-job pip install (needs PyPI)

The production set-up, on this machine: S3 (moto on loopback) as the default storage. Every
job runs with the same interpreter (the emulator's, which has the storage plugins, as an image
built for ``image`` mode would): so the difference between the modes is exactly what each
adds in the job (``ship``: fetch and unpack the run's zip; ``install``: pip from the index),
not a difference between interpreters. (That the default path needs neither the plugins in
the image nor the index is proven by ``tests/test_lean_jobs.py``.) The modes alternate round
by round in one run. Each job's in-job time is the emulator's
``wallTimeUsage`` (its task's wall time), the same figure PROMINENCE reports. Nothing here
asserts a time; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common

from snakemake_executor_plugin_prominence.job import deployment
from tests.s3server import S3Server

HERE = Path(__file__).resolve().parent
ACCESS_KEY = "AKIABENCHLEAN0001"
SECRET_KEY = "b" * 40
IMAGE = "bench/snakemake-with-storage-plugins:1"
MODES = ("ship", "image", "install")


def run_mode(url: str, s3: S3Server, mode: str, jobs: int, workdir: Path) -> dict[str, Any]:
    """One Snakemake run of ``jobs`` trivial jobs; returns the jobs' in-job wall times."""
    bucket = f"lean-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    wf = workdir / f"{mode}-{bucket}"
    wf.mkdir(parents=True)
    (wf / "Snakefile").write_text((HERE / "workflow" / "Snakefile").read_text())
    env = {
        **os.environ,
        "PATH": f"{common.BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PROMINENCE_URL": url,
        "PROMINENCE_TOKEN": common.TOKEN,
        "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": ACCESS_KEY,
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET_KEY,
    }
    label = uuid.uuid4().hex[:12]
    completed = subprocess.run(
        [
            str(common.BIN / "snakemake"), "--executor", "prominence", "--jobs", "2",
            "--default-storage-provider", "s3",
            "--default-storage-prefix", f"s3://{bucket}/run",
            "--storage-s3-endpoint-url", s3.endpoint_url,
            "--prominence-storage-plugins", mode,
            "--prominence-container-image", IMAGE,
            "--prominence-labels", f"bench={label}",
            "--seconds-between-status-checks", "1",
            "--config", f"count={jobs}", "--quiet",
        ],
        cwd=wf, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(f"{mode}: {completed.stderr[-3000:]}")
    listing = requests.get(
        f"{url}/jobs",
        params={"all": "true", "detail": "true", "constraint": f"bench={label}"},
        headers={"Authorization": f"Bearer {common.TOKEN}"},
        timeout=60,
    ).json()
    walls = [task["wallTimeUsage"] for job in listing for task in job["execution"]["tasks"]]
    if len(walls) != jobs:
        raise RuntimeError(f"{mode}: expected {jobs} finished jobs, found {len(walls)}")
    return {"walls": walls}


def shipped_zip_bytes(workdir: Path) -> tuple[int, list[str]]:
    """The size of the zip the default path ships for an S3 run (built as the plugin builds
    it), and what is in it."""
    dists = deployment.to_ship(["snakemake-storage-plugin-s3"])
    travelling = [d for d in dists.values() if deployment.can_travel(d)]
    path = workdir / "packages.zip"
    deployment.write_zip(travelling, path)
    return path.stat().st_size, sorted(deployment.pin(d) for d in travelling)


def wheel_note() -> str:
    return f"snakemake-storage-plugin-s3 {distribution('snakemake-storage-plugin-s3').version}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="trivial jobs per run (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument(
        "--with-install", action="store_true", help="also measure the per-job pip install"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    modes = ["ship", "image"] + (["install"] if args.with_install else [])

    walls: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="prominence-lean-") as tmp:
        workdir = Path(tmp)
        zip_bytes, shipped = shipped_zip_bytes(workdir)
        with (
            S3Server(ACCESS_KEY, SECRET_KEY) as s3,
            common.emulator(
                "--state-dir", str(workdir / "emulator"), "--cpus", "2",
            ) as url,
        ):  # fmt: skip
            for round_number in range(args.rounds):
                for mode in modes:
                    result = run_mode(url, s3, mode, args.jobs, workdir / str(round_number))
                    walls[mode].extend(result["walls"])

    figures: dict[str, Any] = {
        "jobs_per_mode": args.jobs * args.rounds,
        "median_wall_s": {mode: statistics.median(w) for mode, w in walls.items()},
        "mean_wall_s": {mode: round(statistics.fmean(w), 2) for mode, w in walls.items()},
        "ship_zip_bytes_per_job": zip_bytes,
        "shipped": shipped,
    }
    medians = figures["median_wall_s"]
    figures["ship_over_image"] = round(medians["ship"] / medians["image"], 2)
    if "install" in medians:
        figures["install_over_image"] = round(medians["install"] / medians["image"], 2)

    print(
        f"Trivial job, in-job wall time (wallTimeUsage), {figures['jobs_per_mode']} jobs per mode"
    )
    print("| mode | median | mean | downloaded per job besides the sources |")
    print("|---|---:|---:|---|")
    downloads = {
        "ship": f"{zip_bytes / 1e6:.1f} MB zip ({len(shipped)} distributions) from the storage",
        "image": "nothing",
        "install": "the same distributions as wheels, from the package index",
    }
    for mode in modes:
        print(
            f"| {mode} | {medians[mode]:.1f} s | {figures['mean_wall_s'][mode]:.2f} s "
            f"| {downloads[mode]} |"
        )
    print(f"ship / image: {figures['ship_over_image']}")
    if "install_over_image" in figures:
        print(f"install / image: {figures['install_over_image']}")
    print(f"shipped ({wheel_note()}): {', '.join(shipped)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
