"""Turn one Snakemake job into a PROMINENCE job description.

Pure functions only: no I/O, no clock, no randomness. Everything the real server would
reject is caught here with a message that names the rule, the resource and the value, so a
bad rule fails alone instead of reaching the server (or crashing it: the server answers 500
to a numeric string and rejects floats).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_executor_plugin_prominence.job import explicit, images, resources
from snakemake_executor_plugin_prominence.job.resources import MAX_INTEGER, JobSpecError, strict_int

__all__ = ["JobDefaults", "JobSpecError", "build"]

RUNTIMES = ("singularity", "udocker")
MPI_FLAVOURS = ("openmpi", "mpich", "intelmpi")

#: Per-rule resources this plugin understands. Any other ``prominence_*`` resource is a typo.
PROMINENCE_RESOURCES = (
    "prominence_image",
    "prominence_runtime",
    "prominence_mpi",
    "prominence_procs_per_node",
    "prominence_max_retries",
    "prominence_max_time_in_queue",
    "prominence_sites",
    "prominence_regions",
    "prominence_priority",
)

# Limits and patterns of the real server's validator (reference §3).
MAX_RETRIES = 6
MAX_TIME_IN_QUEUE_MINUTES = 44640
MAX_NAME_LENGTH = 512
MAX_LABEL_LENGTH = 512

#: What the udocker runtime can pass as ``--env=NAME=value`` (a shell variable name).
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]+$")
LABEL_VALUE_PATTERN = re.compile(r"^[A-Za-z0-9_./-]+$")
#: Characters allowed in names and label values alike (a subset of both server patterns).
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_./-]")


@dataclass(frozen=True)
class JobDefaults:
    """Run-wide inputs of the mapping, resolved once from the plugin settings."""

    #: the default image, already as the worker pulls it (``images.pullable``)
    image: str
    runtime: str = "singularity"
    max_retries: int | None = None
    max_time_in_queue: int | None = None
    sites: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    #: the setting the default image comes from, for messages
    image_setting: str = "--prominence-container-image"
    #: the least disk (GB) of a job whose rules do not set theirs
    min_disk_gb: int = resources.DEFAULT_DISK_GB
    #: submit GPU rules without their GPU request instead of failing them
    ignore_gpu: bool = False
    #: whether a job's rules set their disk themselves (then it is taken as is)
    rules_set_disk: Callable[[JobExecutorInterface], bool] = explicit.rules_set_disk


def build(
    job: JobExecutorInterface,
    command: str,
    env: Mapping[str, str],
    defaults: JobDefaults,
    job_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the JSON body for ``POST /jobs`` that runs ``command`` for ``job``.

    ``command`` is the remote Snakemake command line; PROMINENCE splits a task's ``cmd``
    without a shell, so it is wrapped in ``/bin/sh -c``. ``job_labels`` are added to the
    run-wide labels (run id, rule, job id, attempt, submission key).
    """
    rule = rule_label(job)
    extra = _prominence_resources(job, rule)
    if not defaults.ignore_gpu:
        _refuse_gpu(job, rule)

    min_disk = 1 if defaults.rules_set_disk(job) else defaults.min_disk_gb
    requested = resources.requested(job, rule, min_disk_gb=min_disk)

    runtime = _choice(rule, "prominence_runtime", extra, RUNTIMES, defaults.runtime)
    task: dict[str, Any] = {
        "image": _image(job, rule, extra, defaults, runtime),
        "runtime": runtime,
        "cmd": shell_command(command),
    }
    if env:
        task["env"] = task_env(rule, env, runtime)
    _add_mpi(task, requested, rule, extra)

    description: dict[str, Any] = {
        "name": job_name(job),
        "resources": requested,
        "tasks": [task],
        "labels": _labels(rule, {**defaults.labels, **(job_labels or {})}),
    }
    policies = _policies(rule, extra, defaults)
    if policies:
        description["policies"] = policies
    return description


def shell_command(command: str) -> str:
    """The task ``cmd`` that makes the worker run ``command`` exactly.

    The worker first applies ``string.Template.safe_substitute`` to ``cmd`` (to fill in
    ``$PROMINENCE_JOB_ID``), which turns ``$$`` into ``$``; then it splits the result with
    ``shlex.split`` and runs it without a shell. So: quote for ``/bin/sh -c``, then double
    every ``$``.
    """
    return ("/bin/sh -c " + shlex.quote(command)).replace("$", "$$")


def task_env(rule: str, env: Mapping[str, Any], runtime: str) -> dict[str, str]:
    """The task ``env`` that gives the job exactly ``env``.

    Singularity hands it to the job as its process environment, as is. udocker gets each pair
    as ``--env=NAME=value`` inside one command line that the worker splits with
    ``shlex.split``: there a raw value with a space would become extra arguments and a quote
    would crash the worker, so each value is shell-quoted, which that split undoes exactly.
    What cannot travel that way fails the job, naming the variable, never its value (it may
    be a credential).
    """
    values = {str(name): str(value) for name, value in env.items()}
    if runtime != "udocker":
        return values
    quoted = {}
    for name, value in values.items():
        if not ENV_NAME_PATTERN.match(name):
            raise JobSpecError(
                rule,
                "env",
                name,
                "is not a variable name the udocker runtime can pass (letters, digits and _, "
                "not starting with a digit): rename it, or use the singularity runtime",
            )
        if "\0" in value:
            raise JobSpecError(
                rule, "env", name, "has a NUL character in its value, which no process can get"
            )
        quoted[name] = shlex.quote(value)
    return quoted


def rule_label(job: JobExecutorInterface) -> str:
    """The rule name, or the group name for a group job: what users call the job."""
    return str(job.name)


def job_name(job: JobExecutorInterface) -> str:
    """``snakejob.<rule>.<jobid>``, within the server's name pattern and length."""
    name = _UNSAFE_CHAR.sub("_", f"snakejob.{job.name}.{job.jobid}")
    return name[:MAX_NAME_LENGTH]


def label_value(value: Any) -> str:
    """Any value made into a valid label value (non-empty, restricted characters)."""
    text = _UNSAFE_CHAR.sub("_", str(value))[:MAX_LABEL_LENGTH]
    return text or "_"


def parse_label_pairs(text: str | None, source: str) -> dict[str, str]:
    """Parse ``k=v,k2=v2`` user labels; a bad key or value is an error naming ``source``."""
    labels: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not _valid_label_key(key):
            raise ValueError(
                f"{source}: label {item!r} is invalid: expected key=value with a key of "
                "letters and digits only"
            )
        if not _valid_label_value(value):
            raise ValueError(
                f"{source}: label value {value!r} is invalid: use letters, digits and _ - . /"
            )
        labels[key] = value
    return labels


def split_list(text: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


# --- resources -------------------------------------------------------------------------


def _member_jobs(job: JobExecutorInterface) -> list[Any]:
    return list(job.jobs) if job.is_group() else [job]


def _prominence_resources(job: JobExecutorInterface, rule: str) -> dict[str, Any]:
    """Collect ``prominence_*`` resources (for a group: from its members, which must agree)."""
    found: dict[str, Any] = {}
    for member in _member_jobs(job):
        for name, value in member.resources.items():
            if not name.startswith("prominence_"):
                continue
            if name not in PROMINENCE_RESOURCES:
                raise JobSpecError(
                    rule,
                    name,
                    value,
                    "is not a resource this plugin knows; known: "
                    + ", ".join(PROMINENCE_RESOURCES),
                )
            if name in found and found[name] != value:
                raise JobSpecError(
                    rule,
                    name,
                    value,
                    f"differs between the rules of the group (also {found[name]!r}); "
                    "a group runs as one PROMINENCE job and needs one value",
                )
            found[name] = value
    return found


# --- task ------------------------------------------------------------------------------


def _image(
    job: JobExecutorInterface,
    rule: str,
    extra: Mapping[str, Any],
    defaults: JobDefaults,
    runtime: str,
) -> str:
    """``prominence_image`` > the rule's ``container:`` > the run-wide default image, as the
    worker pulls it under ``runtime`` (``docker://`` stripped, unpullable ones refused)."""
    if "prominence_image" in extra:
        return images.for_job(rule, "prominence_image", extra["prominence_image"], runtime)
    containers = {
        member.container_img_url
        for member in _member_jobs(job)
        if getattr(member, "container_img_url", None)
    }
    pullable = {images.for_job(rule, "container", image, runtime) for image in containers}
    if len(pullable) > 1:
        raise JobSpecError(
            rule,
            "container",
            sorted(containers),
            "differs between the rules of the group; set prominence_image for all of them",
        )
    if pullable:
        return pullable.pop()
    if runtime != defaults.runtime:  # checked at start for the run's runtime only
        try:
            images.pullable(defaults.image, runtime)
        except images.ImageRefused as e:
            raise JobSpecError(
                rule,
                "prominence_runtime",
                runtime,
                f"cannot run the default image {defaults.image!r} ({defaults.image_setting}), "
                f"which {e}",
            ) from None
    return defaults.image


def _refuse_gpu(job: JobExecutorInterface, rule: str) -> None:
    """PROMINENCE has no GPU resource: a GPU rule submitted as is would run on a CPU node."""
    for member in _member_jobs(job):
        found = resources.gpu_request(member.resources)
        if found is None:
            continue
        name, value = found
        which = f" (rule {member.name} of the group)" if job.is_group() else ""
        raise JobSpecError(
            rule,
            name,
            value,
            f"asks for a GPU{which}, and PROMINENCE jobs cannot request one: it would run on "
            "a node without. Run the rule on a site whose operator offers GPUs "
            "(prominence_sites='<site>') and pass --prominence-ignore-gpu to submit it "
            "without the GPU request, or run it elsewhere (localrules, or another executor)",
        )


def _choice(
    rule: str, resource: str, extra: Mapping[str, Any], choices: Iterable[str], default: str
) -> str:
    value = extra.get(resource, default)
    if value not in choices:
        raise JobSpecError(
            rule, resource, value, "is invalid: expected one of " + ", ".join(choices)
        )
    return value


def _add_mpi(
    task: dict[str, Any], resources: dict[str, int], rule: str, extra: Mapping[str, Any]
) -> None:
    """Multi-node jobs need an MPI task type; the server rejects nodes > 1 without one."""
    if "prominence_mpi" in extra:
        task["type"] = _choice(rule, "prominence_mpi", extra, MPI_FLAVOURS, "")
    elif resources["nodes"] > 1:
        raise JobSpecError(
            rule,
            "nodes",
            resources["nodes"],
            "needs an MPI job: also set prominence_mpi to one of " + ", ".join(MPI_FLAVOURS),
        )
    if "prominence_procs_per_node" in extra:
        if "type" not in task:
            raise JobSpecError(
                rule,
                "prominence_procs_per_node",
                extra["prominence_procs_per_node"],
                "needs prominence_mpi",
            )
        task["procsPerNode"] = strict_int(
            rule,
            "prominence_procs_per_node",
            extra["prominence_procs_per_node"],
            1,
            resources["cpus"],
        )


# --- labels and policies ---------------------------------------------------------------


def _valid_label_key(key: str) -> bool:
    return bool(LABEL_KEY_PATTERN.match(key)) and len(key) <= MAX_LABEL_LENGTH


def _valid_label_value(value: str) -> bool:
    return bool(LABEL_VALUE_PATTERN.match(value)) and len(value) <= MAX_LABEL_LENGTH


def _labels(rule: str, labels: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not _valid_label_key(key):
            raise JobSpecError(rule, "label", key, "is not a valid label name")
        if not _valid_label_value(value):
            raise JobSpecError(rule, "label", f"{key}={value}", "is not a valid label value")
        checked[key] = value
    return checked


def _policies(rule: str, extra: Mapping[str, Any], defaults: JobDefaults) -> dict[str, Any]:
    policies: dict[str, Any] = {}
    retries = extra.get("prominence_max_retries", defaults.max_retries)
    if retries is not None:
        retries = strict_int(rule, "prominence_max_retries", retries, 0, MAX_RETRIES)
        if retries:
            policies["maximumRetries"] = retries
    queue = extra.get("prominence_max_time_in_queue", defaults.max_time_in_queue)
    if queue is not None:
        policies["maximumTimeInQueue"] = strict_int(
            rule, "prominence_max_time_in_queue", queue, 0, MAX_TIME_IN_QUEUE_MINUTES
        )
    if "prominence_priority" in extra:
        policies["priority"] = strict_int(
            rule, "prominence_priority", extra["prominence_priority"], 0, MAX_INTEGER
        )
    requirements = {}
    for kind, default in (("sites", defaults.sites), ("regions", defaults.regions)):
        resource = f"prominence_{kind}"
        names = default
        if resource in extra:
            if not isinstance(extra[resource], str):
                raise JobSpecError(
                    rule, resource, extra[resource], "is invalid: expected a comma-separated string"
                )
            names = split_list(extra[resource])
        if names:
            requirements[kind] = list(names)
    if requirements:
        policies["placement"] = {"requirements": requirements}
    return policies
