"""JSON shapes of a job: the summary that listings return and the detail of ``GET /jobs/<id>``.

The keys, their presence rules and the integer epoch ``events`` follow the real server's
``list_jobs``: ``statusReason`` only when a reason exists, ``execution.tasks`` only once a run
has exited (the worker reports them at the end), ``runtimeVersion`` always in detail, numbers
that are 0 left out rather than shown.
"""

from __future__ import annotations

import copy

from .hold import REASON_NO_RESOURCES_NOW
from .store import JobRecord

_DETAIL_COPIED = ("policies", "notifications", "artifacts", "inputs", "labels")


def events(record: JobRecord) -> dict[str, int]:
    """Integer epoch times as ``list_jobs.py`` derives them from HTCondor's.

    ``createTime`` always; ``startTime`` once a run started (the last run's start); ``endTime``
    when the job is idle again after a run (a retry), or when it ended, except for a job
    removed before it ever started (HTCondor then has no completion date to give).
    """
    result = {"createTime": int(record.created)}
    if record.started is not None:
        result["startTime"] = int(record.started)
    if record.status == "idle" and record.went_idle is not None:
        result["endTime"] = int(record.went_idle)
    never_ran = record.removed and record.started is None
    if record.terminal and record.ended is not None and not never_ran:
        result["endTime"] = int(record.ended)
    return result


def summary(record: JobRecord, pending: bool = False) -> dict:
    """The object a listing returns without ``detail`` (``pending``: say pending, not idle).

    A held job (no site has room for it) is ``waiting`` with the server's reason for that; a
    job held by HTCondor (over its memory) is ``failed`` without a reason until it is removed.
    """
    status, reason = record.status, record.reason
    if record.waiting:
        status, reason = "waiting", REASON_NO_RESOURCES_NOW
    elif status == "held":
        status, reason = "failed", None
    job = {
        "id": record.id,
        "status": "pending" if pending and status in ("idle", "waiting") else status,
        "name": record.name,
        "tasks": copy.deepcopy(record.spec["tasks"]),
        "events": events(record),
    }
    if reason is not None:
        job["statusReason"] = reason
    return job


def _redacted_storage(storage: dict) -> dict:
    storage = copy.deepcopy(storage)
    onedata = storage.get("onedata")
    if isinstance(onedata, dict) and "token" in onedata:
        onedata["token"] = "***"
    return storage


#: what a site that reports no memory figures leaves out
MEMORY_KEYS = ("maxResidentSetSizeKB", "maxMemoryUsageKB")


def execution(record: JobRecord, site: str, omit_memory: bool = False) -> dict:
    """The ``execution`` block: the retries, where it ran and what it got (once a run
    started), and what the last run that exited reported: stage-in and stage-out times (when
    above 0), CPU, runtime versions, peak memory and per-task results (none for a worker that
    crashed). ``omit_memory`` leaves out the memory figures."""
    result: dict = {}
    if record.runs > 1:
        result["retries"] = record.runs - 1
    report = record.report
    if report is not None:
        if report.stage_in > 0:
            result["stageInTime"] = report.stage_in
        if report.stage_out > 0:
            result["stageOutTime"] = report.stage_out
    if record.started is not None:
        result["site"] = site
        result["provisionedResources"] = {
            "cpus": record.demand.cpus,
            "memory": record.demand.provisioned_memory,
            "disk": record.demand.provisioned_disk,
            "nodes": record.demand.nodes,
        }
    if report is not None and report.cpu:
        result["cpu"] = dict(report.cpu)
    result["runtimeVersion"] = dict(report.runtimes) if report is not None else {}
    if report is not None and report.max_memory_kb is not None and not omit_memory:
        result["maxMemoryUsageKB"] = report.max_memory_kb
    if report is not None and report.tasks is not None:
        tasks = copy.deepcopy(report.tasks)
        if omit_memory:
            for task in tasks:
                task.pop("maxResidentSetSizeKB", None)
        result["tasks"] = tasks
    return result


def detail(
    record: JobRecord, site: str, pending: bool = False, *, omit_memory: bool = False
) -> dict:
    """The object ``GET /jobs/<id>`` (and listings with ``detail``) return."""
    job = summary(record, pending)
    spec = record.spec
    job["resources"] = copy.deepcopy(spec["resources"])
    for key in _DETAIL_COPIED:
        if key in spec:
            job[key] = copy.deepcopy(spec[key])
    if "storage" in spec:
        job["storage"] = _redacted_storage(spec["storage"])
    job["execution"] = execution(record, site, omit_memory)
    for key in ("outputFiles", "outputDirs"):
        if key in spec:
            # Nothing is staged out to an object store, so there is never a download URL.
            job[key] = [{"name": name, "url": ""} for name in spec[key]]
    return job
