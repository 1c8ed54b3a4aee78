"""What the run report can and cannot say about a job's memory, from the figures PROMINENCE's
worker reports, and the ``mem_mb`` suggestion that follows from them.

The worker gives two figures (``promlet.py``, rendered by ``backend/list_jobs.py``):

- per task, ``maxResidentSetSizeKB``: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the worker
  when the task ended, in KiB: the peak of the largest single process the worker has waited
  for *since it started*. When the job pulled its image in that run, that includes the pull
  (``singularity pull`` and its ``mksquashfs``, ``udocker pull``), so the figure may be the
  pull's rather than the rule's;
- per job, ``execution.maxMemoryUsageKB``: the peak of the job's memory cgroup in kB
  (bytes / 1000, a float, only where cgroup v1 accounting exists): every process of the job
  together, page cache and image pull included.

The report takes the task figure where there is one (the closest to what the rule's largest
process needs) and the job's otherwise, and says which. Either figure is at least the rule's
own peak (largest process), never below it: a pull can only make it larger. So a figure that
may be the pull's cannot make a suggestion too small, only too large, and it says nothing of
how much the rule itself needs. The ``mem_mb`` suggestion therefore rests on it only where its
origin cannot matter (see :func:`suggest_mem_mb`).

PROMINENCE's worker sends every task's image through its pull step, also an image it finds in
the worker's own cache (a symlink there, no process), and reports ``imagePullStatus:
completed`` with an ``imagePullTime`` for it; only a task that reuses the image of an earlier
task of the same job reports ``cached`` (and no ``imagePullTime``). For the plugin's one-task
jobs that means nearly every peak from the real service is marked as one that may be the
pull's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol


class JobRecord(Protocol):
    """What this module reads of a job's record (``rows.JobRecord`` has it): stated here, so
    that the per-job rows, which use this module's readings, are not imported back."""

    ok: bool
    status: str
    reason: str
    tasks_run: int
    peak_memory_kib: float | None
    image_pulled: bool | None
    requested_memory_gib: float | None


#: where a job's peak memory comes from (the server's key, as written in the report)
TASK_PEAK = "maxResidentSetSizeKB"
JOB_PEAK = "maxMemoryUsageKB"
#: how PROMINENCE lists a job HTCondor held for its memory and then removed (list_jobs.py)
MEMORY_KILL_STATUS = "killed"
MEMORY_KILL_REASON = "Job used too much memory"
#: HTCondor is asked for 1000 MiB per GB of ``resources.memory`` (create_htcondor_job.py), so
#: that, not 1024, is what a job may use per GB it asks for
LIMIT_MIB_PER_GB = 1000
MEMORY_MARGIN = 1.2
MIN_JOBS = 3

MAY_BE_PULL = "may be the image pull's"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def peak_kib(
    ran: Sequence[Mapping[str, Any]], execution: Mapping[str, Any]
) -> tuple[float | None, str | None]:
    """``(peak in KiB, the key it comes from)`` of a job: the largest task
    ``maxResidentSetSizeKB`` of the tasks that ran, else the job's ``maxMemoryUsageKB``
    (converted from kB of 1000 bytes); ``(None, None)`` when neither is reported."""
    task_peaks = [_number(task.get(TASK_PEAK)) for task in ran]
    present = [peak for peak in task_peaks if peak is not None]
    if present:
        return max(present), TASK_PEAK
    job_peak = _number(execution.get(JOB_PEAK))
    if job_peak is not None:
        return job_peak * 1000 / 1024, JOB_PEAK
    return None, None


def image_pulled(tasks: Sequence[Mapping[str, Any]]) -> bool | None:
    """Whether the job ran its image pull in this run: a task with an ``imagePullTime`` (the
    worker writes it whenever its pull step ran, failed pulls too) that is not ``cached``.
    None when no task says anything about its image (nothing to go by)."""
    known = False
    for task in tasks:
        status = task.get("imagePullStatus")
        pull_time = _number(task.get("imagePullTime"))
        if status is None and pull_time is None:
            continue
        known = True
        if status != "cached" and pull_time is not None and pull_time >= 0:
            return True
    return False if known else None


def is_memory_kill(status: str, reason: str) -> bool:
    """PROMINENCE removed the job for using more memory than it asked for."""
    return status == MEMORY_KILL_STATUS and reason.strip() == MEMORY_KILL_REASON


def gb_for(peak_mib: float) -> int:
    """The PROMINENCE memory (GB) whose HTCondor limit holds ``peak_mib`` plus the margin."""
    return max(1, math.ceil(peak_mib * MEMORY_MARGIN / LIMIT_MIB_PER_GB))


class MemoryAdvice(NamedTuple):
    """The ``mem_mb`` part of a rule's suggestion."""

    mem_mb: int | None
    #: what to request and why (None: no suggestion)
    request: str | None
    #: why there is no suggestion, or what else to know about it
    notes: tuple[str, ...]
    #: the "too few for ..." clause when there are not enough successful jobs with a peak
    too_few: str | None


def peak_mib(rec: JobRecord) -> float | None:
    """A job's peak in MiB, when a task of it ran."""
    if rec.tasks_run == 0 or rec.peak_memory_kib is None:
        return None
    return rec.peak_memory_kib / 1024


def show_amount(value: float | None) -> str:
    """A requested amount as written in a suggestion: ``4``, ``1.5``, ``none``."""
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def suggest_mem_mb(records: Sequence[JobRecord]) -> MemoryAdvice:
    """The ``mem_mb`` to ask for, from the rule's jobs.

    From successful jobs only, and only with :data:`MIN_JOBS` of them or more:

    - the rule's own peaks (jobs that did not pull their image in that run): the highest
      plus :data:`MEMORY_MARGIN`, rounded up to whole GB against HTCondor's 1000 MiB per GB;
    - otherwise, when even the highest peak that may be the image pull's fits PROMINENCE's
      1 GB minimum with the margin, that minimum (whatever the figure's origin, the rule's
      own peak is not above it, and nothing smaller can be asked for);
    - otherwise no suggestion, saying that the peaks may be the pull's and the highest of
      them, an upper bound of the rule's own.

    A rule with jobs PROMINENCE killed for memory gets more than the largest request of those
    jobs: their peak is unknown (the job was stopped on its way up), so the request is doubled
    unless the successful jobs' figures already ask for more.
    """
    ok = [rec for rec in records if rec.ok]
    asked = max((r.requested_memory_gib for r in ok if r.requested_memory_gib), default=None)
    own: list[float] = []
    maybe_pull: list[float] = []
    for rec in ok:
        peak = peak_mib(rec)
        if peak is not None:
            (own if rec.image_pulled is False else maybe_pull).append(peak)
    gb: int | None = None
    request: str | None = None
    notes: list[str] = []
    too_few: str | None = None
    every = own + maybe_pull
    if len(own) >= MIN_JOBS:
        gb = gb_for(max(own))
        source = f" of the {len(own)} jobs that did not pull their image" if maybe_pull else ""
        request = (
            f"mem_mb={gb * 1024} (asked {show_amount(asked)} GiB; peak{source} "
            f"{max(own):.0f} MiB +{MEMORY_MARGIN - 1:.0%})"
        )
        higher = [peak for peak in maybe_pull if peak * MEMORY_MARGIN > gb * LIMIT_MIB_PER_GB]
        if higher:
            notes.append(
                f"{len(higher)} job(s) that pulled their image peaked higher, at up to "
                f"{max(higher):.0f} MiB, which {MAY_BE_PULL} (a job that pulls needs that too)"
            )
    elif len(every) >= MIN_JOBS and gb_for(max(every)) == 1:
        gb = 1
        request = (
            f"mem_mb=1024 (the minimum; asked {show_amount(asked)} GiB; highest peak "
            f"{max(every):.0f} MiB +{MEMORY_MARGIN - 1:.0%}, image pull included)"
        )
    elif len(every) >= MIN_JOBS:
        notes.append(
            f"no mem_mb: {len(maybe_pull)} of {len(every)} peaks {MAY_BE_PULL} (the job pulled "
            f"its image in that run) and only {len(own)} are the rule's own (need {MIN_JOBS}); "
            f"the rule's own peak is at most {max(every):.0f} MiB"
        )
    else:
        too_few = f"peak memory from {len(every)} successful job(s)"
    kills = [rec for rec in records if is_memory_kill(rec.status, rec.reason)]
    if kills:
        killed_gb = max(
            (r.requested_memory_gib for r in kills if r.requested_memory_gib), default=0.0
        )
        why = (
            f"{len(kills)} job(s) killed by PROMINENCE for using more than the "
            f"{show_amount(killed_gb or None)} GiB they asked"
        )
        if gb is not None and gb > killed_gb:
            notes.append(why)
        elif killed_gb:
            gb = 2 * math.ceil(killed_gb)
            request = (
                f"mem_mb={gb * 1024} at least ({why}; their peak is unknown, as PROMINENCE "
                f"stopped them on the way up: ask for more than {show_amount(killed_gb)} GiB, "
                "doubling is a first guess)"
            )
            notes = []
            too_few = None
        else:
            notes.append(why)
    return MemoryAdvice(gb * 1024 if gb else None, request, tuple(notes), too_few)
