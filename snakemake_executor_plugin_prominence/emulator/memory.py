"""The job's memory limit, as HTCondor enforces it on the real service.

The server asks HTCondor for ``1000 x memory`` MB per job (``create_htcondor_job.py``); a job
whose processes use more is held (``Job has gone over memory limit``), its processes are killed,
and a periodic rule removes it later (``04-prominence-rules``), after which it is listed as
``killed`` with ``Job used too much memory``. The emulator has no cgroup, so it watches the
resident memory of each running job's processes: every process whose session is one of the
job's task sessions (each task leads its own), summed, a few times a second. The peak of that
sum is also what the job reports as ``maxMemoryUsageKB`` (the cgroup peak on the real worker).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable

from .submission import MB_PER_GB

log = logging.getLogger(__name__)

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: seconds between two looks at /proc (each reads every process's stat: a few ms of CPU on a
#: busy host; HTCondor itself refreshes a job's memory usage far less often)
INTERVAL = 1.0
#: looks in a row a job must be over its limit before it is held: a process that has just
#: forked, before it execs, shows the pages of its (possibly large) parent for a moment
SAMPLES_OVER = 2


def limit_bytes(memory_gb: int) -> int:
    """The memory HTCondor gives a job of ``memory_gb`` GB: 1000 MB per GB, in bytes."""
    return MB_PER_GB * memory_gb * 1024 * 1024


def resident_bytes_by_session(proc: str = "/proc") -> dict[int, int]:
    """Resident memory of every process on this host, summed per session id."""
    totals: dict[int, int] = defaultdict(int)
    try:
        entries = os.scandir(proc)
    except OSError:
        return {}
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"{proc}/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue  # it ended meanwhile
            # "pid (comm) state ppid pgrp session ... rss" (rss is the 24th field); comm may
            # hold spaces and parentheses, so the fields are counted from its last ")"
            fields = stat.rsplit(b")", 1)[-1].split()
            if len(fields) > 21:
                totals[int(fields[3])] += int(fields[21]) * PAGE_BYTES
    return totals


class Watched:
    """One running job's side of the watch: its sessions, its limit, its peak so far."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sessions: set[int] = set()
        self.peak = 0
        self._over = 0

    def sample(self, by_session: dict[int, int]) -> bool:
        """Record one look; True once the job has been over its limit ``SAMPLES_OVER`` times
        in a row."""
        used = sum(by_session.get(session, 0) for session in set(self.sessions))
        self.peak = max(self.peak, used)
        self._over = self._over + 1 if used > self.limit else 0
        return self._over >= SAMPLES_OVER


class MemoryWatch:
    """One thread for the whole emulator that looks at /proc while jobs run.

    ``watched()`` returns the running jobs' ``(key, Watched)`` pairs; ``exceeded(key)`` is
    called for a job over its limit (once: it is no longer watched after that).
    """

    def __init__(
        self,
        watched: Callable[[], list[tuple[object, Watched]]],
        exceeded: Callable[[object], None],
        interval: float = INTERVAL,
    ) -> None:
        self._watched = watched
        self._exceeded = exceeded
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="emulator-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            jobs = self._watched()
            if not jobs:
                continue
            by_session = resident_bytes_by_session()
            for key, watched in jobs:
                if watched.sample(by_session):
                    try:
                        self._exceeded(key)
                    except Exception:
                        log.exception("the memory watch failed to hold a job")
