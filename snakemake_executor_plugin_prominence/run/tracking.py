"""The status cycle: which of a run's jobs are still running, which finished, which are lost.

:class:`JobTracker` runs one status check over many jobs with a handful of batched requests,
and never loses a job to a failed request. A held job (listed ``failed`` without a reason) is
not final yet, and a job held too long or queued past its limit is deleted by the tracker
(see :mod:`overdue`). What a finished job's status means is ``job.verdict``'s.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from snakemake_executor_plugin_prominence.job.verdict import is_finished
from snakemake_executor_plugin_prominence.run.overdue import OverdueJobs, Request, is_held
from snakemake_executor_plugin_prominence.service.client import (
    AuthenticationError,
    ProminenceError,
)

#: Characters of ids per ``?id=a,b,c`` query: with the rest of the URL, well under the 8 KB
#: that servers and proxies commonly accept (about 500 seven-digit ids).
MAX_ID_CHARS = 4000


def url_chunks(ids: Iterable[int], max_chars: int = MAX_ID_CHARS) -> Iterator[list[int]]:
    """Split ``ids`` into lists whose comma-joined form has at most ``max_chars`` characters
    (at least one id per list), for batched listing and deletion."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    chunk: list[int] = []
    length = -1  # no comma before the first id
    for job_id in ids:
        width = len(str(job_id)) + 1
        if chunk and length + width > max_chars:
            yield chunk
            chunk, length = [], -1
        chunk.append(job_id)
        length += width
    if chunk:
        yield chunk


def show_ids(ids: Sequence[int], limit: int = 20) -> str:
    """``1, 2, 3`` for a message: the first ``limit`` ids, then `` ...``."""
    return ", ".join(map(str, ids[:limit])) + (" ..." if len(ids) > limit else "")


# --- one status cycle ------------------------------------------------------------------


@dataclass
class CycleResult:
    """What one status cycle learned about the jobs it was asked about."""

    running: list[int] = field(default_factory=list)
    #: finished jobs with their detailed description (``GET /jobs/<id>``)
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: jobs the server no longer knows (or still lists long after this run deleted them),
    #: with the reason in words
    lost: dict[int, str] = field(default_factory=dict)
    #: finished jobs this run had deleted (held too long, queued past the limit), and why
    deleted_because: dict[int, str] = field(default_factory=dict)
    #: jobs this cycle deleted for that reason (they finish in a later cycle)
    deleting: dict[int, str] = field(default_factory=dict)
    #: the entry the listing gave for each job it showed (status, statusReason, events), as
    #: received: the run's state picture and job events read it, at no extra request
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: True when at least one request of the cycle was answered
    reachable: bool = True
    #: True when any job changed status (or finished) since the previous cycle
    changed: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Seen:
    """The little the tracker remembers per job (a constant few bytes)."""

    status: str | None
    missing_since: float | None
    missing_cycles: int


class JobTracker:
    """Runs status cycles: one ``GET /jobs?id=...`` per chunk of ids, a direct read of each job
    that finished, and a grace period for jobs the listing does not show yet (or any more).

    Transient failures never lose a job: a job whose status could not be read is reported as
    still running and asked about again next cycle.
    """

    def __init__(
        self,
        client: Any,
        *,
        limiter: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
        max_id_chars: int = MAX_ID_CHARS,
        grace_cycles: int = 3,
        grace_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        overdue: OverdueJobs | None = None,
    ) -> None:
        self._client = client
        self._limiter = limiter or contextlib.nullcontext
        self._max_id_chars = max_id_chars
        self._grace_cycles = grace_cycles
        self._grace_seconds = grace_seconds
        self._clock = clock
        self._overdue = overdue or OverdueJobs(clock=clock)
        self._seen: dict[int, _Seen] = {}
        self._unreachable_since: float | None = None

    def submitted(self, job_id: int, request: Request) -> None:
        """A job this run just created (any thread): its queue time starts now."""
        self._overdue.submitted(job_id, request)

    def forget(self, job_id: int) -> None:
        self._seen.pop(job_id, None)
        self._overdue.forget(job_id)

    def unreachable_for(self) -> float:
        """Seconds since the server last answered a status request (0 when it did last time)."""
        if self._unreachable_since is None:
            return 0.0
        return self._clock() - self._unreachable_since

    async def cycle(self, ids: Sequence[int]) -> CycleResult:
        result = CycleResult(reachable=False)
        listed, unanswered = await self._list(ids, result)
        finished = []
        overdue: dict[int, str] = {}
        for job_id in ids:
            seen = self._seen.setdefault(job_id, _Seen(None, None, 0))
            if job_id in unanswered:
                result.running.append(job_id)
                continue
            entry = listed.get(job_id)
            if entry is None:
                entry = await self._missing(job_id, seen, result)
                if entry is None:
                    continue
            seen.missing_since, seen.missing_cycles = None, 0
            result.entries[job_id] = entry
            status = str(entry.get("status"))
            if status != seen.status:
                result.changed = True
                seen.status = status
            if is_finished(entry) and not is_held(entry):
                finished.append(job_id)
                continue
            given_up = self._overdue.unconfirmed(job_id, entry)
            if given_up is not None:
                result.lost[job_id] = f"PROMINENCE job {job_id} {given_up}"
                self.forget(job_id)
                continue
            result.running.append(job_id)
            reason = self._overdue.check(job_id, entry)
            if reason is not None:
                overdue[job_id] = reason
        await self._delete(overdue, result)

        # The jobs that just finished are read once more, with their details (exit codes),
        # in batches: one request per chunk rather than one per job.
        details, _ = await self._list(finished, result, detail=True)
        for job_id in finished:
            detail = details.get(job_id)
            if detail is None or not is_finished(detail):
                result.running.append(job_id)  # read again next cycle
                continue
            result.finished[job_id] = detail
            reason = self._overdue.deleted_because(job_id)
            if reason is not None and detail.get("status") == "deleted":
                result.deleted_because[job_id] = reason
            self.forget(job_id)

        if result.reachable or not ids:
            self._unreachable_since = None
        elif self._unreachable_since is None:
            self._unreachable_since = self._clock()
        return result

    async def _list(
        self, ids: Sequence[int], result: CycleResult, detail: bool = False
    ) -> tuple[dict[int, dict[str, Any]], set[int]]:
        """``GET /jobs?id=...`` per chunk: the entries found, and the ids left unanswered."""
        listed: dict[int, dict[str, Any]] = {}
        unanswered: set[int] = set()
        wanted = set(ids)
        for chunk in url_chunks(ids, self._max_id_chars):
            try:
                async with self._limiter():
                    listing = self._client.list_jobs(chunk, detail=detail)
            except AuthenticationError:  # not transient: the caller stops
                raise
            except ProminenceError as e:
                result.errors.append(str(e))
                unanswered.update(chunk)
                continue
            result.reachable = True
            for entry in listing:
                job_id = entry.get("id")
                if job_id in wanted:
                    listed[job_id] = entry
        return listed, unanswered

    async def _delete(self, overdue: Mapping[int, str], result: CycleResult) -> None:
        """Delete the jobs held too long or queued past their limit. They stay tracked: the
        next cycle reads their final details (for the run report) and, if PROMINENCE finished
        them some other way meanwhile (e.g. killed for memory), its own verdict."""
        for chunk in url_chunks(overdue, self._max_id_chars):
            try:
                async with self._limiter():
                    self._client.delete_jobs(chunk)
            except AuthenticationError:  # not transient: the caller stops
                raise
            except ProminenceError as e:  # asked again next cycle, as they are still overdue
                result.errors.append(str(e))
                continue
            for job_id in chunk:
                self._overdue.deleted(job_id, overdue[job_id])
                result.deleting[job_id] = overdue[job_id]
                result.changed = True

    async def _missing(
        self, job_id: int, seen: _Seen, result: CycleResult
    ) -> dict[str, Any] | None:
        """A job absent from the listing: after the grace period, ask for it directly."""
        now = self._clock()
        if seen.missing_since is None:
            seen.missing_since = now
        seen.missing_cycles += 1
        waited = now - seen.missing_since
        if seen.missing_cycles < self._grace_cycles or waited < self._grace_seconds:
            result.running.append(job_id)
            return None
        try:
            async with self._limiter():
                detail = self._client.get_job(job_id)
        except AuthenticationError:  # not transient: the caller stops
            raise
        except ProminenceError as e:
            result.errors.append(str(e))
            result.running.append(job_id)
            return None
        result.reachable = True
        if detail is None:
            result.lost[job_id] = (
                f"PROMINENCE no longer knows job {job_id}: it was missing from the job listing "
                f"for {seen.missing_cycles} status checks ({waited:.0f} s) and reading it directly "
                "returned nothing (its history may have expired, or an administrator removed it)"
            )
            self.forget(job_id)
        return detail


class PollInterval:
    """Adaptive status-check interval: back to ``floor`` whenever something changed, growing
    by ``factor`` up to ``ceiling`` while nothing does (long jobs need few checks)."""

    def __init__(self, floor: float, ceiling: float, factor: float = 1.5) -> None:
        self.floor = max(0.0, floor)
        self.ceiling = max(self.floor, ceiling)
        self.factor = factor
        self.current = self.floor

    def after_cycle(self, changed: bool) -> float:
        if changed:
            self.current = self.floor
        else:
            self.current = min(self.ceiling, max(self.current * self.factor, self.floor, 1.0))
        return self.current


def outage_message(
    base_url: str, down_seconds: float, limit_minutes: int, ids: list[int], constraint: str
) -> str:
    """Why the run stops after PROMINENCE stopped answering, and how to find its jobs."""
    shown = show_ids(ids)
    return (
        f"PROMINENCE at {base_url} has not answered for {down_seconds / 60:.0f} minutes "
        f"(--prominence-max-outage {limit_minutes}); stopping. {len(ids)} job(s) of this run "
        f"may still be running: {shown}. List them with "
        f"`prominence list --all --constraint {constraint}`."
    )
