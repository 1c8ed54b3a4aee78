"""The run report's per-job data: a compact record kept per finished PROMINENCE job, and the
row of ``jobs.tsv`` / ``jobs.jsonl`` built from it at the end.

A record is made from the finished job's details the status cycle already read (no request of
its own) and keeps only the numbers and a few short strings (interned: a run has few rules,
sites and CPU models), so the run holds a few hundred bytes per job, not the details.

The Snakemake identity (rule or group, wildcards, job id, attempt) comes from the job's labels,
which ``job.labels.job_labels`` sets at submission: the rebuild command, which has nothing but
PROMINENCE, finds exactly the same identity, so both write the same rows.

A figure PROMINENCE did not report is ``None`` with a short reason in ``na_reasons``, never 0;
a figure the server leaves out because it is 0 (``stageInTime``/``stageOutTime`` appear only
above 0, ``imagePullTime`` only when the pull ran) is 0 once the worker reported its results.

The events are the server's: ``startTime`` is the start of the job's *last* run (HTCondor's
``JobCurrentStartDate``), a job HTCondor re-runs is ``idle`` again in between (possibly with
an ``endTime`` of the earlier run), and a job deleted before it started has no ``endTime``.
The usage figures of a job PROMINENCE ran more than once are its last run's.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from snakemake_executor_plugin_prominence.job.labels import (
    ATTEMPT_LABEL,
    GROUP_LABEL,
    JOB_ID_LABEL,
    RULE_LABEL,
    RUN_LABEL,
    WILDCARDS_LABEL,
    decode_wildcards,
)
from snakemake_executor_plugin_prominence.job.verdict import exit_codes, verdict
from snakemake_executor_plugin_prominence.report import memory

#: the columns of jobs.tsv, in order (jobs.jsonl has the same keys plus ``na_reasons``)
JOB_COLUMNS = (
    "rule",
    "wildcards",
    "snakemake_jobid",
    "attempt",
    "prominence_id",
    "adopted",
    "server_retries",
    "status",
    "exit_code",
    "reason",
    "site",
    "cpu_model",
    "requested_cpus",
    "requested_memory_gib",
    "requested_disk_gib",
    "requested_walltime_min",
    "provisioned_cpus",
    "provisioned_memory_gib",
    "created_at",
    "started_at",
    "ended_at",
    "queue_wait_s",
    "image_pull_s",
    "stage_in_s",
    "run_s",
    "stage_out_s",
    "cpu_time_s",
    "cpu_efficiency",
    "cpu_efficiency_provisioned",
    "peak_memory_mib",
    "peak_memory_source",
    "image_pulled",
    "memory_share",
    "walltime_share",
)
#: decimals kept of every float (the same in the TSV and the JSON lines)
DECIMALS = 4
#: statuses of a job that has not finished (PROMINENCE may still run it, or run it again)
UNFINISHED = frozenset({"idle", "pending", "waiting", "deploying", "running"})


class JobRecord(NamedTuple):
    """What the report keeps of one finished PROMINENCE job (raw figures; None: not reported).

    ``ok`` is the plugin's verdict (completed, every exit code 0); ``tasks_run`` counts the
    tasks that report usage, which tells "never ran" from "ran, but this figure is missing";
    ``worker_reported`` says the worker's results were read (``execution.tasks``), so a stage
    or pull time it leaves out is 0. ``peak_memory_source`` is the server's key the peak comes
    from, ``image_pulled`` whether the job pulled its image in that run (None: not reported).
    The run keeps it as a plain tuple (see ``writer.RunReport``), which the garbage collector
    stops tracking: ten thousand of them cost the run's collections nothing.
    """

    prominence_id: int
    rule: str | None
    wildcards_label: str | None
    snakemake_jobid: int | None
    attempt: int | None
    status: str
    ok: bool
    exit_code: int | None
    reason: str
    site: str | None
    cpu_model: str | None
    requested_cpus: int | None
    requested_memory_gib: float | None
    requested_disk_gib: float | None
    requested_walltime_min: float | None
    provisioned_cpus: int | None
    provisioned_memory_gib: float | None
    created: int | None
    started: int | None
    ended: int | None
    image_pull_s: float | None
    stage_in_s: float | None
    stage_out_s: float | None
    run_s: float | None
    cpu_time_s: float | None
    peak_memory_kib: float | None
    peak_memory_source: str | None
    image_pulled: bool | None
    tasks_run: int
    worker_reported: bool
    prominence_retries: int
    #: an earlier run's job that this run adopted (``run.adoption``): it carries that run's label
    adopted: bool = False

    @property
    def held_s(self) -> float | None:
        """Seconds PROMINENCE held the job's resources (start to end)."""
        if self.started is None or self.ended is None:
            return None
        return float(max(0, self.ended - self.started))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return sys.intern(str(value)) if value not in (None, "") else None


def _sum(tasks: list[Mapping[str, Any]], key: str) -> float | None:
    """The sum of a per-task figure over the tasks that report it (None: none does)."""
    values = [value for value in (_number(task.get(key)) for task in tasks) if value is not None]
    return sum(values) if values else None


def _image_pull_s(tasks: list[Mapping[str, Any]]) -> float | None:
    """The tasks' image pull time: the worker writes ``imagePullTime`` only when its pull step
    ran (an older emulator wrote -1 for a cached image), so a task that tells its pull status
    without a time pulled nothing: 0. None when no task says anything about its image."""
    total, known = 0.0, False
    for task in tasks:
        pull_time = _number(task.get("imagePullTime"))
        if pull_time is None and task.get("imagePullStatus") is None:
            continue
        known = True
        total += max(0.0, pull_time or 0.0)
    return total if known else None


def _stage_s(execution: Mapping[str, Any], key: str, worker_reported: bool) -> float | None:
    """A stage time: the server writes it only when above 0, so once the worker's results
    were read, a missing one is 0."""
    value = _number(execution.get(key))
    if value is None and worker_reported:
        return 0.0
    return value


NO_RULE_LABEL = "not a Snakemake job of this plugin (no snakemakerule label)"
WILDCARDS_TOO_LONG = "wildcards too long for a PROMINENCE label"


def identity(labels: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(rule, encoded wildcards)`` from the job's labels: the rule, or ``group:<groupid>``
    for a group job; the wildcards label as it is (decoded by :func:`wildcards_of` only when
    the report is written)."""
    rule = labels.get(RULE_LABEL)
    if not isinstance(rule, str) or not rule:
        return None, None
    if labels.get(GROUP_LABEL):
        return sys.intern(f"group:{rule}"), None
    encoded = labels.get(WILDCARDS_LABEL)
    return sys.intern(rule), None if encoded is None else str(encoded)


def wildcards_of(rec: JobRecord) -> tuple[str | None, str | None]:
    """``(wildcards, why they are unknown)``: ``k=v,k=v``, ``""`` for none."""
    if rec.rule is None:
        return None, NO_RULE_LABEL
    if rec.wildcards_label is None:
        return "", None
    wildcards = decode_wildcards(rec.wildcards_label)
    return (wildcards, None) if wildcards is not None else (None, WILDCARDS_TOO_LONG)


def record_of(
    detail: Mapping[str, Any], success: bool | None = None, run_id: str | None = None
) -> JobRecord:
    """The compact record of a finished job's details (``GET /jobs?id=...&detail``);
    ``success`` is the verdict on them when the caller has it already. ``run_id``: the run
    whose report this is; a job carrying another run's label was adopted from that run."""
    labels = detail.get("labels") or {}
    own_run = labels.get(RUN_LABEL)
    rule, wildcards_label = identity(labels)
    events = detail.get("events") or {}
    resources = detail.get("resources") or {}
    execution = detail.get("execution") or {}
    provisioned = execution.get("provisionedResources") or {}
    tasks = [task for task in execution.get("tasks") or [] if isinstance(task, Mapping)]
    worker_reported = bool(tasks)
    ran = [task for task in tasks if _number(task.get("wallTimeUsage")) is not None]
    codes = [code for code in exit_codes(detail) if code is not None]
    peak_kib, peak_source = memory.peak_kib(ran, execution)
    cpu = execution.get("cpu") or {}
    return JobRecord(
        prominence_id=int(detail["id"]),
        rule=rule,
        wildcards_label=wildcards_label,
        snakemake_jobid=_integer(labels.get(JOB_ID_LABEL)),
        attempt=_integer(labels.get(ATTEMPT_LABEL)),
        status=sys.intern(str(detail.get("status", "unknown"))),
        ok=verdict(detail).success if success is None else success,
        exit_code=next((code for code in codes if code != 0), codes[0] if codes else None),
        reason=str(detail.get("statusReason") or ""),
        site=_text(execution.get("site")),
        cpu_model=_text(cpu.get("model") if isinstance(cpu, Mapping) else None),
        requested_cpus=_integer(resources.get("cpus")),
        requested_memory_gib=_number(resources.get("memory")),
        requested_disk_gib=_number(resources.get("disk")),
        requested_walltime_min=_number(resources.get("walltime")),
        provisioned_cpus=_integer(provisioned.get("cpus")),
        provisioned_memory_gib=_number(provisioned.get("memory")),
        created=_integer(events.get("createTime")),
        started=_integer(events.get("startTime")),
        ended=_integer(events.get("endTime")),
        image_pull_s=_image_pull_s(tasks),
        stage_in_s=_stage_s(execution, "stageInTime", worker_reported),
        stage_out_s=_stage_s(execution, "stageOutTime", worker_reported),
        run_s=_sum(ran, "wallTimeUsage"),
        cpu_time_s=_sum(ran, "cpuTimeUsage"),
        peak_memory_kib=peak_kib,
        peak_memory_source=peak_source,
        image_pulled=memory.image_pulled(tasks),
        tasks_run=len(ran),
        worker_reported=worker_reported,
        prominence_retries=_integer(execution.get("retries")) or 0,
        adopted=run_id is not None and own_run is not None and own_run != run_id,
    )


def iso(epoch: int | None) -> str | None:
    """``2026-11-28T09:41:12Z`` (UTC) for an integer Unix time."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def rounded(value: float | None) -> float | None:
    """To the report's DECIMALS (None stays None)."""
    return None if value is None else round(value, DECIMALS)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def not_run_reason(rec: JobRecord) -> str:
    """Why a job has no usage figures."""
    if rec.started is None:
        return "not started when read" if rec.status in UNFINISHED else "the job never started"
    if not rec.worker_reported:
        if rec.status in UNFINISHED:
            return "not finished when read"
        return "the worker reported no task results"
    return "no task ran"


def queue_wait(rec: JobRecord) -> tuple[float | None, str | None]:
    """``(seconds from creation to start, None)`` or ``(None, why not)``.

    ``startTime`` is the start of the last run: for a job PROMINENCE ran more than once, or
    one queued again after a run, start - creation is no queue wait (it holds the earlier
    runs), and nothing in the job tells the first start."""
    if rec.started is None:
        return None, not_run_reason(rec)
    if rec.created is None:
        return None, "not reported by PROMINENCE"
    if rec.prominence_retries > 0:
        return None, (
            f"PROMINENCE ran the job {rec.prominence_retries + 1} times and gives only the last "
            "run's start: start - creation would include the earlier runs"
        )
    if rec.status in UNFINISHED and rec.status != "running":
        return None, (
            "queued again after an earlier run (HTCondor re-runs it); its start is that run's"
        )
    return float(max(0, rec.started - rec.created)), None


def _end_reason(rec: JobRecord) -> str:
    if rec.status in UNFINISHED:
        return "not finished when read"
    if rec.started is None:
        return "PROMINENCE gives no end time to a job that never started"
    return "not reported by PROMINENCE"


def row_of(rec: JobRecord) -> dict[str, Any]:
    """The job's row (a dict in :data:`JOB_COLUMNS` order plus ``na_reasons``)."""
    na: dict[str, str] = {}
    not_run = not_run_reason(rec)
    wildcards, wildcards_na = wildcards_of(rec)
    if rec.rule is None:
        na["rule"] = NO_RULE_LABEL
    if wildcards_na is not None:
        na["wildcards"] = wildcards_na
    if rec.requested_walltime_min is None:
        na["requested_walltime_min"] = "no runtime requested (PROMINENCE's default limit applies)"
    run_s, cpu_time_s, peak_kib = rec.run_s, rec.cpu_time_s, rec.peak_memory_kib
    if rec.tasks_run == 0:
        for column in ("run_s", "cpu_time_s", "peak_memory_mib"):
            na[column] = not_run
        run_s = cpu_time_s = peak_kib = None
    else:
        if cpu_time_s is None:
            na["cpu_time_s"] = "the site reports no CPU time"
        if peak_kib is None:
            na["peak_memory_mib"] = "the site reports no memory figures"
    if peak_kib is None:
        na["peak_memory_source"] = na["peak_memory_mib"]
    if rec.image_pull_s is None:
        pull_na = "the site reports no image pull figures" if rec.worker_reported else not_run
        na["image_pull_s"] = na["image_pulled"] = pull_na
    if rec.started is None:
        for column in ("site", "cpu_model", "provisioned_cpus", "provisioned_memory_gib"):
            na[column] = not_run
        for column in ("started_at", "stage_in_s", "stage_out_s"):
            na[column] = not_run
    else:
        for column, value in (
            ("site", rec.site),
            ("cpu_model", rec.cpu_model),
            ("provisioned_cpus", rec.provisioned_cpus),
            ("provisioned_memory_gib", rec.provisioned_memory_gib),
        ):
            if value is None:
                na[column] = "not reported by PROMINENCE"
        for column, value in (("stage_in_s", rec.stage_in_s), ("stage_out_s", rec.stage_out_s)):
            if value is None:  # the worker's results were not read: it reported none
                na[column] = not_run
    if rec.ended is None:
        na["ended_at"] = _end_reason(rec)
    if rec.exit_code is None:
        na["exit_code"] = "no task reported an exit code"
    wait, wait_na = queue_wait(rec)
    if wait_na is not None:
        na["queue_wait_s"] = wait_na
    efficiency = provisioned_efficiency = memory_share = walltime_share = None
    if cpu_time_s is None:
        na["cpu_efficiency"] = na["cpu_efficiency_provisioned"] = na["cpu_time_s"]
    elif not run_s:
        na["cpu_efficiency"] = na["cpu_efficiency_provisioned"] = "run time of 0 s"
    else:
        efficiency = _ratio(cpu_time_s, run_s * (rec.requested_cpus or 0))
        provisioned_efficiency = _ratio(cpu_time_s, run_s * (rec.provisioned_cpus or 0))
        if provisioned_efficiency is None:
            na["cpu_efficiency_provisioned"] = "provisioned cpus not reported"
    peak_mib = None if peak_kib is None else peak_kib / 1024
    if peak_mib is not None:
        memory_share = _ratio(peak_mib, (rec.requested_memory_gib or 0) * 1024)
    else:
        na["memory_share"] = na["peak_memory_mib"]
    if run_s is not None and rec.requested_walltime_min:
        walltime_share = run_s / (rec.requested_walltime_min * 60)
    else:
        na["walltime_share"] = na.get("requested_walltime_min") or na.get("run_s", "unknown")
    row = {
        "rule": rec.rule,
        "wildcards": wildcards,
        "snakemake_jobid": rec.snakemake_jobid,
        "attempt": rec.attempt,
        "prominence_id": rec.prominence_id,
        "adopted": rec.adopted,
        "server_retries": rec.prominence_retries,
        "status": rec.status,
        "exit_code": rec.exit_code,
        "reason": rec.reason,
        "site": rec.site,
        "cpu_model": rec.cpu_model,
        "requested_cpus": rec.requested_cpus,
        "requested_memory_gib": rec.requested_memory_gib,
        "requested_disk_gib": rec.requested_disk_gib,
        "requested_walltime_min": rec.requested_walltime_min,
        "provisioned_cpus": rec.provisioned_cpus,
        "provisioned_memory_gib": rec.provisioned_memory_gib,
        "created_at": iso(rec.created),
        "started_at": iso(rec.started),
        "ended_at": iso(rec.ended),
        "queue_wait_s": wait,
        "image_pull_s": rounded(rec.image_pull_s),
        "stage_in_s": rounded(rec.stage_in_s),
        "run_s": rounded(run_s),
        "stage_out_s": rounded(rec.stage_out_s),
        "cpu_time_s": rounded(cpu_time_s),
        "cpu_efficiency": rounded(efficiency),
        "cpu_efficiency_provisioned": rounded(provisioned_efficiency),
        "peak_memory_mib": rounded(peak_mib),
        "peak_memory_source": rec.peak_memory_source if peak_kib is not None else None,
        "image_pulled": rec.image_pulled,
        "memory_share": rounded(memory_share),
        "walltime_share": rounded(walltime_share),
    }
    for column, value in row.items():
        if value is None and column not in na:
            na[column] = "not reported by PROMINENCE"
    row["na_reasons"] = {column: na[column] for column in JOB_COLUMNS if column in na}
    return row
