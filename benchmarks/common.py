"""Shared pieces of the benchmarks: an emulator in its own process (so its CPU time is not
counted as ours), a realistic job description, and small measuring helpers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from snakemake_executor_plugin_prominence import jobspec, runinfo
from snakemake_executor_plugin_prominence.auth import TokenProvider
from snakemake_executor_plugin_prominence.client import ProminenceClient

BIN = Path(sys.executable).parent
LISTENING = "PROMINENCE emulator listening on "

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
DEFAULTS = jobspec.JobDefaults(image="snakemake/snakemake:v9.27.1", labels=RUN.labels())
ENV = {
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "AKIA" + "X" * 16,
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "s" * 40,
}


def describe(jobid: int) -> dict[str, Any]:
    """Exactly what the executor builds for one job (minus Snakemake's own command string)."""
    job = BenchJob(jobid)
    labels = runinfo.job_labels(job)  # type: ignore[arg-type]
    return jobspec.build(job, REMOTE_COMMAND, ENV, DEFAULTS, job_labels=labels)  # type: ignore[arg-type]


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
    return ProminenceClient(url, TokenProvider("benchmark-token", None, {}), pool_size=pool_size)


def request_count(url: str, route: str | None = None) -> int:
    """Requests the emulator has served (on one route, or in all)."""
    root = url.rsplit("/api/v1", 1)[0]
    stats = requests.get(f"{root}/_emulator/stats", timeout=30).json()
    if route is None:
        return int(stats["total_requests"])
    return int(stats["requests"].get(route, 0))


def unique_key() -> str:
    return uuid.uuid4().hex
