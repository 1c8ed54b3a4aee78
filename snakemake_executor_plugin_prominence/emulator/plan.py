"""What the worker does for each task before anything runs: the image, the command line.

Shared by the runner (jobs that really run) and by instant mode (jobs that only pretend to),
so that both fail the same way for the same job: an image the worker cannot pull, a command
line it cannot split, env values that udocker reads as its own arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import images, launch, sandbox
from .config import EmulatorConfig
from .results import WorkerReport
from .store import InstantRun, JobRecord


def in_worker_order(tasks: list[dict]) -> list[dict]:
    """Sidecars first (the worker starts them before the sequential tasks)."""
    return sorted(tasks, key=lambda task: task.get("type") != "sidecar")


@dataclass
class ImageStep:
    """The image of one task: pulled now (``pull``), or reused from task ``source_task``."""

    entry: dict
    source_task: int
    pull: images.Pull | None = None

    @property
    def failed(self) -> bool:
        return self.pull is not None and not self.pull.ok


def image_step(
    task: dict, number: int, job: dict, pulled: dict[tuple[str, str], int], missing: tuple
) -> ImageStep:
    """The image of task ``number``: cached when an earlier task of the run pulled the same
    image (as the worker names it) for the same runtime, else pulled (``pulled`` records it)."""
    runtime, image = task["runtime"], task["image"]
    key = (images.cache_key(image), runtime)
    if key in pulled:
        return ImageStep({"imagePullStatus": "cached"}, pulled[key])
    pull = images.pull(image, runtime, job)
    if pull.ok and images.matches(image, missing):
        pull = images.Pull(False, pull.source, "it matches --missing-image")
    entry = {"imagePullStatus": "completed" if pull.ok else "failed"}
    if pull.ok:
        pulled[key] = number
        if pull.checksum:
            entry["imageSha256"] = images.sha256_of(pull.source)
    return ImageStep(entry, number, pull)


def launch_task(
    record: JobRecord, task: dict, number: int, source_task: int, url: str
) -> launch.Launch:
    """The runtime's command line for the task, split as the worker splits it (raises
    ``launch.WorkerCrash`` where the worker crashes)."""
    cmd = sandbox.substitute(task["cmd"], record.id) if task.get("cmd") else None
    if task["runtime"] == "udocker":
        return launch.udocker(
            task,
            job_id=record.id,
            task_num=number,
            container=f"image{source_task}",
            cmd=cmd,
            user=sandbox.user_name(),
            url=url,
            token=record.job_token,
            cpus=record.demand.cpus,
            memory=record.demand.provisioned_memory,
            nodes=record.demand.nodes,
        )
    path = launch.WORKER_DIR.format(job_id=record.id)
    image_file = f"{path}/images/{source_task}/image.simg"
    return launch.singularity(task, job_id=record.id, image_file=image_file, cmd=cmd)


def instant_run(record: JobRecord, config: EmulatorConfig, url: str, cpu: dict) -> InstantRun:
    """What each run of an instant-mode job reports: its tasks succeed after no time unless
    the worker could not pull an image or start a task, exactly as a real run would fail."""
    policies = record.policies
    ignore_failures = bool(policies.get("ignoreTaskFailures", False))
    task_retries = int(policies.get("maximumTaskRetries", 0))
    results: list[dict] = []
    pulled: dict[tuple[str, str], int] = {}
    runtimes: set[str] = set()
    success = True
    for number, task in enumerate(in_worker_order(record.spec["tasks"])):
        runtimes.add(task["runtime"])
        step = image_step(task, number, record.spec, pulled, config.missing_images)
        if step.pull is not None and config.image_pull_seconds > 0:
            step.entry["imagePullTime"] = config.image_pull_seconds
        if step.failed:
            results.append(step.entry)
            if ignore_failures:
                continue
            success = False
            break
        sidecar = task.get("type") == "sidecar"
        try:
            started = launch_task(record, task, number, step.source_task, url)
        except launch.WorkerCrash:
            if sidecar:
                continue
            return InstantRun(config.job_seconds, WorkerReport.crashed(), exit_ok=False)
        if sidecar:
            continue
        exit_code = started.exit_code if started.failure else 0
        step.entry.update(
            {
                "exitCode": exit_code,
                "wallTimeUsage": 0.0,
                "maxResidentSetSizeKB": 0,
                "retries": task_retries if exit_code else 0,
                "cpuTimeUsage": 0.0,
            }
        )
        results.append(step.entry)
        if exit_code and not ignore_failures:
            success = False
            break
    report = WorkerReport(
        tasks=results,
        stage_in=config.stage_in_seconds,
        stage_out=config.stage_out_seconds,
        cpu=cpu,
        runtimes=dict.fromkeys(sorted(runtimes), "emulated"),
    )
    success_anyway = bool(policies.get("reportJobSuccessOnTaskFailure", False))
    return InstantRun(config.job_seconds, report, exit_ok=success or success_anyway)
