"""Where the run stands: its jobs by PROMINENCE state, in one log line now and then, and an
event per job state change (see :mod:`events`).

Everything comes from what the status cycle already fetched (the listing entries of
:class:`tracking.CycleResult`, the details of finished jobs): no request of its own. The
non-detail listing carries status, statusReason and events but no ``execution``, so a job's
site is known once it finished (from its details), or for a running job only if a server lists
it.

A state line is written when the picture changed (counts by status, sites, jobs over the idle
threshold, jobs finished), at most once per ``min_interval`` seconds (a minute), or at every
change when Snakemake runs with ``--verbose``. Waiting times are measured on this machine's
clock from the moment the plugin saw the job queued (its submission, usually), so a skewed
server clock does not distort them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence.job.identity import job_identity
from snakemake_executor_plugin_prominence.job.verdict import TERMINAL_STATUSES
from snakemake_executor_plugin_prominence.run import events as job_events
from snakemake_executor_plugin_prominence.run.overdue import is_held

#: how PROMINENCE's statuses are listed in a state line; ``held`` is the plugin's name for a
#: job listed ``failed`` without a reason (see :mod:`overdue`)
STATUS_ORDER = ("running", "held", "pending", "idle", "deploying", "waiting")
HELD = "held"
#: the reason shown for a held job, which PROMINENCE lists without one
HELD_REASON = "listed failed without a reason, usually over its memory"
#: jobs named individually in a state line; the rest are counted
MAX_NAMED = 5
LINE_INTERVAL = 60.0


@dataclass(slots=True)
class _Job:
    """What the picture keeps per unfinished job (a few dozen bytes)."""

    job: Any  # the Snakemake job, read only to name it
    status: str | None = None
    reason: str = ""
    site: str | None = None
    #: when it last became queued (its submission, or its return to the queue); None: running
    queued_since: float | None = None
    #: events.subject of the job, kept once a record was built for it
    subject: str | None = None


class RunProgress:
    """The run's state picture, its state lines and its job events.

    The executor calls :meth:`submitted` when a job exists, :meth:`observe` with each cycle's
    listing entries, :meth:`finished` / :meth:`failed` / :meth:`cancelled` when a job ends,
    and :meth:`report` after each cycle. Thread-safe: submissions arrive on other threads.
    """

    def __init__(
        self,
        emit_line: Callable[[str], None],
        *,
        run_id: str = "",
        sink: job_events.EventSink | None = None,
        idle_threshold: float = 30 * 60,
        verbose: bool = False,
        min_interval: float = LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit_line = emit_line
        self._run_id = run_id
        self._sink = sink
        self._idle_threshold = idle_threshold
        #: seconds between two state lines at least
        self.min_interval = 0.0 if verbose else min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        #: jobs by status (None: not listed yet), and running jobs by site (when known)
        self._counts: Counter[str | None] = Counter()
        self._running_sites: Counter[str] = Counter()
        #: the jobs PROMINENCE lists as queued (idle, pending, deploying, waiting, ...)
        self._queued: set[int] = set()
        self._finished: Counter[str] = Counter()
        self._finished_sites: Counter[str] = Counter()
        #: submissions whose record is built on the status thread (see submitted)
        self._new: list[tuple[int, float]] = []
        self._last_line_at: float | None = None
        self._last_signature: tuple[Any, ...] | None = None

    @classmethod
    def for_run(
        cls,
        logger: Any,
        run_id: str,
        idle_threshold_minutes: float,
        events_file: Path | None,
        verbose: bool,
    ) -> RunProgress:
        """State lines on ``logger`` (INFO), job events on its DEBUG records and in
        ``events_file``. Raises ``OSError`` when the file cannot be opened."""
        return cls(
            logger.info,
            run_id=run_id,
            sink=job_events.EventSink(logger, events_file),
            idle_threshold=idle_threshold_minutes * 60,
            verbose=verbose,
        )

    # --- what happened -------------------------------------------------------------------

    def submitted(self, prominence_id: int, job: Any) -> None:
        """A job exists. Called on the submission threads, so it only notes the job: its
        ``submitted`` record (stamped with this moment) is built by the next other call."""
        with self._lock:
            self._jobs[prominence_id] = _Job(job, queued_since=self._clock())
            self._counts[None] += 1
            self._new.append((prominence_id, time.time()))

    def _emit_new(self) -> None:
        """Lock held: the ``submitted`` records of the jobs noted since the last call."""
        new, self._new = self._new, []
        for prominence_id, when in new:
            tracked = self._jobs.get(prominence_id)
            if tracked is not None:
                self._emit(tracked, "submitted", prominence_id, when=when)

    def observe(self, entries: Mapping[int, Mapping[str, Any]]) -> None:
        """A status cycle's listing entries: record status, reason and site changes."""
        with self._lock:
            self._emit_new()
            for prominence_id, entry in entries.items():
                tracked = self._jobs.get(prominence_id)
                status = entry.get("status")
                held = is_held(entry)
                if tracked is None or (status in TERMINAL_STATUSES and not held):
                    continue  # a finished job is judged from its details (finished)
                if held:
                    status = HELD
                reason = HELD_REASON if held else entry.get("statusReason") or ""
                site = (entry.get("execution") or {}).get("site")
                if status == tracked.status and reason == tracked.reason and site == tracked.site:
                    continue
                self._leave(prominence_id, tracked)
                tracked.status, tracked.reason, tracked.site = status, reason, site
                self._enter(prominence_id, tracked)
                phase = "queued" if held else job_events.phase_of(status)
                self._emit(tracked, phase, prominence_id, entry, reason if held else None)

    def finished(
        self,
        prominence_id: int,
        detail: Mapping[str, Any],
        success: bool,
        deleted_because: str | None = None,
    ) -> None:
        """A job PROMINENCE finished, with its details and the verdict on them.
        ``deleted_because``: this run deleted it (held too long, queued past its limit): it
        failed, for that reason, rather than being cancelled."""
        with self._lock:
            self._emit_new()
            tracked = self._jobs.pop(prominence_id, None)
            if tracked is None:
                return
            self._drop(prominence_id, tracked)
            phase = job_events.final_phase(detail.get("status"), success)
            if deleted_because:
                phase = "failed"
            self._count_finished(phase, (detail.get("execution") or {}).get("site"))
            self._emit(tracked, phase, prominence_id, detail, deleted_because)

    def failed(self, job: Any, message: str, prominence_id: int | None = None) -> None:
        """A job that failed without PROMINENCE finishing it: refused before or at submission
        (no id), or lost. A job :meth:`finished` already reported is left alone."""
        with self._lock:
            self._emit_new()
            tracked = _Job(job)
            if prominence_id is not None:
                tracked = self._jobs.pop(prominence_id, None)
                if tracked is None:
                    return
                self._drop(prominence_id, tracked)
            self._count_finished("failed", None)
            reason = message.strip().splitlines()[0] if message.strip() else None
            self._emit(tracked, "failed", prominence_id, reason=reason)

    def cancelled(self, prominence_ids: Iterable[int]) -> None:
        """Jobs this run deleted because Snakemake stopped."""
        with self._lock:
            self._emit_new()
            for prominence_id in sorted(prominence_ids):
                tracked = self._jobs.pop(prominence_id, None)
                if tracked is None:
                    continue
                self._drop(prominence_id, tracked)
                entry = {"status": tracked.status, "statusReason": tracked.reason}
                self._emit(tracked, "cancelled", prominence_id, entry)
        if self._sink is not None:
            self._sink.flush()  # the run is stopping: no status check will flush them

    def close(self) -> None:
        with self._lock:
            self._emit_new()
        if self._sink is not None:
            self._sink.close()

    # --- the state line ------------------------------------------------------------------

    def report(self) -> str | None:
        """Write the state line if the picture changed and one is due; returns it. Also
        hands the cycle's job events to the events file."""
        with self._lock:
            self._emit_new()
        if self._sink is not None:
            self._sink.flush()
        with self._lock:
            now = self._clock()
            over = self._over_threshold(now)
            signature = (
                tuple(sorted(self._counts.items(), key=str)),
                tuple(sorted(self._running_sites.items())),
                tuple(over),
                sum(self._finished.values()),
            )
            if signature[:3] == (self._last_signature or ())[:3] and not signature[3]:
                return None
            if self._last_line_at is not None and now - self._last_line_at < self.min_interval:
                return None
            if not self._jobs and not signature[3]:
                return None
            line = self._line(now, over)
            self._last_line_at, self._last_signature = now, signature
            self._finished.clear()
            self._finished_sites.clear()
        self._emit_line(line)
        return line

    def _line(self, now: float, over: list[int]) -> str:
        parts = []
        states = [
            f"{count} {status}" + (self._sites_note() if status == "running" else "")
            for status, count in sorted(self._counts.items(), key=_status_rank)
            if count and status is not None
        ]
        if self._counts[None]:
            states.append(f"{self._counts[None]} not listed yet")
        parts.append(", ".join(states) if states else "no job queued or running")
        finished = sum(self._finished.values())
        if finished:
            kinds = ", ".join(
                f"{self._finished[phase]} {phase}"
                for phase in ("succeeded", "failed", "cancelled")
                if self._finished[phase]
            )
            text = f"{finished} finished since the last report ({kinds})"
            if self._finished_sites:
                text += " at " + _counted(self._finished_sites)
            parts.append(text)
        if over:
            named = ", ".join(self._describe_waiting(pid, now) for pid in over[:MAX_NAMED])
            more = f" and {len(over) - MAX_NAMED} more" if len(over) > MAX_NAMED else ""
            limit = f"{self._idle_threshold / 60:g} min"
            parts.append(f"{len(over)} queued longer than {limit}: {named}{more}")
        elif self._queued:
            longest = min(self._queued, key=lambda pid: self._jobs[pid].queued_since or now)
            parts.append("longest queued: " + self._describe_waiting(longest, now))
        return "PROMINENCE: " + "; ".join(parts) + "."

    def _sites_note(self) -> str:
        if not self._running_sites:
            return ""
        unknown = self._counts["running"] - sum(self._running_sites.values())
        note = _counted(self._running_sites)
        return f" (at {note}{f', {unknown} at a site not reported yet' if unknown else ''})"

    def _describe_waiting(self, prominence_id: int, now: float) -> str:
        tracked = self._jobs[prominence_id]
        identity = job_identity(tracked.job)
        waited = _duration(now - (tracked.queued_since or now))
        text = (
            f"PROMINENCE job {prominence_id} (rule {identity['rule']}, job {identity['jobid']}) "
            f"{tracked.status} for {waited}"
        )
        return text + (f": {tracked.reason}" if tracked.reason else "")

    def _over_threshold(self, now: float) -> list[int]:
        """Queued jobs that waited longer than the threshold, longest first."""
        limit = now - self._idle_threshold
        waited = {pid: self._jobs[pid].queued_since or now for pid in self._queued}
        return sorted((pid for pid, since in waited.items() if since < limit), key=waited.get)

    # --- bookkeeping (lock held) ---------------------------------------------------------

    def _leave(self, prominence_id: int, tracked: _Job) -> None:
        """Take a job out of the counts for its current status."""
        self._counts[tracked.status] -= 1
        if not self._counts[tracked.status]:
            del self._counts[tracked.status]
        if tracked.status == "running" and tracked.site:
            self._running_sites[tracked.site] -= 1
            if not self._running_sites[tracked.site]:
                del self._running_sites[tracked.site]

    def _enter(self, prominence_id: int, tracked: _Job) -> None:
        """Count a job under its (new) status. A queued job waits since its submission, or
        since it returned to the queue after running."""
        self._counts[tracked.status] += 1
        if tracked.status == "running":
            self._queued.discard(prominence_id)
            tracked.queued_since = None
            if tracked.site:
                self._running_sites[tracked.site] += 1
        else:
            self._queued.add(prominence_id)
            if tracked.queued_since is None:
                tracked.queued_since = self._clock()

    def _drop(self, prominence_id: int, tracked: _Job) -> None:
        """A job that ended leaves the picture."""
        self._leave(prominence_id, tracked)
        self._queued.discard(prominence_id)

    def _count_finished(self, phase: str, site: str | None) -> None:
        self._finished[phase] += 1
        if site:
            self._finished_sites[str(site)] += 1

    def _emit(
        self,
        tracked: _Job,
        phase: str,
        prominence_id: int | None,
        entry: Mapping[str, Any] | None = None,
        reason: str | None = None,
        when: float | None = None,
    ) -> None:
        if self._sink is None or not self._sink.active:
            return
        if tracked.subject is None:
            tracked.subject = job_events.subject(self._run_id, tracked.job)
        self._sink.emit(
            job_events.json_line(
                tracked.subject,
                phase,
                prominence_id=prominence_id,
                entry=entry,
                reason=reason,
                when=when,
            )
        )


def _status_rank(item: tuple[str | None, int]) -> tuple[int, str]:
    status = item[0] or ""
    rank = STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)
    return rank, status


def _counted(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


def _duration(seconds: float) -> str:
    """``45 s``, ``3m05s``, ``2h03m``: short and exact enough for a waiting time."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
