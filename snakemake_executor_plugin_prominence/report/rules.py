"""The run report's per-rule table (``rules.tsv``), its right-sizing suggestions and the run
summary, all computed from the job records at the end of the run.

Suggestions come only from successful jobs that report the figure, and only from
:data:`MIN_JOBS_FOR_SUGGESTION` of them or more; each adds a stated safety margin to the
largest value observed (see ``docs/further.md``, "Run report"):

- ``threads``: the most cores a job kept busy (CPU time / run time), rounded up to whole cores
  after ignoring :data:`THREADS_SLACK` of a core, at least 1;
- ``mem_mb``: the highest peak memory times ``MEMORY_MARGIN``, rounded up to whole GB against
  HTCondor's 1000 MiB per GB, written in MB (GB x 1024) so that the plugin asks for exactly
  those GB; only from peaks that are the rule's own, or when even a peak that may be the image
  pull's fits the 1 GB minimum; more than asked after a memory kill (:mod:`memory`);
- ``runtime`` (minutes): the longest time PROMINENCE held a job (start to end: image pull,
  stage-in, tasks, stage-out) times :data:`RUNTIME_MARGIN`, rounded up to whole minutes.

Core-hours requested are the requested cpus times the time PROMINENCE held the job (start to
end); core-hours used are the CPU time the tasks reported. For a job PROMINENCE ran more than
once both are its last run's (the server keeps no other); queue waits leave such jobs out.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from snakemake_executor_plugin_prominence.report.memory import (
    MIN_JOBS,
    is_memory_kill,
    peak_mib,
    show_amount,
    suggest_mem_mb,
)
from snakemake_executor_plugin_prominence.report.rows import (
    DECIMALS,
    JobRecord,
    iso,
    queue_wait,
    rounded,
)

RULE_COLUMNS = (
    "rule",
    "jobs",
    "ok",
    "failed",
    "retried",
    "memory_kills",
    "core_hours_requested",
    "core_hours_used",
    "core_hours_failed",
    "cpu_efficiency_median",
    "cpu_efficiency_max",
    "peak_memory_mib_median",
    "peak_memory_mib_max",
    "peak_memory_maybe_pull",
    "run_s_median",
    "run_s_max",
    "queue_wait_s_mean",
    "suggested_threads",
    "suggested_mem_mb",
    "suggested_runtime_min",
    "suggestion",
)

MIN_JOBS_FOR_SUGGESTION = MIN_JOBS
THREADS_SLACK = 0.1
RUNTIME_MARGIN = 1.5
#: the rule name of jobs whose identity PROMINENCE could not give back
UNKNOWN_RULE = "NA"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _requested_core_hours(rec: JobRecord) -> float:
    held = rec.held_s
    return (rec.requested_cpus or 0) * held / 3600 if held is not None else 0.0


def _efficiency(rec: JobRecord) -> float | None:
    if rec.tasks_run == 0 or rec.cpu_time_s is None or not rec.run_s or not rec.requested_cpus:
        return None
    return rec.cpu_time_s / (rec.run_s * rec.requested_cpus)


def _cores_busy(rec: JobRecord) -> float | None:
    if rec.tasks_run == 0 or rec.cpu_time_s is None or not rec.run_s:
        return None
    return rec.cpu_time_s / rec.run_s


def _retried(rec: JobRecord) -> bool:
    """A Snakemake retry (attempt > 1) or a job PROMINENCE itself ran more than once."""
    return (rec.attempt or 1) > 1 or rec.prominence_retries > 0


def memory_killed(rec: JobRecord) -> bool:
    return is_memory_kill(rec.status, rec.reason)


def _queue_waits(records: Iterable[JobRecord]) -> list[float]:
    return [wait for wait, _ in map(queue_wait, records) if wait is not None]


def _max_or_none(values: Iterable[float | int | None]) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def suggest(records: Sequence[JobRecord]) -> dict[str, Any]:
    """``suggested_threads``, ``suggested_mem_mb``, ``suggested_runtime_min`` (None where
    the data does not support one) and the one-line ``suggestion`` text."""
    ok = [rec for rec in records if rec.ok]
    parts: list[str] = []
    missing: list[str] = []
    result: dict[str, Any] = {
        "suggested_threads": None,
        "suggested_mem_mb": None,
        "suggested_runtime_min": None,
    }

    def enough(values: list[float], what: str) -> bool:
        if len(values) >= MIN_JOBS_FOR_SUGGESTION:
            return True
        missing.append(f"{what} from {len(values)} successful job(s)")
        return False

    cores = [value for value in map(_cores_busy, ok) if value is not None]
    if enough(cores, "CPU use"):
        threads = max(1, math.ceil(max(cores) - THREADS_SLACK))
        result["suggested_threads"] = threads
        was = _max_or_none(rec.requested_cpus for rec in ok)
        parts.append(
            f"threads={threads} (asked {show_amount(was)}; at most {max(cores):.2f} cores busy)"
        )
    memory = suggest_mem_mb(records)
    result["suggested_mem_mb"] = memory.mem_mb
    if memory.request is not None:
        parts.append(memory.request)
    notes = list(memory.notes)
    if memory.too_few is not None:
        missing.append(memory.too_few)
    held = [value for value in (rec.held_s for rec in ok) if value is not None]
    if enough(held, "run time"):
        minutes = max(1, math.ceil(max(held) * RUNTIME_MARGIN / 60))
        result["suggested_runtime_min"] = minutes
        was = _max_or_none(rec.requested_walltime_min for rec in ok)
        parts.append(
            f"runtime={minutes} (asked {show_amount(was)} min; longest {max(held):.0f} s "
            f"+{RUNTIME_MARGIN - 1:.0%})"
        )
    text = "request " + ", ".join(parts) if parts else "no suggestion"
    said = bool(parts)
    if notes:
        text += ("; " if said else ": ") + "; ".join(notes)
        said = True
    if missing:
        text += ("; " if said else ": ") + "too few for " + ", ".join(missing)
        text += f" (need {MIN_JOBS_FOR_SUGGESTION})"
    result["suggestion"] = text
    return result


def rule_rows(records: Iterable[JobRecord]) -> list[dict[str, Any]]:
    """One row per rule (sorted by name), in :data:`RULE_COLUMNS` order."""
    by_rule: dict[str, list[JobRecord]] = defaultdict(list)
    for rec in records:
        by_rule[rec.rule or UNKNOWN_RULE].append(rec)
    rows = []
    for rule in sorted(by_rule):
        recs = by_rule[rule]
        efficiencies = [value for value in map(_efficiency, recs) if value is not None]
        peaks = [value for value in map(peak_mib, recs) if value is not None]
        runs = [rec.run_s for rec in recs if rec.tasks_run and rec.run_s is not None]
        waits = _queue_waits(recs)
        rows.append(
            {
                "rule": rule,
                "jobs": len(recs),
                "ok": sum(rec.ok for rec in recs),
                "failed": sum(not rec.ok for rec in recs),
                "retried": sum(map(_retried, recs)),
                "memory_kills": sum(map(memory_killed, recs)),
                "core_hours_requested": rounded(sum(map(_requested_core_hours, recs))),
                "core_hours_used": rounded(sum((rec.cpu_time_s or 0.0) for rec in recs) / 3600),
                "core_hours_failed": rounded(
                    sum(_requested_core_hours(rec) for rec in recs if not rec.ok)
                ),
                "cpu_efficiency_median": rounded(_median(efficiencies)),
                "cpu_efficiency_max": rounded(_max_or_none(efficiencies)),
                "peak_memory_mib_median": rounded(_median(peaks)),
                "peak_memory_mib_max": rounded(_max_or_none(peaks)),
                "peak_memory_maybe_pull": sum(
                    peak_mib(rec) is not None and rec.image_pulled is not False for rec in recs
                ),
                "run_s_median": rounded(_median(runs)),
                "run_s_max": rounded(_max_or_none(runs)),
                "queue_wait_s_mean": rounded(statistics.fmean(waits) if waits else None),
                **suggest(recs),
            }
        )
    return rows


def summary(
    run_id: str,
    records: Sequence[JobRecord],
    rules: Sequence[dict[str, Any]],
    report_dir: str,
    threshold: float,
) -> dict[str, Any]:
    """The run's totals and its three most wasteful rules (requested minus used core-hours)."""
    created = [rec.created for rec in records if rec.created is not None]
    ended = [rec.ended for rec in records if rec.ended is not None]
    requested = sum(map(_requested_core_hours, records))
    used = sum((rec.cpu_time_s or 0.0) for rec in records) / 3600
    waits = _queue_waits(records)
    waste = sorted(
        (
            (round(row["core_hours_requested"] - row["core_hours_used"], DECIMALS), row["rule"])
            for row in rules
        ),
        key=lambda item: (-item[0], item[1]),
    )
    return {
        "run_id": run_id,
        "started_at": iso(min(created)) if created else None,
        "ended_at": iso(max(ended)) if ended else None,
        "jobs": len(records),
        "ok": sum(rec.ok for rec in records),
        "failed": sum(not rec.ok for rec in records),
        "memory_kills": sum(map(memory_killed, records)),
        "adopted": sum(rec.adopted for rec in records),
        "core_hours_requested": rounded(requested),
        "core_hours_used": rounded(used),
        "core_hours_failed": rounded(sum(_requested_core_hours(r) for r in records if not r.ok)),
        "queue_wait_total_h": rounded(sum(waits) / 3600),
        "cpu_efficiency_overall": rounded(used / requested) if requested else None,
        "worst_rules": [
            {"rule": rule, "wasted_core_hours": wasted} for wasted, rule in waste[:3] if wasted > 0
        ],
        "report_dir": report_dir,
        "low_cpu_efficiency_threshold": threshold,
    }
