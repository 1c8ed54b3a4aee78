"""Jobs PROMINENCE keeps too long: held jobs, and jobs past their queue limit.

**Held jobs.** HTCondor holds a job that goes over its memory (or whose deployment stalled).
While it is held the server lists it ``failed`` *without* a ``statusReason`` key (a removed
job always has the key, possibly empty); a periodic rule removes a job held for more than
80 s, and only then is it listed ``killed`` / ``Job used too much memory``. Taking the first
bare ``failed`` as final loses that reason, so a held job stays tracked for
:data:`HELD_GRACE_SECONDS`; a job still held after that is deleted and failed with what we
know.

**Queue limit.** The server applies ``maximumTimeInQueue`` only to jobs that are held,
evicted, or whose infrastructure failed, is unable or is waiting; a job idle for any other
reason (queued for a slot on resources already deployed) is never removed by it. Users expect
a deadline, so the plugin keeps one itself: a job that has not started within its limit after
this run submitted it is deleted. The limit is read from the job's description
(``policies.maximumTimeInQueue``, minutes, 0: none), so the setting and the rule's resource
both count, and the wait is measured on this machine's monotonic clock from the submission.

:class:`OverdueJobs` only decides and remembers; :class:`tracking.JobTracker` deletes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: How long a job may stay held before this run deletes it, counted from the first status check
#: that saw it held (which is at or after the hold began, so no poll interval needs adding):
#: the server removes a job held for more than 80 s, its periodic rules are evaluated about
#: once a minute (HTCondor's PERIODIC_EXPR_INTERVAL), and its JobRouter copies a routed job's
#: state back once a minute (JOB_ROUTER_POLLING_PERIOD). A constant, not a setting: it follows
#: the server's mechanics, not a user's preference. After it, the run notices at its next
#: status check (at most --prominence-max-status-interval later).
HELD_GRACE_SECONDS = 80.0 + 60.0 + 60.0
#: A job this run deleted that is still listed unfinished this long afterwards is failed
#: without waiting for PROMINENCE any longer (and without its final details).
DELETE_CONFIRM_SECONDS = 300.0

QUEUE_LIMIT_RESOURCE = "prominence_max_time_in_queue"
QUEUE_LIMIT_SETTING = "--prominence-max-time-in-queue"


@dataclass(frozen=True, slots=True)
class Request:
    """What the run asked of one job, for the queue deadline and the messages."""

    #: ``policies.maximumTimeInQueue`` in minutes; None: no limit (absent, 0 or -1)
    queue_limit: int | None = None
    #: where the limit came from, in the user's words
    limit_source: str = ""
    #: ``cpus 4, memory 2 GB from resources.mem_mb, disk 10 GB``
    asked: str = ""

    @classmethod
    def of(cls, description: Mapping[str, Any], job: Any = None) -> Request:
        """From the job description sent to ``POST /jobs`` (and the Snakemake job, to say
        whether a rule or the setting gave the limit)."""
        minutes = (description.get("policies") or {}).get("maximumTimeInQueue")
        limit = minutes if type(minutes) is int and minutes > 0 else None
        source = ""
        if limit is not None:
            source = limit_source(job) if job is not None else "policies.maximumTimeInQueue"
        return cls(limit, source, asked(description.get("resources") or {}))


def limit_source(job: Any) -> str:
    """``resource prominence_max_time_in_queue of rule align``, or the setting's flag."""
    members = list(job.jobs) if job.is_group() else [job]
    for member in members:
        if any(name == QUEUE_LIMIT_RESOURCE for name, _ in member.resources.items()):
            return f"resource {QUEUE_LIMIT_RESOURCE} of rule {member.name}"
    return QUEUE_LIMIT_SETTING


def asked(resources: Mapping[str, Any]) -> str:
    """The requested resources in words, naming the Snakemake resource behind the memory."""
    parts = []
    if "cpus" in resources:
        parts.append(f"cpus {resources['cpus']}")
    if "memory" in resources:
        parts.append(f"memory {resources['memory']} GB from resources.mem_mb")
    if "disk" in resources:
        parts.append(f"disk {resources['disk']} GB")
    if resources.get("nodes", 1) != 1:
        parts.append(f"nodes {resources['nodes']}")
    return ", ".join(parts)


def is_held(entry: Mapping[str, Any]) -> bool:
    """True for a job HTCondor holds: listed ``failed`` with no ``statusReason`` key at all.
    Not final: the server removes it later and then gives the reason."""
    return entry.get("status") == "failed" and "statusReason" not in entry


def has_started(entry: Mapping[str, Any]) -> bool:
    """True once the listing shows the job running, or a start time for it."""
    start = (entry.get("events") or {}).get("startTime")
    return entry.get("status") == "running" or (type(start) is int and start > 0)


def minutes(seconds: float) -> str:
    """``61.3 min``: a decimal, so that a wait just over a 1-minute limit does not read 1 min."""
    return f"{seconds / 60:.1f} min"


def last_seen(entry: Mapping[str, Any]) -> str:
    """How PROMINENCE last listed a job: ``waiting: No matching resources currently ...``."""
    if is_held(entry):
        return "failed without a reason (held)"
    status = str(entry.get("status") or "unknown")
    reason = str(entry.get("statusReason") or "").strip()
    return f"{status}: {reason}" if reason else f"{status} (no reason given)"


@dataclass(slots=True)
class _Watched:
    """What is remembered per unfinished job (a few dozen bytes)."""

    request: Request
    submitted_at: float | None
    started: bool = False
    held_since: float | None = None
    #: when this run deleted it, and why (the message its failure gets)
    deleted_at: float | None = None
    reason: str = ""


class OverdueJobs:
    """Per job: when it was submitted, whether it started, since when it is held, and, once
    this run deleted it, why. Thread-safe: submissions are noted on other threads."""

    def __init__(
        self,
        *,
        held_grace: float = HELD_GRACE_SECONDS,
        confirm: float = DELETE_CONFIRM_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.held_grace = held_grace
        self.confirm = confirm
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[int, _Watched] = {}

    def submitted(self, job_id: int, request: Request) -> None:
        """The job exists now: its queue time starts."""
        with self._lock:
            self._jobs[job_id] = _Watched(request, self._clock())

    def forget(self, job_id: int) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def check(self, job_id: int, entry: Mapping[str, Any]) -> str | None:
        """For a job listed as not finished (``entry``, its listing entry): the reason to
        delete it now, else None. A job already deleted is not deleted again."""
        now = self._clock()
        with self._lock:
            watched = self._jobs.setdefault(job_id, _Watched(Request(), None))
            if watched.deleted_at is not None:
                return None
            watched.started = watched.started or has_started(entry)
            if not is_held(entry):
                watched.held_since = None
            elif watched.held_since is None:
                watched.held_since = now
            if watched.held_since is not None and now - watched.held_since >= self.held_grace:
                return self._held_message(watched.request, now - watched.held_since)
            limit = watched.request.queue_limit
            waited = now - watched.submitted_at if watched.submitted_at is not None else 0.0
            if limit is not None and not watched.started and waited > limit * 60:
                return self._queue_message(watched.request, waited, entry)
            return None

    def deleted(self, job_id: int, reason: str) -> None:
        """This run deleted the job, for ``reason``."""
        with self._lock:
            watched = self._jobs.get(job_id)
            if watched is not None:
                watched.deleted_at, watched.reason = self._clock(), reason

    def deleted_because(self, job_id: int) -> str | None:
        """Why this run deleted the job (None: it did not)."""
        with self._lock:
            watched = self._jobs.get(job_id)
            if watched is None or watched.deleted_at is None:
                return None
            return watched.reason

    def unconfirmed(self, job_id: int, entry: Mapping[str, Any]) -> str | None:
        """For a job this run deleted that is still listed unfinished after ``confirm``
        seconds: the message to fail it with now. Else None."""
        now = self._clock()
        with self._lock:
            watched = self._jobs.get(job_id)
            if watched is None or watched.deleted_at is None:
                return None
            if now - watched.deleted_at < self.confirm:
                return None
            return (
                f"{watched.reason}; PROMINENCE still listed it as {last_seen(entry)} "
                f"{now - watched.deleted_at:.0f} s after this run deleted it"
            )

    @staticmethod
    def _held_message(request: Request, held_for: float) -> str:
        asked_for = f"; it asked for {request.asked}" if request.asked else ""
        return (
            f"was held by PROMINENCE for {held_for:.0f} s without a reason and deleted by this "
            "run. PROMINENCE holds a job that uses more memory than it asked for, rarely one "
            f"whose resources could not be deployed{asked_for}: raise mem_mb if the rule needs "
            "more"
        )

    @staticmethod
    def _queue_message(request: Request, waited: float, entry: Mapping[str, Any]) -> str:
        return (
            f"waited {minutes(waited)} in the queue without starting, over its limit of "
            f"{request.queue_limit} min ({request.limit_source}), and was deleted by this run; "
            f"PROMINENCE last listed it as {last_seen(entry)}"
        )
