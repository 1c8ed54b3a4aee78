"""What a finished PROMINENCE job's status means for Snakemake, in plain words.

Pure: a detailed job (as the server returns it) in, a verdict out. PROMINENCE reports
``completed`` even when the task exited non-zero, so success needs every task's exit code to
be 0. The status cycle that decides when a job has finished is ``run.tracking``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Statuses of a job that has not finished. ``pending`` replaces the first three on services
#: configured that way (the EOSC service is).
ACTIVE_STATUSES = frozenset({"idle", "pending", "deploying", "waiting", "running"})
TERMINAL_STATUSES = frozenset({"completed", "failed", "killed", "deleted"})


@dataclass(frozen=True)
class Verdict:
    """How a finished job ended: success, or failure with a one-line reason."""

    success: bool
    message: str


def is_finished(listing_entry: Mapping[str, Any]) -> bool:
    """True once the job is in a terminal state. Unknown statuses count as not finished:
    better to poll a job once more than to fail it on a status we do not understand."""
    return listing_entry.get("status") in TERMINAL_STATUSES


def exit_codes(job: Mapping[str, Any]) -> tuple[int | None, ...]:
    """Each task's exit code; None for a task that never produced one (e.g. image pull)."""
    execution = job.get("execution") or {}
    tasks = execution.get("tasks") or []
    codes: list[int | None] = []
    for task in tasks:
        code = task.get("exitCode") if isinstance(task, Mapping) else None
        codes.append(code if isinstance(code, int) and not isinstance(code, bool) else None)
    return tuple(codes)


def verdict(job: Mapping[str, Any], deleted_because: str | None = None) -> Verdict:
    """Judge a detailed job (``GET /jobs/<id>`` or ``?id=...&detail``) that has finished.
    ``deleted_because``: this run deleted it (held too long, queued past its limit), and why:
    that, not PROMINENCE's "Job deleted by user", is what the user needs to read."""
    if deleted_because:
        return Verdict(False, deleted_because)
    status = str(job.get("status", "unknown"))
    codes = exit_codes(job)
    if status == "completed" and codes and all(code == 0 for code in codes):
        return Verdict(True, "completed with exit code 0")
    return Verdict(False, failure_message(job, codes))


def failure_message(job: Mapping[str, Any], codes: tuple[int | None, ...] | None = None) -> str:
    """``killed: Walltime limit exceeded (walltime 5 min from resources.runtime) at site X``."""
    codes = exit_codes(job) if codes is None else codes
    status = str(job.get("status", "unknown"))
    reason = str(job.get("statusReason") or "").strip()
    text = f"{status}: {reason}" if reason else status
    context = _reason_context(job, reason)
    if context:
        text += f" ({context})"
    # A deleted or killed job's task was stopped from outside: its exit code says nothing.
    nonzero = [code for code in codes if code not in (0, None)]
    if status in ("deleted", "killed"):
        nonzero = []
    if nonzero:
        text += (
            f" with exit code {nonzero[0]}"
            if len(nonzero) == 1
            else (" with exit codes " + ", ".join(map(str, nonzero)))
        )
    elif status == "completed" and (not codes or None in codes):
        text += " but PROMINENCE reported no exit code"
    site = (job.get("execution") or {}).get("site")
    if site:
        text += f" at site {site}"
    if "too much memory" in reason.lower():
        text += ": raise mem_mb"
    return text


def _reason_context(job: Mapping[str, Any], reason: str) -> str:
    """The part of the job description that explains a reason, e.g. the walltime asked for."""
    lowered = reason.lower()
    if "walltime" in lowered:
        walltime = (job.get("resources") or {}).get("walltime")
        if walltime:
            return f"walltime {walltime} min from resources.runtime"
        return "no walltime was requested, so the site default (720 min) applied"
    if "memory" in lowered:
        memory = (job.get("resources") or {}).get("memory")
        if memory:
            return f"memory {memory} GB from resources.mem_mb"
    if "image" in lowered:
        images = [t.get("image") for t in job.get("tasks") or [] if isinstance(t, Mapping)]
        if images:
            return "image " + ", ".join(str(i) for i in images)
    if reason == "No matching resources":
        resources = job.get("resources") or {}
        asked = ", ".join(
            f"{key} {resources[key]}"
            for key in ("cpus", "memory", "disk", "nodes")
            if key in resources
        )
        if asked:
            return f"no site can provide {asked}"
    if reason == "No matching resources currently available":
        # The server removes a job still waiting for resources at its maximumTimeInQueue.
        limit = (job.get("policies") or {}).get("maximumTimeInQueue")
        if limit:
            return f"no site had room within maximumTimeInQueue {limit} min"
    return ""
