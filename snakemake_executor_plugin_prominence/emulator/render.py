"""JSON shapes of a job: the summary that listings return and the detail of ``GET /jobs/<id>``.

The keys, their presence rules and the integer epoch ``events`` follow the real server's
``list_jobs``: ``statusReason`` only when a reason exists, ``execution.tasks`` only once the job
has finished running (the worker reports them at the end), ``runtimeVersion`` always in detail.
"""

from __future__ import annotations

import copy

from .hold import REASON_NO_RESOURCES_NOW
from .store import JobRecord

_DETAIL_COPIED = ("policies", "notifications", "artifacts", "inputs", "labels")


def events(record: JobRecord) -> dict[str, int]:
    """``createTime`` always, ``startTime`` once it started, ``endTime`` once it finished."""
    result = {"createTime": int(record.created)}
    if record.started is not None:
        result["startTime"] = int(record.started)
    if record.ended is not None:
        result["endTime"] = int(record.ended)
    return result


def summary(record: JobRecord, pending: bool = False) -> dict:
    """The object a listing returns without ``detail`` (``pending``: say pending, not idle).

    A held job (no site has room for it) is ``waiting`` with the server's reason for that.
    """
    status, reason = record.status, record.reason
    if status == "idle" and record.held_until is not None:
        status, reason = "waiting", REASON_NO_RESOURCES_NOW
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


def execution(
    record: JobRecord, site: str, cpu: dict | None = None, omit_memory: bool = False
) -> dict:
    """The ``execution`` block: where it ran, on what CPU, what it got, its stage-in and
    stage-out times, and per-task results once finished (without the memory figures when
    ``omit_memory``)."""
    result: dict = {}
    if record.retries > 0:
        result["retries"] = record.retries
    if record.started is not None:
        result["site"] = site
        result["provisionedResources"] = {
            "cpus": record.demand.cpus,
            "memory": record.demand.memory,
            "disk": record.demand.disk,
            "nodes": record.demand.nodes,
        }
        if cpu:
            result["cpu"] = dict(cpu)
    stages = (("stageInTime", record.stage_in_time), ("stageOutTime", record.stage_out_time))
    for key, value in stages:
        if value is not None:
            result[key] = round(value, 3)
    result["runtimeVersion"] = dict(record.runtime_versions)
    if record.terminal and record.started is not None:
        tasks = copy.deepcopy(record.task_results)
        rss = [t["maxResidentSetSizeKB"] for t in tasks if "maxResidentSetSizeKB" in t]
        if omit_memory:
            for task in tasks:
                task.pop("maxResidentSetSizeKB", None)
        elif rss:
            result["maxMemoryUsageKB"] = max(rss)
        result["tasks"] = tasks
    return result


def detail(
    record: JobRecord,
    site: str,
    pending: bool = False,
    *,
    cpu: dict | None = None,
    omit_memory: bool = False,
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
    job["execution"] = execution(record, site, cpu, omit_memory)
    for key in ("outputFiles", "outputDirs"):
        if key in spec:
            # Nothing is staged out to an object store, so there is never a download URL.
            job[key] = [{"name": name, "url": ""} for name in spec[key]]
    return job
