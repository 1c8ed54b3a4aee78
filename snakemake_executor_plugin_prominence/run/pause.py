"""The run's "waiting for a token" state.

When PROMINENCE refuses the token and neither re-reading nor renewing it helps, a run must not
end: its jobs keep running on PROMINENCE whatever happens here. The run pauses instead:
submissions are held (not failed), tracking waits, and both resume by themselves once a valid
token appears (the user ran ``prominence login``). Only after ``max_wait`` does the run give up.

:class:`TokenPause` is pure state and wording (a clock is injected for tests); the executor
decides when to probe the token and what to do with what is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from snakemake_executor_plugin_prominence.run.tracking import show_ids

#: How often the user is reminded while the run is paused.
REMIND_SECONDS = 600.0


class TokenPause:
    """Whether the run is paused, since when, what it holds, and when to remind or give up."""

    def __init__(
        self,
        max_wait_seconds: float,
        *,
        remind_seconds: float = REMIND_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait_seconds = max_wait_seconds
        self.remind_seconds = remind_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._reminded: float = 0.0
        self._held: list[Any] = []
        #: how many pauses this run has had
        self.pauses = 0

    @property
    def active(self) -> bool:
        return self._since is not None

    def hold_if_paused(self, items: list[Any]) -> bool:
        """Hold ``items`` (submissions) when paused; False (nothing held) when not."""
        with self._lock:
            if self._since is None:
                return False
            self._held.extend(items)
            return True

    def hold_and_begin(self, items: list[Any]) -> bool:
        """Hold ``items`` that were refused and pause (if not yet paused); True when this call
        started the pause."""
        with self._lock:
            self._held.extend(items)
            if self._since is not None:
                return False
            self._since = self._reminded = self._clock()
            self.pauses += 1
            return True

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def end(self) -> tuple[float, list[Any]]:
        """Leave the pause: how long it lasted (seconds) and what was held, to send now."""
        with self._lock:
            since, self._since = self._since, None
            held, self._held = self._held, []
        return (0.0 if since is None else self._clock() - since), held

    def waited(self) -> float:
        since = self._since
        return 0.0 if since is None else self._clock() - since

    def reminder_due(self) -> bool:
        """True about every ``remind_seconds`` while paused (and then counts as reminded)."""
        with self._lock:
            if self._since is None or self._clock() - self._reminded < self.remind_seconds:
                return False
            self._reminded = self._clock()
            return True

    def gave_up(self) -> bool:
        return self.active and self.waited() >= self.max_wait_seconds


def minutes(seconds: float) -> str:
    """``"45 s"``, ``"12 min"`` or ``"3.5 h"``: a duration a person reads at a glance."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def paused_message(
    reason: str, tracked: int, held: int, token_file: str, max_wait_seconds: float
) -> str:
    """What the user reads when the run pauses, and again as a reminder; ``reason`` says
    which token was refused (and why renewing it failed, where it was tried)."""
    return (
        f"{reason}. The run is PAUSED, not ended: {tracked} "
        f"job(s) keep running on PROMINENCE and {held} job(s) wait to be submitted. Get a new "
        f"token (`prominence login`, which writes {token_file}, or export PROMINENCE_TOKEN "
        "before the next run) and the run resumes by itself within seconds. It gives up after "
        f"{minutes(max_wait_seconds)} without a valid token (--prominence-max-token-wait)."
    )


def resumed_message(paused_for: float, held: int) -> str:
    return (
        f"PROMINENCE accepts the token again after {minutes(paused_for)}: the run resumes "
        f"({held} held job(s) are being submitted)."
    )


def gave_up_message(waited: float, running: list[int], held: int, run_constraint: str) -> str:
    shown = show_ids(running)
    return (
        f"No valid PROMINENCE token for {minutes(waited)} (--prominence-max-token-wait): "
        f"stopping. {len(running)} job(s) of this run may still be running on PROMINENCE"
        + (f": {shown}" if running else "")
        + f"; {held} job(s) were never submitted. With a new token, list the run's jobs with "
        f"`prominence list --all --constraint {run_constraint}` and delete unfinished ones "
        "with `prominence delete <id>`; re-running the workflow reuses every output already "
        "in storage."
    )


def cancel_while_paused_message(count: int, run_constraint: str) -> str:
    return (
        f"The run is paused for want of a valid token, and deleting its {count} job(s) needs "
        "one: the deletion below may fail. If it does, get a new token (`prominence login`) and "
        f"delete them with `prominence delete <id>` (list them with `prominence list "
        f"--constraint {run_constraint}`)."
    )
