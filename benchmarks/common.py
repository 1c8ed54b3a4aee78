"""Shared pieces of the benchmarks: an emulator in its own process (so its CPU time is not
counted as ours), a realistic job description, and small measuring helpers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from snakemake_executor_plugin_prominence.emulator.oidc import make_jwt
from snakemake_executor_plugin_prominence.job import description
from snakemake_executor_plugin_prominence.job.labels import job_labels
from snakemake_executor_plugin_prominence.job.verdict import Verdict, verdict
from snakemake_executor_plugin_prominence.run import runinfo, tracking
from snakemake_executor_plugin_prominence.run.submission import Submitter
from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient

BIN = Path(sys.executable).parent
#: the plugin's default --prominence-submit-concurrency
CONCURRENCY = 8
LISTENING = "PROMINENCE emulator listening on "
#: the benchmarks' access token: PROMINENCE (and the emulator) accept only JWTs with an exp
TOKEN = make_jwt(
    {"preferred_username": "benchmark", "exp": int(time.time()) + 7 * 24 * 3600}, b"benchmark"
)

# What Snakemake's format_job_exec produces for a typical job (about 1 KB).
REMOTE_COMMAND = (
    "python -m snakemake --deploy-sources s3://bucket/run/snakemake-workflow-sources."
    + "f" * 64
    + ".tar.xz "
    + "f" * 64
    + " --default-storage-prefix 's3://bucket/run' --default-storage-provider 's3' && "
    "python -m snakemake --snakefile 'Snakefile' --target-jobs 'align:sample=S1,lane=3' "
    "--allowed-rules align --cores 'all' --attempt 1 --force-use-threads --force "
    "--target-files-omit-workdir-adjustment --max-inventory-time 0 --retries 0 --nocolor "
    "--no-hooks --nolock --ignore-incomplete --rerun-triggers mtime software-env params input "
    "code --conda-frontend 'conda' --shared-fs-usage 'none' --latency-wait 5 --scheduler 'ilp' "
    "--local-storage-prefix base64//LnNuYWtlbWFrZS9zdG9yYWdl --storage-s3-retries 5 "
    "--default-storage-prefix 's3://bucket/run' --default-storage-provider 's3' "
    "--default-resources base64//dG1wZGlyPXN5c3RlbV90bXBkaXI= --mode 'remote'"
)


@dataclass
class BenchJob:
    """The attributes of a Snakemake job that the job builder reads."""

    jobid: int
    name: str = "align"
    threads: int = 4
    attempt: int = 1
    container_img_url: str | None = None
    wildcards: dict[str, str] = field(default_factory=lambda: {"sample": "S1", "lane": "3"})
    resources: dict[str, Any] = field(
        default_factory=lambda: {
            "mem_mb": 8000, "mem_mib": 7630, "disk_mb": 20000, "disk_mib": 19074,
            "runtime": 90, "_cores": 4, "_nodes": 1, "tmpdir": "<TBD>",
        }
    )  # fmt: skip

    def is_group(self) -> bool:
        return False


RUN = runinfo.RunLabels.new("/benchmark/workdir")
DEFAULTS = description.JobDefaults(image="snakemake/snakemake:v9.27.1", labels=RUN.labels())
ENV = {
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "AKIA" + "X" * 16,
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "s" * 40,
}


def describe(jobid: int) -> dict[str, Any]:
    """Exactly what the executor builds for one job (minus Snakemake's own command string)."""
    job = BenchJob(jobid)
    labels = job_labels(job)  # type: ignore[arg-type]
    return description.build(job, REMOTE_COMMAND, ENV, DEFAULTS, job_labels=labels)  # type: ignore[arg-type]


@contextlib.contextmanager
def emulator(*args: str) -> Iterator[str]:
    """``prominence-emulator --port 0 <args>`` in its own process; yields the base URL."""
    process = subprocess.Popen(
        [str(BIN / "prominence-emulator"), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith(LISTENING):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield line[len(LISTENING) :].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


def client(url: str, pool_size: int = 16) -> ProminenceClient:
    return ProminenceClient(url, TokenProvider(TOKEN, None, {}), pool_size=pool_size)


def request_count(url: str, route: str | None = None) -> int:
    """Requests the emulator has served (on one route, or in all)."""
    root = url.rsplit("/api/v1", 1)[0]
    stats = requests.get(f"{root}/_emulator/stats", timeout=30).json()
    if route is None:
        return int(stats["total_requests"])
    return int(stats["requests"].get(route, 0))


def unique_key() -> str:
    return uuid.uuid4().hex


def variant_rows(
    runs: dict[str, list[dict[str, Any]]],
    n: int,
    medians: dict[str, int],
    from_last_run: tuple[str, ...],
) -> list[dict[str, Any]]:
    """One row per variant of interleaved runs: plugin CPU per job (median, each run, and as a
    ratio of the first variant's), the medians of ``medians`` (key -> digits) and the values
    of ``from_last_run`` as the last run measured them (counts, not times)."""
    variants = list(runs)
    baseline = statistics.median(r["cpu_ms_per_job"] for r in runs[variants[0]])
    rows = []
    for variant in variants:
        done = runs[variant]
        cpu = statistics.median(r["cpu_ms_per_job"] for r in done)
        row = {
            "variant": variant,
            "jobs": n,
            "runs": len(done),
            "cpu_ms_per_job": round(cpu, 3),
            "cpu_ms_per_job_each": " ".join(f"{r['cpu_ms_per_job']:.3f}" for r in done),
            f"vs_{variants[0]}": round(cpu / baseline, 3),
        }
        for key, digits in medians.items():
            row[key] = round(statistics.median(r[key] for r in done), digits)
        row.update({key: done[-1][key] for key in from_last_run})
        rows.append(row)
    return rows


def print_table(title: str, rows: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> None:
    """The rows as right-aligned columns under ``title``."""
    keys = [key for key in rows[0] if key not in skip]
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    print(title)
    print("  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[k]).rjust(w) for k, w in zip(keys, widths, strict=True)))


def variant_arguments(description: str) -> tuple[argparse.Namespace, int, int]:
    """The command line of a variants benchmark: ``(args, jobs, repeats)``; ``--quick`` is
    200 jobs once per variant (what the test suite runs)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="200 jobs, one run per variant")
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    n, repeats = (200, 1) if args.quick else (args.jobs, args.repeats)
    return args, n, repeats


def submit_all(
    client: ProminenceClient,
    n: int,
    concurrency: int = CONCURRENCY,
    created: Callable[[int, int], None] | None = None,
) -> list[int]:
    """The plugin's submission path: N descriptions built and POSTed on a bounded pool, each
    tagged with its index (``created(index, prominence_id)`` runs on the pool's threads)."""
    submitter = (
        Submitter(client, concurrency)
        if created is None
        else Submitter(client, concurrency, created=created)
    )
    futures = [submitter.submit(describe(i), tag=i) for i in range(n)]
    wait(futures)
    submitter.stop()
    return [future.result() for future in futures]


def poll_to_verdicts(
    client: ProminenceClient,
    ids: list[int],
    on_cycle: Callable[[tracking.CycleResult, dict[int, Verdict]], None] | None = None,
) -> int:
    """The plugin's status path: a cycle every 0.5 s until every job is judged, with
    ``on_cycle(result, verdicts)`` after each (what a variant adds). Returns the cycles."""
    tracker = tracking.JobTracker(client)
    remaining, cycles = list(ids), 0
    while remaining:
        result = asyncio.run(tracker.cycle(remaining))
        verdicts = {pid: verdict(detail) for pid, detail in result.finished.items()}
        if on_cycle is not None:
            on_cycle(result, verdicts)
        remaining, cycles = result.running, cycles + 1
        if remaining:
            time.sleep(0.5)
    return cycles
