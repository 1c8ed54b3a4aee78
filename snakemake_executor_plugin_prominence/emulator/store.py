"""Thread-safe job records: the emulator's HTCondor queue and history in one place.

A record is either in the queue (``in_queue``: idle, running, or finished with ``leaveInQueue``)
or in the history (finished). Listing follows that split exactly as the real server does: the
default listing shows the queue, ``completed=true`` the history, ``id=`` both.

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

from .submission import Demand

ACTIVE_STATES = ("idle", "running")
TERMINAL_STATES = ("completed", "failed", "killed", "deleted")
ALL_STATES = (*ACTIVE_STATES, *TERMINAL_STATES)

REASON_DELETED = "Job deleted by user"
REASON_WALLTIME = "Walltime limit exceeded"
REASON_QUEUE_TIME = "Maximum time queued was exceeded"
REASON_NO_RESOURCES = "No matching resources"
REASON_IMAGE_PULL = "Container image pull failed"


@dataclass
class JobRecord:
    """One job: what was submitted, who owns it, and what happened to it so far."""

    id: int
    owner: str
    spec: dict
    demand: Demand
    created: float
    job_dir: Path | None
    job_token: str = ""
    instant_until: float | None = None
    #: while set, the job stays queued (shown as waiting) until this time (see ``hold``)
    held_until: float | None = None
    status: str = "idle"
    reason: str | None = None
    started: float | None = None
    ended: float | None = None
    in_queue: bool = True
    stay_in_queue: bool = False
    retries: int = 0
    task_results: list[dict] = field(default_factory=list)
    #: seconds the last run spent staging in before its tasks and out after them
    stage_in_time: float | None = None
    stage_out_time: float | None = None
    runtime_versions: dict[str, str] = field(default_factory=dict)
    pgids: set[int] = field(default_factory=set)

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

    def finish(self, status: str, reason: str | None, now: float | None = None) -> None:
        """Move to a terminal state; the job leaves the queue unless it asked to stay."""
        self.status = status
        self.reason = reason
        self.ended = time.time() if now is None else now
        self.in_queue = self.stay_in_queue

    def refresh(self, now: float) -> None:
        """Bring an instant-mode job up to date with the clock (no-op for real jobs)."""
        if self.instant_until is None:
            return
        if self.status == "idle" and self.held_until is not None:
            if now < self.held_until:
                return
            # The hold is over: it runs from then on (``instant_until`` already counts the hold).
            self.status, self.started, self.held_until = "running", self.held_until, None
        if self.status != "running" or now < self.instant_until:
            return
        self.task_results = [
            {
                "imagePullStatus": "completed" if index == 0 else "cached",
                "imagePullTime": 0.0 if index == 0 else -1,
                "exitCode": 0,
                "wallTimeUsage": 0.0,
                "cpuTimeUsage": 0.0,
                "maxResidentSetSizeKB": 0,
                "retries": 0,
            }
            for index, _task in enumerate(self.spec["tasks"])
            if _task.get("type") != "sidecar"
        ]
        self.runtime_versions = {task["runtime"]: "emulated" for task in self.spec["tasks"]}
        self.stage_in_time = self.stage_out_time = 0.0
        self.finish("completed", None, now=self.instant_until)


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
