"""Run `snakemake` in this process with the plugin's entry points timed.

Usage: python profile_snakemake.py STATS_JSON -- <snakemake arguments>

Wall and CPU time are summed over the plugin's own code: the executor's set-up, submission
and status cycles, minus the Snakemake code it calls back into (building the remote command,
printing job info, the report_* callbacks). The result goes to STATS_JSON.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections import defaultdict

from snakemake_executor_plugin_prominence.executor import Executor
from snakemake_executor_plugin_prominence.run import tracking

totals: dict[str, float] = defaultdict(float)
_lock = threading.Lock()


def _add(kind: str, wall: float, cpu: float) -> None:
    with _lock:
        totals[f"{kind}_wall"] += wall
        totals[f"{kind}_cpu"] += cpu


def timed(kind: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _add(kind, time.perf_counter() - wall, time.thread_time() - cpu)

    return wrapper


def timed_async(kind: str, function):
    @functools.wraps(function)
    async def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return await function(*args, **kwargs)
        finally:
            _add(kind, time.perf_counter() - wall, time.thread_time() - cpu)

    return wrapper


for name in ("__post_init__", "run_jobs", "run_job", "_report", "cancel_jobs"):
    setattr(Executor, name, timed("plugin", getattr(Executor, name)))
tracking.JobTracker.cycle = timed_async("plugin", tracking.JobTracker.cycle)
# Snakemake's own code, called from inside the plugin's: subtracted from the plugin's share.
for name in (
    "format_job_exec",
    "run_job_pre",
    "report_job_submission",
    "report_job_success",
    "report_job_error",
):
    setattr(Executor, name, timed("callback", getattr(Executor, name)))


def main() -> None:
    stats_path = sys.argv[1]
    arguments = sys.argv[sys.argv.index("--") + 1 :]
    from snakemake.cli import main as snakemake_main

    start = time.perf_counter()
    code = 0
    try:
        snakemake_main(arguments)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    totals["total_wall"] = time.perf_counter() - start
    totals["exit_code"] = code
    with open(stats_path, "w") as out:
        json.dump(totals, out)
    sys.exit(code)


if __name__ == "__main__":
    main()
