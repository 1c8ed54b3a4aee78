"""The run's own list of its unfinished PROMINENCE jobs.

Snakemake's list of active jobs misses the jobs being polled at the moment it is asked, and
jobs whose submission is still under way; cancellation and the outage and token messages need
every job the run created. A job is added on the submission thread the moment its POST is
answered, and removed when it is judged, so this list is what Ctrl-C must delete.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

Info = TypeVar("Info")


class JobRegistry(Generic[Info]):
    """PROMINENCE id -> what Snakemake knows of the job; thread-safe."""

    def __init__(self) -> None:
        self._jobs: dict[int, Info] = {}
        self._lock = threading.Lock()

    def add(self, prominence_id: int, info: Info) -> None:
        with self._lock:
            self._jobs[prominence_id] = info

    def get(self, prominence_id: int) -> Info | None:
        with self._lock:
            return self._jobs.get(prominence_id)

    def discard(self, prominence_id: int) -> None:
        with self._lock:
            self._jobs.pop(prominence_id, None)

    def __contains__(self, prominence_id: object) -> bool:
        with self._lock:
            return prominence_id in self._jobs

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def ids(self) -> list[int]:
        """The ids, in order (for messages that list them)."""
        with self._lock:
            return sorted(self._jobs)

    def take_all(self) -> set[int]:
        """Every id, emptying the registry (cancellation: nothing is tracked after it)."""
        with self._lock:
            ids = set(self._jobs)
            self._jobs.clear()
            return ids
