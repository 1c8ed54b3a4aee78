"""Holding jobs in the queue on demand, as when no site has room for them.

On the real service a job that the cloud deployer cannot place stays queued with status
``waiting`` and the reason ``No matching resources currently available`` (``pending`` with the
same reason on services that use the pending state). Tests of what a client shows while jobs
wait need such jobs at will: a :class:`HoldRule` says which jobs (by name pattern) wait, and for
how long after they were queued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase

#: The real server's reason for a queued job no site can take at the moment.
REASON_NO_RESOURCES_NOW = "No matching resources currently available"


@dataclass(frozen=True)
class HoldRule:
    """Jobs whose name matches one of ``patterns`` (fnmatch) wait ``seconds`` in the queue
    (``math.inf``: until released)."""

    seconds: float
    patterns: tuple[str, ...] = ("*",)

    def __post_init__(self) -> None:
        if not self.seconds >= 0:  # also refuses NaN
            raise ValueError("the hold time must not be negative")
        object.__setattr__(self, "patterns", tuple(self.patterns))

    def applies_to(self, name: str) -> bool:
        return self.seconds > 0 and any(fnmatchcase(name, p) for p in self.patterns)

    def until(self, name: str, queued_at: float) -> float | None:
        """When a job queued at ``queued_at`` may start (``None``: not held)."""
        if not self.applies_to(name):
            return None
        return math.inf if math.isinf(self.seconds) else queued_at + self.seconds
