"""Validation of a ``POST /jobs`` body with the real server's rules and messages.

The first failing rule wins and its message is returned verbatim (the caller answers
``400 {"error": message}``). Where the real server crashes on a body (for example ``"cpus": "2"``
passes its digit check and then fails comparing a string with an integer, or ``"name": null``),
the same Python operation fails here too and the exception propagates, so the app answers 500
like the real Flask server does. This is deliberate: clients must not rely on an emulator that is
kinder than the service.

Integers are accepted the way the server accepts them: ``str(value).isdigit()``. Floats,
negative numbers and booleans are therefore rejected, and numeric strings crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

JOB_KEYS = (
    "name", "labels", "tasks", "resources", "policies", "notifications", "inputs", "artifacts",
    "outputFiles", "outputDirs", "storage",
)  # fmt: skip
TASK_KEYS = (
    "image", "cmd", "env", "app", "workdir", "procsPerNode", "type", "runtime",
    "imagePullCredential", "imageSha256", "stdout",
)  # fmt: skip
RESOURCE_KEYS = (
    "nodes", "cpus", "cpusRange", "cpusOptions", "memory", "memoryPerCpu", "disk", "walltime",
    "totalCpusRange",
)  # fmt: skip
POLICY_KEYS = (
    "maximumRetries", "maximumTaskRetries", "preemptible", "maximumTimeInQueue",
    "maximumIdleTimePerResource", "leaveInQueue", "placement", "priority", "autoScalingType",
    "ignoreTaskFailures", "reportJobSuccessOnTaskFailure", "runSerialTasksOnAllNodes",
)  # fmt: skip
MPI_TYPES = ("openmpi", "mpich", "intelmpi")
TASK_TYPES = (*MPI_TYPES, "basic", "sidecar")
RUNTIMES = ("udocker", "singularity")
MAX_MINUTES = 44640
MAX_RETRIES = 6

# ``re.match`` with ``$`` on purpose: like the server, a value may end with one newline.
_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_\s/.]+$")
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z0-9]+$")
_LABEL_VALUE_RE = re.compile(r"^[\w\-./]+$")

Check = Callable[[Any], "str | None"]


def _digits(value: Any) -> bool:
    """The server's integer test (``str(v).isdigit()``), kept with all its quirks."""
    return str(value).isdigit()


def _unknown_key(mapping: Any, allowed: tuple[str, ...], where: str) -> str | None:
    for key in mapping:
        if key not in allowed:
            return f'invalid item "{key}" in {where}'
    return None


def _must_be_bool(mapping: Any, key: str) -> str | None:
    if key in mapping and not isinstance(mapping[key], bool):
        return f"{key} must be either true or false"
    return None


def _bounded_int(
    value: Any, not_int: str, too_small: tuple[int, str] | None, too_big: tuple[int, str] | None
) -> str | None:
    """Digit check, then ``value < low`` and ``value > high`` (which crash for strings)."""
    if not _digits(value):
        return not_int
    if too_small is not None and value < too_small[0]:
        return too_small[1]
    if too_big is not None and value > too_big[0]:
        return too_big[1]
    return None


def _check_name(job: Any) -> str | None:
    if "name" not in job:
        return None
    name = job["name"]
    if len(name) > 512:
        return "job name must be less than 512 characters in length"
    if name != "" and not _NAME_RE.match(name):
        return "invalid job name"
    return None


def _check_labels(job: Any) -> str | None:
    if "labels" not in job:
        return None
    labels = job["labels"]
    if not isinstance(labels, dict):
        return "labels must be defined as a dict"
    for key, value in labels.items():
        if len(key) > 512:
            return "label names must be less than 512 characters in length"
        if len(value) > 512:
            return "label values must be less than 512 characters in length"
        if not _LABEL_NAME_RE.match(key):
            return f'label name "{key}" is invalid'
        if not _LABEL_VALUE_RE.match(value):
            return f'label value "{value}" is invalid'
    return None


def _check_pair(res: Any, key: str, message: str) -> str | None:
    if not isinstance(res[key], list) or len(res[key]) != 2:
        return message
    return None


def _check_cpus(res: Any) -> str | None:
    if "cpus" in res:
        error = _bounded_int(
            res["cpus"],
            "number of cpus must be an integer",
            (1, "number of cpus must be at least 1"),
            None,
        )
        if error:
            return error
    elif "cpusRange" not in res and "cpusOptions" not in res:
        return "one of cpus, cpusRange, cpusOptions must be defined"
    elif "cpusRange" in res:
        error = _check_pair(
            res,
            "cpusRange",
            "cpusRange must be a list containing the min and max allowed number of CPUs",
        )
        if error:
            return error
    else:
        error = _check_pair(
            res,
            "cpusOptions",
            "cpusOptions must be a list containing the two possible number of CPUs",
        )
        if error:
            return error
    for first, second in (
        ("cpus", "cpusRange"),
        ("cpus", "cpusOptions"),
        ("cpusRange", "cpusOptions"),
    ):
        if first in res and second in res:
            return f"{first} and {second} cannot both be defined"
    return None


def _check_memory(res: Any) -> str | None:
    if "memory" in res:
        error = _bounded_int(
            res["memory"], "memory must be an integer", (1, "memory must be at least 1"), None
        )
        if error:
            return error
    elif "memoryPerCpu" not in res:
        return "memory or memoryPerCpu (in GB) must be defined"
    else:
        error = _bounded_int(
            res["memoryPerCpu"],
            "memoryPerCpu must be an integer",
            (1, "memoryPerCpu must be at least 1"),
            None,
        )
        if error:
            return error
    if "memory" in res and "memoryPerCpu" in res:
        return "memory and memoryPerCpu cannot both be defined"
    return None


def _check_resources(job: Any) -> str | None:
    if "resources" not in job:
        return "a job must contain resources"
    res = job["resources"]
    error = _unknown_key(res, RESOURCE_KEYS, "resources")
    if error:
        return error
    if "nodes" in res:
        error = _bounded_int(
            res["nodes"],
            "number of nodes must be an integer",
            (1, "number of nodes must be at least 1"),
            None,
        )
        if error:
            return error
    if "totalCpusRange" in res:
        if not isinstance(res["totalCpusRange"], list):
            return "totalCpusRange must be a list"
        if len(res["totalCpusRange"]) != 2:
            return (
                "totalCpusRange must be a list containing the min and max allowed total number "
                "of CPUs"
            )
    error = _check_cpus(res) or _check_memory(res)
    if error:
        return error
    if "disk" in res:
        error = _bounded_int(
            res["disk"], "required disk must be an integer", (1, "disk must be at least 1"), None
        )
        if error:
            return error
    if "walltime" in res:
        return _bounded_int(
            res["walltime"],
            "required walltime must be an integer",
            (1, "walltime must be at least 1 minute"),
            None,
        )
    return None


def _check_task(task: Any, resources: Any) -> str | None:
    error = _unknown_key(task, TASK_KEYS, "task")
    if error:
        return error
    if "image" not in task:
        return "each task must specify a container image"
    if "imagePullCredential" in task:
        credential = task["imagePullCredential"]
        if "username" not in credential or "token" not in credential:
            return "a username and token must be specified in the image pull credential"
    if "runtime" not in task:
        return "a container runtime must be defined"
    if task["runtime"] not in RUNTIMES:
        return "the container runtime must be either udocker or singularity"
    if "env" in task and not isinstance(task["env"], dict):
        return "environment variables must be defined as a dict"
    if "app" in task:
        if task["runtime"] == "udocker":
            return "app is only supported by Singularity"
        if not isinstance(task["app"], str):
            return "app must be a string"
    if "procsPerNode" in task:
        procs = task["procsPerNode"]
        error = _bounded_int(
            procs,
            "number of processes per node must be an integer",
            (1, "number of processes per node must be at least 1"),
            None,
        )
        if error:
            return error
        if "cpus" in resources and procs > resources["cpus"]:
            return "number of processes per node must be less than number of CPU cores per node"
    if "cmd" in task and not isinstance(task["cmd"], str):
        return "cmd must be a string"
    if "type" in task:
        if task["type"] not in TASK_TYPES:
            return "invalid task type"
        if task["type"] in MPI_TYPES:
            if "cmd" not in task:
                return "A command to execute must be specified for MPI jobs"
            if task["cmd"].startswith("mpirun "):
                return (
                    "it is not necessary to include mpirun in the cmd if an MPI flavour has "
                    "been specified"
                )
    return None


def _check_tasks(job: Any) -> str | None:
    if "tasks" not in job:
        return "a job must contain tasks"
    tasks = job["tasks"]
    if not isinstance(tasks, list):
        return "an array of tasks must be provided"
    has_standard_task = False
    for task in tasks:
        error = _check_task(task, job["resources"])
        if error:
            return error
        if task.get("type", "basic") != "sidecar":
            has_standard_task = True
    if not has_standard_task:
        return "a job cannot contain only sidecar tasks"
    return None


def _check_artifacts(job: Any) -> str | None:
    if "artifacts" not in job:
        return None
    if not isinstance(job["artifacts"], list):
        return "an array of artifacts must be provided"
    for artifact in job["artifacts"]:
        for key in artifact:
            if key not in ("url", "mountpoint", "executable"):
                return f"invalid item {key} in artifact"
        if "url" not in artifact:
            return "an artifact must contain a URL"
        if "mountpoint" in artifact:
            mountpoint = artifact["mountpoint"]
            if ":" not in mountpoint:
                return "invalid mountpoint for artifact"
            source, target = mountpoint.split(":")[:2]
            if "/" in source:
                return "invalid source in mountpoint for artifact"
            if not target.startswith("/"):
                return "the mountpoint for an artifact must be an absolute path"
    return None


def _check_string_list(job: Any, key: str) -> str | None:
    if key not in job:
        return None
    if not isinstance(job[key], list):
        return f"an array of {key} must be provided"
    if any(not isinstance(item, str) for item in job[key]):
        return f"{key} must be a list of strings"
    return None


def _check_inputs(job: Any) -> str | None:
    if "inputs" not in job:
        return None
    if not isinstance(job["inputs"], list):
        return "an array of inputs must be provided"
    for entry in job["inputs"]:
        for key in entry:
            if key not in ("filename", "content", "executable"):
                return f"invalid item {key} in input"
        if "filename" not in entry:
            return "each input must contain a filename"
        if "content" not in entry:
            return "each input must contain base64 encoded content"
    return None


def _check_storage(job: Any) -> str | None:
    if "storage" not in job:
        return None
    storage = job["storage"]
    if "type" not in storage:
        return "storage type must be defined"
    if storage["type"] != "onedata":
        return "storage type must be onedata"
    if "mountpoint" not in storage:
        return "a mount point must be defined"
    if storage["mountpoint"] and not storage["mountpoint"].startswith("/"):
        return "the mountpoint must be an absolute path"
    error = _must_be_bool(storage, "default")
    if error:
        return error
    if "onedata" not in storage:
        return "OneData storage details must be defined"
    if "provider" not in storage["onedata"]:
        return "OneData provider must be defined"
    if "token" not in storage["onedata"]:
        return "OneData token must be defined"
    return None


def _check_placement(placement: Any) -> str | None:
    error = _unknown_key(placement, ("requirements", "preferences"), "placement policy")
    if error:
        return error
    for section in ("requirements", "preferences"):
        if section not in placement:
            continue
        for key in placement[section]:
            if key not in ("sites", "regions"):
                return f'invalid item "{key}" in {section}'
            if not isinstance(placement[section][key], list):
                return f"{key} in {section} must be a list"
    return None


def _check_retries(policies: Any, key: str, not_int: str) -> str | None:
    if key not in policies:
        return None
    return _bounded_int(
        policies[key],
        not_int,
        (1, "the number of retries must be greater than 0"),
        (MAX_RETRIES, "the number of retries must be less than 6"),
    )


def _check_policies(job: Any) -> str | None:
    if "policies" not in job:
        return None
    policies = job["policies"]
    error = (
        _unknown_key(policies, POLICY_KEYS, "policies")
        or _must_be_bool(policies, "runSerialTasksOnAllNodes")
        or _must_be_bool(policies, "leaveInQueue")
        or ("placement" in policies and _check_placement(policies["placement"]))
        or _must_be_bool(policies, "ignoreTaskFailures")
        or _must_be_bool(policies, "reportJobSuccessOnTaskFailure")
    )
    if error:
        return error
    if "priority" in policies and not _digits(policies["priority"]):
        return "the priority must be an integer"
    if "autoScalingType" in policies and policies["autoScalingType"] not in (
        None,
        "none",
        "dedicated",
        "shared",
    ):
        return "autoScalingType, if defined, must be none, dedicated or shared"
    error = _check_retries(
        policies, "maximumRetries", "the number of retries must be an integer"
    ) or _check_retries(
        policies, "maximumTaskRetries", "the number of task retries must be an integer"
    )
    if error:
        return error
    if "maximumTimeInQueue" in policies:
        value = policies["maximumTimeInQueue"]
        error = _bounded_int(value, "the maximum time in queue must be an integer", None, None)
        if error:
            return error
        # -1 and 0 are documented as special; other values below 1 are errors (the digit
        # check above already rejects every negative number, as on the real server).
        if value < 1 and value not in (0, -1):
            return "the maximum time in queue must be -1, 0 or greater than 0"
        if value > MAX_MINUTES:
            return "the maximum time in queue must be less than 44640"
    if "maximumIdleTimePerResource" in policies:
        return _bounded_int(
            policies["maximumIdleTimePerResource"],
            "the maximum idle time per resource must be an integer",
            (1, "the maximum idle time per resource must be greater than 0"),
            (MAX_MINUTES, "the maximum idle time per resource must be less than 44640"),
        )
    return None


def _check_notifications(job: Any) -> str | None:
    if "notifications" not in job:
        return None
    if not isinstance(job["notifications"], list):
        return "notifications must be in the form of a list"
    for notification in job["notifications"]:
        for key in notification:
            if key not in ("event", "type"):
                return f'invalid item "{key}" in notifications'
            if key == "event" and notification[key] != "jobFinished":
                return f'invalid notification event "{notification[key]}"'
            if key == "type" and notification[key] != "email":
                return f'invalid notification type "{notification[key]}"'
    return None


_SECTIONS: tuple[Check, ...] = (
    lambda job: _unknown_key(job, JOB_KEYS, "job description"),
    _check_name,
    _check_labels,
    _check_resources,
    _check_tasks,
    _check_artifacts,
    lambda job: _check_string_list(job, "outputFiles"),
    lambda job: _check_string_list(job, "outputDirs"),
    _check_inputs,
    _check_storage,
    _check_policies,
    _check_notifications,
)


def validate_job(job: Any) -> str | None:
    """Return the real server's error message for ``job``, or ``None`` if it is accepted.

    Raises (``TypeError``, ``KeyError``, ``AttributeError``...) exactly where the real server
    raises, so the caller can answer HTTP 500.
    """
    for check in _SECTIONS:
        error = check(job)
        if error:
            return error
    return None
