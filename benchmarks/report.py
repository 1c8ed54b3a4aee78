"""What the run report costs: plugin CPU per job at N instant jobs with the report on and off,
the time to build and write it at that N, its file sizes, and the bytes it keeps per job.

    python benchmarks/report.py                 # 10,000 jobs, each variant twice, interleaved
    python benchmarks/report.py --quick         # 200 jobs, once each (the test suite runs this)

Each run goes the plugin's own path from description to verdict, as ``events.py`` does
(submission pool, status cycles, detailed reads of finished jobs, verdicts), against a fresh
``prominence-emulator --instant`` in its own process; ``on`` adds what the executor adds for the
report: ``RunReport.add`` of every finished job's details (the same details the verdict reads)
and, once at the end, ``RunReport.finish`` (reported apart as the build time: rows, rules,
suggestions, jobs.tsv, jobs.jsonl, rules.tsv; report.html only if its extra is installed).

The per-job labels the report relies on (``snakemakegroup``, ``snakemakewildcards``) are built
in both variants, since they are always sent; their cost is measured apart against the labels
as they were before (``labels_us_per_job``).

CPU is ``time.process_time`` of this process (all threads); the variants run interleaved, so
machine noise spreads over both: compare them within one run.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import tempfile
import time
import timeit
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from snakemake_executor_plugin_prominence.job import description
from snakemake_executor_plugin_prominence.job.labels import job_labels
from snakemake_executor_plugin_prominence.report.rows import record_of
from snakemake_executor_plugin_prominence.report.writer import RunReport
from snakemake_executor_plugin_prominence.run import tracking

VARIANTS = ("off", "on")
FILES = ("jobs.tsv", "jobs.jsonl", "rules.tsv", "report.html")


def one_run(variant: str, n: int, workdir: Path) -> dict[str, Any]:
    """N jobs from description to verdict, with the run report as ``variant`` says."""
    logger = logging.getLogger(f"benchmark-report-{variant}")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    collected = RunReport(common.RUN.run_id, workdir / variant, 0.5)
    adding = 0.0
    with common.emulator("--instant", "--job-seconds", "2") as url:
        client = common.client(url)
        cpu, wall = time.process_time(), time.perf_counter()
        ids = common.submit_all(client, n)

        def add_records(result: tracking.CycleResult, verdicts: dict[int, Any]) -> None:
            nonlocal adding
            if variant != "on":
                return
            start = time.thread_time()
            for prominence_id, outcome in verdicts.items():
                collected.add(result.finished[prominence_id], outcome.success)
            adding += time.thread_time() - start

        cycles = common.poll_to_verdicts(client, ids, add_records)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        build_s, sizes = 0.0, {}
        if variant == "on":
            start = time.perf_counter()
            directory = collected.finish(client, logger)
            build_s = time.perf_counter() - start
            assert directory is not None
            sizes = {
                name: (directory / name).stat().st_size
                for name in FILES
                if (directory / name).exists()
            }
        client.close()
    return {
        "variant": variant,
        "cpu_ms_per_job": 1000 * cpu / n,
        "report_us_per_job": 1e6 * adding / n,
        "build_s": build_s,
        "sizes": sizes,
        "records": len(collected.records()),
        "wall_s": wall,
        "status_cycles": cycles,
    }


def bench_report(n: int, repeats: int) -> list[dict[str, Any]]:
    """Each variant ``repeats`` times, interleaved; one row per variant (medians)."""
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="prominence-bench-report-") as tmp:
        for _ in range(repeats):
            for variant in VARIANTS:
                runs[variant].append(one_run(variant, n, Path(tmp) / uuid.uuid4().hex))
    return common.variant_rows(
        runs,
        n,
        medians={"report_us_per_job": 1, "build_s": 3},
        from_last_run=("records", "sizes"),
    )


def bytes_per_record(n: int = 2000) -> int:
    """Memory the report keeps per finished job: its record, kept from real-shaped details."""
    details = []
    for i in range(n):
        description = common.describe(i)
        details.append(
            {
                "id": 100000 + i,
                "status": "completed",
                "name": description["name"],
                "events": {"createTime": 1764316800, "startTime": 1764316830,
                           "endTime": 1764317000},
                "resources": description["resources"],
                "labels": description["labels"],
                "execution": {
                    "site": "OpenStack-UNIV-LILLE",
                    "cpu": {"vendor": "GenuineIntel", "model": "Intel(R) Xeon(R) Platinum 8276",
                            "clock": "3039.367"},
                    "provisionedResources": {"cpus": 4, "memory": 8, "disk": 20, "nodes": 1},
                    "stageInTime": 1.25 + i / 1000,
                    "stageOutTime": 0.41 + i / 1000,
                    "maxMemoryUsageKB": 242814 + i,
                    "tasks": [{"cpuTimeUsage": 300.5 + i, "exitCode": 0,
                               "imagePullStatus": "completed", "imagePullTime": 26.149 + i,
                               "maxResidentSetSizeKB": 242814 + i, "retries": 0,
                               "wallTimeUsage": 160.25 + i}],
                },
            }
        )  # fmt: skip
    collected = RunReport("bench", Path("unused"), 0.5)
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for detail in details:
        collected.add(detail)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    assert len(collected.records()) == n and record_of(details[0]).rule == "align"
    return round(kept / n)


def labels_cost(n: int = 5000) -> tuple[float, float]:
    """µs per job of the per-job labels as built now, and as they were before the report."""
    jobs = [common.BenchJob(i) for i in range(n)]

    def before(job: common.BenchJob) -> dict[str, str]:
        return {
            "snakemakerule": description.label_value(description.rule_label(job)),  # type: ignore[arg-type]
            "snakemakejob": description.label_value(job.jobid),
            "snakemakeattempt": str(job.attempt),
            "snakemakekey": uuid.uuid4().hex,
        }

    now = min(timeit.repeat(lambda: [job_labels(j) for j in jobs], number=1, repeat=3))
    old = min(timeit.repeat(lambda: [before(j) for j in jobs], number=1, repeat=3))
    return 1e6 * now / n, 1e6 * old / n


def main() -> None:
    args, n, repeats = common.variant_arguments(__doc__.splitlines()[0])
    rows = bench_report(n, repeats)
    common.print_table(
        f"Run report at {n} instant jobs ({repeats} run(s) per variant)", rows, skip=("sizes",)
    )
    sizes = rows[-1]["sizes"]
    print("Report files: " + ", ".join(f"{name} {size:,} bytes" for name, size in sizes.items()))
    memory = bytes_per_record()
    print(f"Run report: {memory} bytes kept per finished job")
    now, before = labels_cost()
    print(f"Per-job labels: {now:.1f} µs per job now, {before:.1f} µs before the report's labels")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        figures = {"rows": rows, "bytes_per_record": memory, "labels_us": [now, before]}
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
