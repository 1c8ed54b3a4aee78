"""Snakemake resources -> PROMINENCE ``resources``: whole GB, whole minutes, whole cpus.

Pure. A value that cannot be turned into what the server accepts (a plain non-negative JSON
integer; the server rejects floats and crashes on numeric strings) becomes a
:class:`JobSpecError` naming the rule, the resource and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

# HTCondor stores these as 32-bit integers; a larger request can only be a mistake.
MAX_INTEGER = 2**31 - 1
#: The least disk a job asks for unless its rule sets one (``--prominence-min-disk``): the
#: worker pulls the image into the job's own disk, and the official CLI always asks for 10.
DEFAULT_DISK_GB = 10
#: GPU resources that other executors read (counts, then what kind); PROMINENCE has none.
GPU_COUNTS = ("gpu", "gpus", "nvidia_gpu", "amd_gpu")
GPU_KINDS = ("gpu_model", "gpu_manufacturer")


class JobSpecError(ValueError):
    """A rule asks for something PROMINENCE cannot do; the message says what and where."""

    def __init__(self, rule: str, resource: str, value: Any, problem: str) -> None:
        self.rule = rule
        self.resource = resource
        self.value = value
        super().__init__(f"Rule '{rule}': resource {resource}={value!r} {problem}.")


def requested(
    job: JobExecutorInterface, rule: str, min_disk_gb: int = DEFAULT_DISK_GB
) -> dict[str, int]:
    """``nodes``, ``cpus``, ``memory`` (GB), ``disk`` (GB) and, when asked for, ``walltime``.

    ``min_disk_gb``: the least disk asked for (1 takes the job's own value as it is).
    """
    result = {
        "nodes": _nodes(job, rule),
        "cpus": _cpus(job, rule),
        "memory": _memory_gb(job, rule),
        "disk": max(min_disk_gb, _size_gb(job, rule, "disk") or 1),
    }
    walltime = _walltime_minutes(job, rule)
    if walltime is not None:
        result["walltime"] = walltime
    return result


def _number(rule: str, resource: str, value: Any, what: str) -> float:
    """A finite, non-negative number, or a JobSpecError saying what was expected."""
    if isinstance(value, bool):
        raise JobSpecError(rule, resource, value, f"is invalid: expected {what}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise JobSpecError(rule, resource, value, f"is invalid: expected {what}") from None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise JobSpecError(rule, resource, value, f"is invalid: expected {what}")
    return float(value) if isinstance(value, float) else value


def _whole(
    rule: str, resource: str, value: Any, what: str, minimum: int, maximum: int = MAX_INTEGER
) -> int:
    """Round ``value`` up to a whole number within ``[minimum, maximum]``."""
    number = _number(rule, resource, value, what)
    whole = math.ceil(number)
    if whole < minimum:
        raise JobSpecError(rule, resource, value, f"is too small: expected {what}")
    if whole > maximum:
        raise JobSpecError(rule, resource, value, f"is too large: at most {maximum} is allowed")
    return whole


def strict_int(rule: str, resource: str, value: Any, minimum: int, maximum: int) -> int:
    """An integer given as such (a count, not a size): 2.5 retries is a mistake, not 3."""
    number = _number(rule, resource, value, f"a whole number from {minimum} to {maximum}")
    if number != int(number) or not minimum <= number <= maximum:
        raise JobSpecError(
            rule,
            resource,
            value,
            f"is invalid: expected a whole number from {minimum} to {maximum}",
        )
    return int(number)


def _cpus(job: JobExecutorInterface, rule: str) -> int:
    """Whole cpus, at least 1. ``threads: 0`` is valid Snakemake (a job that needs no core of
    its own, e.g. one that waits on something else) and the local executor runs it; PROMINENCE
    needs at least one cpu, so 0 becomes 1, as the slurm and lsf plugins do. A negative value
    means nothing and fails the job."""
    if job.is_group():
        cores = _whole(rule, "_cores", job.resources.get("_cores", 1), "a number of cores >= 0", 0)
        return max(1, cores)
    return max(1, _whole(rule, "threads", job.threads, "a number of threads >= 0", 0))


def _size_gb(job: JobExecutorInterface, rule: str, kind: str) -> int | None:
    """``<kind>_mib`` (or ``<kind>_mb``) rounded up to whole GiB, at least 1."""
    # Snakemake derives each of the pair from the other; check the one users usually write
    # first, so the message quotes their value, and compute from the exact binary one.
    mib = None
    for name, mib_per_unit in ((f"{kind}_mb", 1e6 / 2**20), (f"{kind}_mib", 1.0)):
        value = job.resources.get(name)
        if value is None:
            continue
        mib = _number(rule, name, value, "a size in megabytes (a number >= 0)") * mib_per_unit
        if math.ceil(mib / 1024) > MAX_INTEGER:
            raise JobSpecError(rule, name, value, "is too large")
    if mib is None:
        return None
    return max(1, math.ceil(mib / 1024))


def _memory_gb(job: JobExecutorInterface, rule: str) -> int:
    return _size_gb(job, rule, "mem") or 1


def _walltime_minutes(job: JobExecutorInterface, rule: str) -> int | None:
    value = job.resources.get("runtime")
    if value is None or (not isinstance(value, bool) and value == 0):
        return None
    return _whole(rule, "runtime", value, "a duration in minutes >= 1", 1)


def _nodes(job: JobExecutorInterface, rule: str) -> int:
    value = job.resources.get("nodes")
    if value is None:
        return 1
    return strict_int(rule, "nodes", value, 1, MAX_INTEGER)


def gpu_request(resources: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The first resource that asks for a GPU (a count above 0, a model or a make), if any."""
    for name in GPU_COUNTS + GPU_KINDS:
        value = resources.get(name)
        if _asks_for_gpu(value, is_count=name in GPU_COUNTS):
            return name, value
    return None


def _asks_for_gpu(value: Any, is_count: bool) -> bool:
    """0, None, False and empty text ask for nothing. A count that is not a number
    (``nvidia_gpu="nvidia-tesla-t4"``, as some executors take it) names a GPU type."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        text = value.strip()
        if not text or not is_count:
            return bool(text)
        try:
            return float(text) > 0
        except ValueError:
            return True
    if isinstance(value, int | float):
        return value > 0
    return bool(value)
