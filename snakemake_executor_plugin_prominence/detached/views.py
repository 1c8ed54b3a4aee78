"""What ``prominence-snakemake status`` and ``list`` print, from the jobs the server returned
(pure: no HTTP, the time is passed in)."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from snakemake_executor_plugin_prominence.detached import headjob
from snakemake_executor_plugin_prominence.job.labels import RUN_LABEL

#: ``status`` warns once the head has used this fraction of its walltime.
WALLTIME_WARNING_FRACTION = 0.8


def counts_line(jobs: Iterable[dict[str, Any]]) -> str:
    """``"3 completed, 2 running"`` (states in alphabetical order), or ``"none yet"``."""
    counts = Counter(str(j.get("status")) for j in jobs)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none yet"


def walltime_lines(head: dict[str, Any], now: float) -> list[str]:
    """How much of its walltime a running head has used; a warning past 80 %.

    At its walltime the PROMINENCE worker SIGKILLs the head, which then can neither delete
    its jobs nor copy its log: the run stops being tracked.
    """
    walltime = (head.get("resources") or {}).get("walltime")
    started = (head.get("events") or {}).get("startTime")
    if head.get("status") != "running" or not walltime or not started:
        return []
    used_min = max(0.0, now - float(started)) / 60
    fraction = used_min / float(walltime)
    lines = [f"Head walltime: {used_min:.0f} of {walltime} min used ({fraction:.0%})."]
    if fraction >= WALLTIME_WARNING_FRACTION:
        left = max(0.0, float(walltime) - used_min)
        lines.append(
            f"WARNING: the head job reaches its walltime in about {left:.0f} min. PROMINENCE "
            "then kills it with SIGKILL: the run stops tracking its jobs and its log is not "
            "copied to storage. Jobs it leaves are found (and deleted) by "
            "`prominence-snakemake cancel`; re-submit with a longer "
            "--prominence-head-walltime to resume."
        )
    return lines


def run_folder(head: dict[str, Any]) -> str | None:
    """Where the head copies its log and report (from its task env), if it says."""
    for task in head.get("tasks") or []:
        folder = (task.get("env") or {}).get(headjob.RUN_FOLDER_ENV)
        if folder:
            return str(folder)
    return None


@dataclass(frozen=True)
class RunRow:
    run_id: str
    head_id: int
    state: str
    created: int
    workflow: str
    active_jobs: str


def run_rows(heads: Iterable[dict[str, Any]], active: Iterable[dict[str, Any]]) -> list[RunRow]:
    """One row per head job (detailed listings: they carry labels), newest first, with the
    run's active jobs counted by state from ``active`` (one listing of all detached runs)."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for job in active:
        labels = job.get("labels") or {}
        if labels.get(headjob.HEAD_LABEL):
            continue
        by_run.setdefault(str(labels.get(RUN_LABEL, "")), []).append(job)
    rows = []
    for head in heads:
        labels = head.get("labels") or {}
        run_id = str(labels.get(RUN_LABEL, "?"))
        jobs = by_run.get(run_id, [])
        rows.append(
            RunRow(
                run_id=run_id,
                head_id=int(head.get("id", 0)),
                state=str(head.get("status", "?")),
                created=int((head.get("events") or {}).get("createTime", 0)),
                workflow=str(labels.get(headjob.WORKFLOW_LABEL, "?")),
                active_jobs=counts_line(jobs) if jobs else "-",
            )
        )
    return sorted(rows, key=lambda r: (r.created, r.head_id), reverse=True)


def format_rows(rows: list[RunRow]) -> str:
    header = ("RUN", "HEAD", "STATE", "CREATED (UTC)", "WORKFLOW", "ACTIVE JOBS")
    table = [header] + [
        (
            r.run_id,
            str(r.head_id),
            r.state,
            datetime.datetime.fromtimestamp(r.created, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            r.workflow,
            r.active_jobs,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    )
