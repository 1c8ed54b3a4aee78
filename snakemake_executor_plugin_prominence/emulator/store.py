"""Thread-safe job records: the emulator's HTCondor queue and history in one place.

A record is either in the queue (``in_queue``: idle, running, held, or finished with
``leaveInQueue``) or in the history (finished). Listing follows that split exactly as the real
server does: the default listing shows the queue, ``completed=true`` the history, ``id=`` both.

Instant-mode jobs never get a thread or a process: their state is a function of the clock and is
brought up to date lazily whenever a record is read (``refresh``), so holding 10,000 of them costs
only memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .hold import REASON_NO_RESOURCES_NOW
from .results import WorkerReport
from .submission import Demand

ACTIVE_STATES = ("idle", "running", "held")
TERMINAL_STATES = ("completed", "failed", "killed", "deleted")
ALL_STATES = (*ACTIVE_STATES, *TERMINAL_STATES)

REASON_DELETED = "Job deleted by user"
REASON_NO_RESOURCES = "No matching resources"
REASON_MEMORY = "Job used too much memory"


@dataclass
class JobRecord:
    """One job: what was submitted, who owns it, and what happened to it so far.

    ``status`` is the HTCondor side: ``idle``, ``running``, ``held`` (over its memory, until
    removed), or a terminal state. ``removed`` says a terminal state came from a removal
    (HTCondor JobStatus 3: a deletion, a rule) rather than from the run's exit.
    """

    id: int
    owner: str
    spec: dict
    demand: Demand
    created: float
    job_dir: Path | None
    job_token: str = ""
    #: while set, the job stays queued (shown as waiting) until this time (see ``hold``)
    held_until: float | None = None
    #: when the queue-time rule may remove it (``maximumTimeInQueue`` after submission)
    queue_deadline: float | None = None
    status: str = "idle"
    reason: str | None = None
    removed: bool = False
    #: the start of the last run (HTCondor's JobCurrentStartDate)
    started: float | None = None
    #: when the last run ended with a retry: the job is idle again since then
    went_idle: float | None = None
    #: when it was held for using too much memory
    held_at: float | None = None
    ended: float | None = None
    in_queue: bool = True
    stay_in_queue: bool = False
    #: how many runs started (HTCondor's JobRunCount)
    runs: int = 0
    #: the report of the last run that exited (what the server reads back), if any
    report: WorkerReport | None = None
    pgids: set[int] = field(default_factory=set)
    #: instant mode: when the current run ends, and what every run reports (see ``refresh``)
    instant_until: float | None = None
    instant_run: InstantRun | None = None

    @property
    def policies(self) -> dict:
        return self.spec.get("policies", {})

    @property
    def name(self) -> str:
        return self.spec.get("name", "")

    @property
    def labels(self) -> dict:
        return self.spec.get("labels", {})

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def max_retries(self) -> int:
        return int(self.policies.get("maximumRetries", 0))

    @property
    def waiting(self) -> bool:
        """Queued while no site can take it (shown as ``waiting``): a hold is on."""
        return self.status == "idle" and self.held_until is not None

    def start_run(self, now: float) -> None:
        """A run starts (a slot was found)."""
        self.status = "running"
        self.started = now
        self.went_idle = None
        self.held_until = None
        self.runs += 1

    def finish(self, status: str, reason: str | None, now: float | None = None) -> None:
        """The last run exited: the job ends; it leaves the queue unless it asked to stay."""
        self.status = status
        self.reason = reason
        self.ended = time.time() if now is None else now
        self.in_queue = self.stay_in_queue

    def remove(self, status: str, reason: str | None, now: float | None = None) -> None:
        """HTCondor removes the job (a deletion, or one of the server's rules)."""
        self.finish(status, reason, now)
        self.removed = True

    def refresh(self, now: float) -> None:
        """Bring an instant-mode job up to date with the clock (no-op for real jobs)."""
        if self.instant_until is None or self.instant_run is None or self.terminal:
            return
        if self.status == "idle" and self.held_until is not None:
            limit = self.queue_deadline
            if limit is not None and limit <= min(now, self.held_until):
                self.remove("failed", REASON_NO_RESOURCES_NOW, now=limit)
                return
            if now < self.held_until:
                return
            # The hold is over: it runs from then on (``instant_until`` already counts the hold).
            self.start_run(self.held_until)
        run = self.instant_run
        while self.status == "running" and now >= self.instant_until:
            self.report = run.report
            ends = self.instant_until
            if not run.exit_ok and self.runs <= self.max_retries:
                self.start_run(ends)  # HTCondor runs it again at once: a slot is free here
                self.instant_until = ends + run.seconds
                continue
            status, reason = run.report.verdict()
            self.finish(status, reason, now=ends)


@dataclass(frozen=True)
class InstantRun:
    """What every run of an instant-mode job does: how long it lasts and what it reports."""

    seconds: float
    report: WorkerReport
    exit_ok: bool


class JobStore:
    """All records, indexed by id and by owner, guarded by one re-entrant lock.

    The lock is public (``lock``) because the runner makes multi-step state changes (check the
    status, then start a process) that must be atomic with respect to DELETE.
    """

    def __init__(self, first_id: int = 1) -> None:
        self.lock = threading.RLock()
        self._jobs: dict[int, JobRecord] = {}
        self._by_owner: dict[str, list[int]] = {}
        self._next_id = first_id

    def reserve_id(self) -> int:
        """Allocate the next job id (ids only increase, like HTCondor cluster ids)."""
        with self.lock:
            job_id = self._next_id
            self._next_id += 1
            return job_id

    def add(self, record: JobRecord) -> None:
        with self.lock:
            self._jobs[record.id] = record
            self._by_owner.setdefault(record.owner, []).append(record.id)

    def get(self, job_id: int, now: float | None = None) -> JobRecord | None:
        with self.lock:
            record = self._jobs.get(job_id)
            if record is not None:
                record.refresh(time.time() if now is None else now)
            return record

    def owned(self, owner: str, ids: Iterable[int] | None = None) -> list[JobRecord]:
        """The owner's records (all, or those among ``ids``), brought up to date."""
        now = time.time()
        with self.lock:
            if ids is None:
                records = [self._jobs[i] for i in self._by_owner.get(owner, [])]
            else:
                found = (self._jobs.get(i) for i in dict.fromkeys(ids))
                records = [r for r in found if r is not None and r.owner == owner]
            for record in records:
                record.refresh(now)
            return records

    def all(self) -> list[JobRecord]:
        now = time.time()
        with self.lock:
            records = list(self._jobs.values())
            for record in records:
                record.refresh(now)
            return records

    def counts(self) -> dict[str, int]:
        """Number of jobs per status (every status present, zero if none)."""
        counts = dict.fromkeys(ALL_STATES, 0)
        for record in self.all():
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts
