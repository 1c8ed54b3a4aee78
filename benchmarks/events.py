"""What the run's state picture and job events cost: plugin CPU per job at N instant jobs,
with events off, with state lines only (the default) and with every event delivered.

    python benchmarks/events.py                 # 10,000 jobs, each variant twice, interleaved
    python benchmarks/events.py --quick         # 200 jobs, once each (the test suite runs this)

Each measurement runs the plugin's own path from description to verdict, as
``run.bench_overhead`` does (submission pool, status cycles, verdicts), against a fresh
``prominence-emulator --instant`` in its own process, and adds what the executor adds:

- ``off``: no state picture at all (the plugin before it existed);
- ``lines``: the state picture and its state lines, events not built (nobody listens: the
  default at normal verbosity without an events file);
- ``file``: every event built and appended to a JSON-lines file (``--prominence-events-file``
  at normal verbosity);
- ``verbose``: the same, and every event also delivered to Snakemake's own log handler at
  DEBUG level (``--verbose``; the handler writes to /dev/null here), with a state line at every
  change.

CPU is ``time.process_time`` of this process (all threads). The variants run interleaved, so
machine noise spreads over all of them; compare them within one run. The emulator's request
counts show that the state picture makes no request of its own.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from snakemake_executor_plugin_prominence.run import events as job_events
from snakemake_executor_plugin_prominence.run import tracking
from snakemake_executor_plugin_prominence.run.progress import RunProgress

VARIANTS = ("off", "lines", "file", "verbose")


class Timed:
    """Wraps the state picture and adds up the CPU time of the calling thread spent in its
    methods (submissions call it from the pool's threads, the status cycle from this one)."""

    def __init__(self, progress: RunProgress) -> None:
        self.progress = progress
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.progress, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - start

        return timed


def make_logger(variant: str, devnull: Any) -> logging.Logger:
    """A logger like Snakemake's: its own stream handler, filter and formatter; DEBUG level
    for ``verbose``, INFO otherwise."""
    from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter

    logger = logging.getLogger(f"benchmark-events-{variant}-{time.monotonic_ns()}")
    logger.propagate = False
    verbose = variant == "verbose"
    handler = ColorizingTextHandler(nocolor=True, stream=devnull)
    handler.addFilter(DefaultFilter(set(), False, verbose, False, False))
    handler.setFormatter(DefaultFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    return logger


def one_run(variant: str, n: int, workdir: Path, devnull: Any) -> dict[str, Any]:
    """N jobs from description to verdict, with the state picture as ``variant`` says."""
    progress: Timed | None = None
    events_file = workdir / f"events-{variant}-{time.monotonic_ns()}.jsonl"
    if variant != "off":
        logger = make_logger(variant, devnull)
        sink = job_events.EventSink(logger, None if variant == "lines" else events_file)
        progress = Timed(
            RunProgress(
                logger.info, run_id=common.RUN.run_id, sink=sink, verbose=variant == "verbose"
            )
        )
    jobs = {i: common.BenchJob(i) for i in range(n)}

    def created(tag: int, prominence_id: int) -> None:
        if progress is not None:
            progress.submitted(prominence_id, jobs[tag])

    with common.emulator("--instant", "--job-seconds", "2") as url:
        client = common.client(url)
        cpu, wall = time.process_time(), time.perf_counter()
        ids = common.submit_all(client, n, created=created)

        def add_progress(result: tracking.CycleResult, verdicts: dict[int, Any]) -> None:
            if progress is None:
                return
            progress.observe(result.entries)
            for prominence_id, outcome in verdicts.items():
                progress.finished(prominence_id, result.finished[prominence_id], outcome.success)
            progress.report()

        cycles = common.poll_to_verdicts(client, ids, add_progress)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        requests = common.request_count(url)
    if progress is not None:
        progress.close()
    records = len(events_file.read_text().splitlines()) if events_file.exists() else 0
    return {
        "variant": variant,
        "cpu_ms_per_job": 1000 * cpu / n,
        "progress_us_per_job": 1e6 * (progress.seconds if progress else 0.0) / n,
        "wall_s": wall,
        "status_cycles": cycles,
        "requests": requests,
        "event_records": records,
    }


def bench_events(n: int, repeats: int) -> list[dict[str, Any]]:
    """Each variant ``repeats`` times, interleaved; one row per variant (medians)."""
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    with (
        tempfile.TemporaryDirectory(prefix="prominence-bench-events-") as tmp,
        open(os.devnull, "w") as devnull,
    ):
        for _ in range(repeats):
            for variant in VARIANTS:
                runs[variant].append(one_run(variant, n, Path(tmp), devnull))
    # of the last run: POSTs, then a listing (and a detail read) per status cycle
    return common.variant_rows(
        runs,
        n,
        medians={"progress_us_per_job": 1},
        from_last_run=("requests", "status_cycles", "event_records"),
    )


def bytes_per_tracked_job(n: int = 2000) -> int:
    """Memory the state picture keeps per unfinished job (the Snakemake job is Snakemake's)."""
    jobs = [common.BenchJob(i) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    progress = RunProgress(lambda line: None)
    for i, job in enumerate(jobs):
        progress.submitted(i, job)
    progress.observe({i: {"status": "running"} for i in range(n)})
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    return round(kept / n)


def main() -> None:
    args, n, repeats = common.variant_arguments(__doc__.splitlines()[0])
    rows = bench_events(n, repeats)
    common.print_table(
        f"State picture and job events at {n} instant jobs ({repeats} run(s) per variant)", rows
    )
    memory = bytes_per_tracked_job()
    print(f"State picture: {memory} bytes per unfinished job")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
