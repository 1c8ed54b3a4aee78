"""Benchmarks of the plugin against the emulator: submission, polling, overhead, end to end.

    python benchmarks/run.py            # the full set (several minutes)
    python benchmarks/run.py --quick    # tiny sizes: proves the benchmarks still work

Prints a table and writes the figures as JSON (``--out``). Nothing here asserts a time: the
machines are shared and noisy, so compare the ratios measured side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from snakemake_executor_plugin_prominence.run import tracking

HERE = Path(__file__).resolve().parent
CONCURRENCY = common.CONCURRENCY


def bench_submission(sizes: list[int], latency: float) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        with common.emulator(
            "--instant", "--job-seconds", "36000", "--latency", str(latency)
        ) as url:
            client = common.client(url)
            start = time.perf_counter()
            common.submit_all(client, n)
            plugin = time.perf_counter() - start
            start = time.perf_counter()
            for i in range(n):
                client.create_job(common.describe(i))
            serial = time.perf_counter() - start
            assert common.request_count(url, "POST /jobs") == 2 * n
        ideal = n * latency / CONCURRENCY
        rows.append(
            {
                "jobs": n,
                "latency_s": latency,
                "concurrency": CONCURRENCY,
                "plugin_s": round(plugin, 3),
                "serial_s": round(serial, 3),
                "ideal_s": round(ideal, 3),
                "plugin_over_ideal": round(plugin / ideal, 2),
                "serial_over_plugin": round(serial / plugin, 2),
            }
        )
    return rows


def bench_polling(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        with common.emulator("--instant", "--job-seconds", "36000") as url:
            client = common.client(url)
            ids = common.submit_all(client, n, concurrency=16)
            tracker = tracking.JobTracker(client)
            before = common.request_count(url)
            start = time.perf_counter()
            result = asyncio.run(tracker.cycle(ids))
            cycle_s = time.perf_counter() - start
            cycle_requests = common.request_count(url) - before
            assert len(result.running) == n
            before = common.request_count(url)
            start = time.perf_counter()
            for job_id in ids:
                client.get_job(job_id)
            per_job_s = time.perf_counter() - start
            per_job_requests = common.request_count(url) - before
        rows.append(
            {
                "active_jobs": n,
                "plugin_requests": cycle_requests,
                "plugin_s": round(cycle_s, 3),
                "per_job_requests": per_job_requests,
                "per_job_s": round(per_job_s, 3),
                "fewer_requests": round(per_job_requests / cycle_requests, 1),
                "faster": round(per_job_s / cycle_s, 1),
            }
        )
    return rows


def bench_overhead(n: int) -> dict[str, Any]:
    """CPU the plugin spends per job from description to verdict (emulator in another process),
    and the memory it keeps per job it tracks."""
    with common.emulator("--instant", "--job-seconds", "2") as url:
        client = common.client(url)
        cpu, wall = time.process_time(), time.perf_counter()
        ids = common.submit_all(client, n)
        cycles = common.poll_to_verdicts(client, ids)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

        # Memory per tracked job: the executor keeps a SubmittedJobInfo (with the image in aux)
        # and the tracker a small record per job. The Snakemake job object is Snakemake's.
        from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

        live = common.submit_all(client, min(n, 2000)) if n > 2000 else ids
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        job = object()
        registry = {
            job_id: SubmittedJobInfo(job, external_jobid=str(job_id), aux={"image": "img"})
            for job_id in live
        }
        tracker = tracking.JobTracker(client)
        tracker._seen.update({job_id: tracking._Seen("running", None, 0) for job_id in live})
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        del registry
    return {
        "jobs": n,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "status_cycles": cycles,
        "cpu_ms_per_job": round(1000 * cpu / n, 3),
        "bytes_per_tracked_job": round(kept / len(live)),
    }


def bench_emulator_listing(held: int, listed: int, repeats: int = 20) -> dict[str, Any]:
    """How the emulator copes with many jobs: it holds ``held`` instant jobs and answers an
    ``id=`` listing of ``listed`` of them (the plugin's status request)."""
    with common.emulator("--instant", "--job-seconds", "36000") as url:
        client = common.client(url)
        ids = common.submit_all(client, held, concurrency=16)
        sample = ids[:: max(1, held // listed)][:listed]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            assert len(client.list_jobs(sample)) == len(sample)
            times.append(time.perf_counter() - start)
    times.sort()
    return {
        "jobs_held": held,
        "ids_listed": len(sample),
        "median_ms": round(1000 * times[len(times) // 2], 1),
        "max_ms": round(1000 * times[-1], 1),
    }


def bench_end_to_end(count: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="prominence-bench-"))
    try:
        shutil.copytree(HERE / "workflow", workdir / "wf")
        stats_file = workdir / "stats.json"
        with common.emulator("--state-dir", str(workdir / "emulator")) as url:
            env = {**os.environ, "PROMINENCE_URL": url, "PROMINENCE_TOKEN": common.TOKEN}
            env["PATH"] = f"{common.BIN}{os.pathsep}{env.get('PATH', '')}"
            completed = subprocess.run(
                [
                    sys.executable, str(HERE / "profile_snakemake.py"), str(stats_file), "--",
                    "--executor", "prominence", "--jobs", "100",
                    "--default-storage-provider", "fs",
                    "--default-storage-prefix", str(workdir / "storage"),
                    "--prominence-storage-plugins", "image",
                    "--seconds-between-status-checks", "1",
                    "--config", f"count={count}", "--quiet",
                ],
                cwd=workdir / "wf", env=env, capture_output=True, text=True,
            )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr[-3000:])
        stats = json.loads(stats_file.read_text())
        produced = len(list((workdir / "storage" / "out").iterdir()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    plugin_wall = stats["plugin_wall"] - stats.get("callback_wall", 0.0)
    plugin_cpu = stats["plugin_cpu"] - stats.get("callback_cpu", 0.0)
    return {
        "jobs": count,
        "outputs": produced,
        "total_wall_s": round(stats["total_wall"], 2),
        "plugin_wall_s": round(plugin_wall, 3),
        "plugin_cpu_s": round(plugin_cpu, 3),
        "plugin_share_of_wall": round(plugin_wall / stats["total_wall"], 4),
    }


def table(title: str, rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    lines = [f"\n{title}", "  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True))]
    lines += [
        "  ".join(str(r[k]).rjust(w) for k, w in zip(keys, widths, strict=True)) for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for CI)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    if args.quick:
        sizes = {"submission": [20], "polling": [50], "overhead": 200, "e2e": 3,
                 "emulator": (300, 100)}  # fmt: skip
    else:
        sizes = {"submission": [100, 1000], "polling": [100, 1000, 10000], "overhead": 10000,
                 "e2e": 200, "emulator": (10000, 500)}  # fmt: skip
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    results: dict[str, Any] = {"machine": machine, "quick": args.quick}
    results["submission"] = bench_submission(sizes["submission"], latency=0.1)
    print(table("Submission (emulator latency 0.1 s per request)", results["submission"]))
    results["polling"] = bench_polling(sizes["polling"])
    print(table("Polling: one status cycle vs one GET per job", results["polling"]))
    results["overhead"] = bench_overhead(sizes["overhead"])
    print(table("Plugin overhead (emulator in another process)", [results["overhead"]]))
    results["emulator"] = bench_emulator_listing(*sizes["emulator"])
    print(table("Emulator: an id= listing among many held jobs", [results["emulator"]]))
    results["end_to_end"] = bench_end_to_end(sizes["e2e"])
    print(table("End to end: snakemake --executor prominence", [results["end_to_end"]]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{json.dumps(machine)}\nFigures written to {args.out}")


if __name__ == "__main__":
    main()
