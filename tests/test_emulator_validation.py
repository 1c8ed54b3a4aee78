"""POST /jobs against the real server's validation rules, over HTTP (reference §3).

Each case changes one thing in a valid job and expects the server's verbatim message (400), its
crash (500 with Flask's HTML page), or acceptance (201).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import Api, job

Edit = Callable[[dict], None]


def put(path: str, value: Any) -> Edit:
    """Set ``value`` at a dotted path (``tasks.0.env``), creating dicts on the way."""

    def edit(body: dict) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list) and int(last) == len(node):
            node.append(value)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def drop(path: str) -> Edit:
    def edit(body: dict) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return edit


def edits(*steps: Edit) -> Edit:
    def edit(body: dict) -> None:
        for step in steps:
            step(body)

    return edit


STORAGE = {
    "type": "onedata",
    "mountpoint": "/data",
    "onedata": {"provider": "p", "token": "t"},
}
MPI = {"image": "x", "runtime": "singularity", "type": "openmpi"}

REJECTED: list[tuple[str, Edit, str]] = [
    # top level
    ("unknown-key", put("placement", {}), 'invalid item "placement" in job description'),
    ("name-too-long", put("name", "a" * 513),
     "job name must be less than 512 characters in length"),
    ("name-chars", put("name", "rule:1"), "invalid job name"),
    ("labels-list", put("labels", ["a"]), "labels must be defined as a dict"),
    ("label-key-long", put("labels", {"a" * 513: "v"}),
     "label names must be less than 512 characters in length"),
    ("label-value-long", put("labels", {"a": "v" * 513}),
     "label values must be less than 512 characters in length"),
    ("label-key-underscore", put("labels", {"run_id": "v"}), 'label name "run_id" is invalid'),
    ("label-value-space", put("labels", {"a": "b c"}), 'label value "b c" is invalid'),
    ("label-value-empty", put("labels", {"a": ""}), 'label value "" is invalid'),
    # resources
    ("no-resources", drop("resources"), "a job must contain resources"),
    ("resources-unknown", put("resources.gpus", 1), 'invalid item "gpus" in resources'),
    ("nodes-float", put("resources.nodes", 1.0), "number of nodes must be an integer"),
    ("nodes-zero", put("resources.nodes", 0), "number of nodes must be at least 1"),
    ("total-range-type", put("resources.totalCpusRange", 4), "totalCpusRange must be a list"),
    ("total-range-len", put("resources.totalCpusRange", [1]),
     "totalCpusRange must be a list containing the min and max allowed total number of CPUs"),
    ("cpus-float", put("resources.cpus", 1.5), "number of cpus must be an integer"),
    ("cpus-negative", put("resources.cpus", -2), "number of cpus must be an integer"),
    ("cpus-bool", put("resources.cpus", True), "number of cpus must be an integer"),
    ("cpus-zero", put("resources.cpus", 0), "number of cpus must be at least 1"),
    ("no-cpus", drop("resources.cpus"), "one of cpus, cpusRange, cpusOptions must be defined"),
    ("cpus-range-len", edits(drop("resources.cpus"), put("resources.cpusRange", [1])),
     "cpusRange must be a list containing the min and max allowed number of CPUs"),
    ("cpus-options-type", edits(drop("resources.cpus"), put("resources.cpusOptions", 2)),
     "cpusOptions must be a list containing the two possible number of CPUs"),
    ("cpus-and-range", put("resources.cpusRange", [1, 2]),
     "cpus and cpusRange cannot both be defined"),
    ("cpus-and-options", put("resources.cpusOptions", [1, 2]),
     "cpus and cpusOptions cannot both be defined"),
    ("range-and-options",
     edits(drop("resources.cpus"), put("resources.cpusRange", [1, 2]),
           put("resources.cpusOptions", [1, 2])),
     "cpusRange and cpusOptions cannot both be defined"),
    ("memory-float", put("resources.memory", 1.0), "memory must be an integer"),
    ("memory-zero", put("resources.memory", 0), "memory must be at least 1"),
    ("no-memory", drop("resources.memory"), "memory or memoryPerCpu (in GB) must be defined"),
    ("memory-per-cpu-float", edits(drop("resources.memory"), put("resources.memoryPerCpu", 0.5)),
     "memoryPerCpu must be an integer"),
    ("memory-per-cpu-zero", edits(drop("resources.memory"), put("resources.memoryPerCpu", 0)),
     "memoryPerCpu must be at least 1"),
    ("memory-both", put("resources.memoryPerCpu", 1),
     "memory and memoryPerCpu cannot both be defined"),
    ("disk-float", put("resources.disk", 2.5), "required disk must be an integer"),
    ("disk-zero", put("resources.disk", 0), "disk must be at least 1"),
    ("walltime-float", put("resources.walltime", 0.5), "required walltime must be an integer"),
    ("walltime-zero", put("resources.walltime", 0), "walltime must be at least 1 minute"),
    # tasks
    ("no-tasks", drop("tasks"), "a job must contain tasks"),
    ("tasks-dict", put("tasks", {"image": "x"}), "an array of tasks must be provided"),
    ("task-workDir", put("tasks.0.workDir", "/x"), 'invalid item "workDir" in task'),
    ("task-args", put("tasks.0.args", []), 'invalid item "args" in task'),
    ("no-image", drop("tasks.0.image"), "each task must specify a container image"),
    ("pull-credential", put("tasks.0.imagePullCredential", {"username": "u"}),
     "a username and token must be specified in the image pull credential"),
    ("no-runtime", drop("tasks.0.runtime"), "a container runtime must be defined"),
    ("bad-runtime", put("tasks.0.runtime", "docker"),
     "the container runtime must be either udocker or singularity"),
    ("env-list", put("tasks.0.env", ["A=1"]), "environment variables must be defined as a dict"),
    ("app-udocker", edits(put("tasks.0.runtime", "udocker"), put("tasks.0.app", "a")),
     "app is only supported by Singularity"),
    ("app-type", put("tasks.0.app", 1), "app must be a string"),
    ("ppn-float", put("tasks.0.procsPerNode", 1.0),
     "number of processes per node must be an integer"),
    ("ppn-zero", put("tasks.0.procsPerNode", 0), "number of processes per node must be at least 1"),
    ("ppn-too-many", put("tasks.0.procsPerNode", 2),
     "number of processes per node must be less than number of CPU cores per node"),
    ("cmd-list", put("tasks.0.cmd", ["echo"]), "cmd must be a string"),
    ("bad-type", put("tasks.0.type", "gpu"), "invalid task type"),
    ("mpirun", put("tasks", [{**MPI, "cmd": "mpirun ./a"}]),
     "it is not necessary to include mpirun in the cmd if an MPI flavour has been specified"),
    ("mpi-no-cmd", put("tasks", [MPI]), "A command to execute must be specified for MPI jobs"),
    ("only-sidecar", put("tasks.0.type", "sidecar"), "a job cannot contain only sidecar tasks"),
    ("no-task-at-all", put("tasks", []), "a job cannot contain only sidecar tasks"),
    # artifacts, outputs, inputs
    ("artifacts-dict", put("artifacts", {}), "an array of artifacts must be provided"),
    ("artifact-key", put("artifacts", [{"url": "http://a", "x": 1}]), "invalid item x in artifact"),
    ("artifact-url", put("artifacts", [{"mountpoint": "a:/b"}]), "an artifact must contain a URL"),
    ("artifact-mount", put("artifacts", [{"url": "http://a", "mountpoint": "/b"}]),
     "invalid mountpoint for artifact"),
    ("artifact-source", put("artifacts", [{"url": "http://a", "mountpoint": "a/b:/c"}]),
     "invalid source in mountpoint for artifact"),
    ("artifact-relative", put("artifacts", [{"url": "http://a", "mountpoint": "a:c"}]),
     "the mountpoint for an artifact must be an absolute path"),
    ("output-files-str", put("outputFiles", "a"), "an array of outputFiles must be provided"),
    ("output-files-int", put("outputFiles", ["a", 1]), "outputFiles must be a list of strings"),
    ("output-dirs-str", put("outputDirs", "a"), "an array of outputDirs must be provided"),
    ("output-dirs-int", put("outputDirs", [1]), "outputDirs must be a list of strings"),
    ("inputs-dict", put("inputs", {}), "an array of inputs must be provided"),
    ("input-key", put("inputs", [{"filename": "a", "content": "", "mode": 1}]),
     "invalid item mode in input"),
    ("input-filename", put("inputs", [{"content": ""}]), "each input must contain a filename"),
    ("input-content", put("inputs", [{"filename": "a"}]),
     "each input must contain base64 encoded content"),
    # storage
    ("storage-type-missing", put("storage", {}), "storage type must be defined"),
    ("storage-type", put("storage", {"type": "s3"}), "storage type must be onedata"),
    ("storage-mount-missing", put("storage", {"type": "onedata"}), "a mount point must be defined"),
    ("storage-mount-rel", put("storage", {**STORAGE, "mountpoint": "data"}),
     "the mountpoint must be an absolute path"),
    ("storage-default", put("storage", {**STORAGE, "default": "yes"}),
     "default must be either true or false"),
    ("storage-onedata", put("storage", {"type": "onedata", "mountpoint": "/d"}),
     "OneData storage details must be defined"),
    ("storage-provider", put("storage", {**STORAGE, "onedata": {"token": "t"}}),
     "OneData provider must be defined"),
    ("storage-token", put("storage", {**STORAGE, "onedata": {"provider": "p"}}),
     "OneData token must be defined"),
    # policies
    ("policy-unknown", put("policies.retries", 1), 'invalid item "retries" in policies'),
    ("serial-all-nodes", put("policies.runSerialTasksOnAllNodes", 1),
     "runSerialTasksOnAllNodes must be either true or false"),
    ("leave-in-queue", put("policies.leaveInQueue", "true"),
     "leaveInQueue must be either true or false"),
    ("placement-key", put("policies.placement", {"sites": ["a"]}),
     'invalid item "sites" in placement policy'),
    ("requirements-key", put("policies.placement", {"requirements": {"site": ["a"]}}),
     'invalid item "site" in requirements'),
    ("requirements-list", put("policies.placement", {"requirements": {"sites": "a"}}),
     "sites in requirements must be a list"),
    ("preferences-key", put("policies.placement", {"preferences": {"zone": []}}),
     'invalid item "zone" in preferences'),
    ("preferences-list", put("policies.placement", {"preferences": {"regions": "eu"}}),
     "regions in preferences must be a list"),
    ("ignore-failures", put("policies.ignoreTaskFailures", 0),
     "ignoreTaskFailures must be either true or false"),
    ("report-success", put("policies.reportJobSuccessOnTaskFailure", None),
     "reportJobSuccessOnTaskFailure must be either true or false"),
    ("priority", put("policies.priority", -1), "the priority must be an integer"),
    ("autoscaling", put("policies.autoScalingType", "auto"),
     "autoScalingType, if defined, must be none, dedicated or shared"),
    ("retries-float", put("policies.maximumRetries", 1.0),
     "the number of retries must be an integer"),
    ("retries-zero", put("policies.maximumRetries", 0),
     "the number of retries must be greater than 0"),
    ("retries-seven", put("policies.maximumRetries", 7),
     "the number of retries must be less than 6"),
    ("task-retries-type", put("policies.maximumTaskRetries", "x"),
     "the number of task retries must be an integer"),
    ("task-retries-zero", put("policies.maximumTaskRetries", 0),
     "the number of retries must be greater than 0"),
    ("task-retries-seven", put("policies.maximumTaskRetries", 7),
     "the number of retries must be less than 6"),
    ("queue-time-minus-one", put("policies.maximumTimeInQueue", -1),
     "the maximum time in queue must be an integer"),
    ("queue-time-big", put("policies.maximumTimeInQueue", 44641),
     "the maximum time in queue must be less than 44640"),
    ("idle-time-float", put("policies.maximumIdleTimePerResource", 1.5),
     "the maximum idle time per resource must be an integer"),
    ("idle-time-zero", put("policies.maximumIdleTimePerResource", 0),
     "the maximum idle time per resource must be greater than 0"),
    ("idle-time-big", put("policies.maximumIdleTimePerResource", 44641),
     "the maximum idle time per resource must be less than 44640"),
    # notifications
    ("notifications-dict", put("notifications", {}), "notifications must be in the form of a list"),
    ("notification-key", put("notifications", [{"when": "x"}]),
     'invalid item "when" in notifications'),
    ("notification-event", put("notifications", [{"event": "jobStarted"}]),
     'invalid notification event "jobStarted"'),
    ("notification-type", put("notifications", [{"event": "jobFinished", "type": "sms"}]),
     'invalid notification type "sms"'),
    # first error wins
    ("first-wins-top", edits(put("x", 1), put("name", "!")), 'invalid item "x" in job description'),
    ("first-wins-name", edits(put("name", "!"), put("labels", [])), "invalid job name"),
    ("first-wins-order", edits(put("resources.disk", 0), put("resources.gpus", 1)),
     'invalid item "gpus" in resources'),
    ("first-wins-task", put("tasks", [{"image": "a"}, {"runtime": "singularity"}]),
     "a container runtime must be defined"),
    # the backend's own checks after validation
    ("uploaded-image", put("tasks.0.image", "my-image.sif"), "Image my-image.sif does not exist"),
    ("uploaded-artifact", put("artifacts", [{"url": "inputs.tgz"}]),
     "Artifact inputs.tgz does not exist"),
]  # fmt: skip

ACCEPTED: list[tuple[str, Edit]] = [
    ("as-is", edits()),
    ("empty-name", put("name", "")),
    ("name-spaces-slashes", put("name", "snakejob rule/1.a_b-c")),
    ("labels", put("labels", {"app": "snakemake", "run": "a.b/c-d_e"})),
    ("retries-six", put("policies.maximumRetries", 6)),
    ("queue-time-zero", put("policies.maximumTimeInQueue", 0)),
    ("queue-time-max", put("policies.maximumTimeInQueue", 44640)),
    ("autoscaling-null", put("policies.autoScalingType", None)),
    ("placement", put("policies.placement", {"requirements": {"sites": ["A"], "regions": []}})),
    ("cpus-range", edits(drop("resources.cpus"), put("resources.cpusRange", [1, 2]))),
    ("memory-per-cpu", edits(drop("resources.memory"), put("resources.memoryPerCpu", 1))),
    ("storage", put("storage", {**STORAGE, "default": True})),
    ("artifact-http", put("artifacts", [{"url": "https://x/y.tgz", "mountpoint": "y:/y"}])),
    ("inputs", put("inputs", [{"filename": "a.txt", "content": "aGk=", "executable": True}])),
    ("notifications", put("notifications", [{"event": "jobFinished", "type": "email"}])),
    ("sidecar-plus-task", put("tasks.1", {"image": "x", "runtime": "udocker", "type": "sidecar"})),
    # the server only rejects an MPI cmd starting with "mpirun ", not an empty one
    ("mpi-empty-cmd", put("tasks", [{**MPI, "cmd": ""}])),
    ("preemptible", put("policies.preemptible", "anything")),
]

CRASHES: list[tuple[str, Edit]] = [
    ("no-disk", drop("resources.disk")),
    ("name-null", put("name", None)),
    ("label-value-int", put("labels", {"a": 1})),
    ("cpus-string", put("resources.cpus", "2")),
    ("retries-string", put("policies.maximumRetries", "3")),
    ("input-bad-padding", put("inputs", [{"filename": "a", "content": "abc"}])),
]


@pytest.fixture(scope="module")
def api():
    # Instant mode: accepted jobs are never run, so the table costs no processes.
    with Emulator(instant=True, job_seconds=60) as emulator:
        yield Api(emulator.url)


def _body(edit: Edit) -> dict:
    body = job()
    edit(body)
    return body


@pytest.mark.parametrize(
    ("edit", "message"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_rejected_with_the_servers_message(api, edit, message):
    response = api.post("/jobs", json=_body(edit))
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": message}


@pytest.mark.parametrize("edit", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(api, edit):
    response = api.post("/jobs", json=_body(edit))
    assert response.status_code == 201, response.text
    assert isinstance(response.json()["id"], int)


@pytest.mark.parametrize("edit", [c[1] for c in CRASHES], ids=[c[0] for c in CRASHES])
def test_server_crash_cases_answer_html_500(api, edit):
    response = api.post("/jobs", json=_body(edit))
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Internal Server Error" in response.text


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ('{"name": "x"}', {"Content-Type": "text/plain"}),
        ("null", {"Content-Type": "application/json"}),
        ("5", {"Content-Type": "application/json"}),
    ],
    ids=["not-json-content-type", "json-null", "json-number"],
)
def test_bodies_the_server_cannot_iterate_crash(api, data, headers):
    response = api.post("/jobs", data=data, headers=headers)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")


def test_non_dict_bodies_follow_the_same_rules(api):
    assert api.post("/jobs", json=[]).json() == {"error": "a job must contain resources"}
    assert api.post("/jobs", json="ab").json() == {"error": 'invalid item "a" in job description'}


def test_malformed_json_is_flasks_html_400(api):
    response = api.post("/jobs", data="{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


def test_body_over_one_mebibyte_is_413(api):
    body = job(inputs=[{"filename": "big", "content": "A" * (1024 * 1024)}])
    response = api.post("/jobs", json=body)
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")


def test_ids_increase(api):
    first = api.submit(job())
    second = api.submit(job())
    assert second > first


def test_stored_resources_get_the_default_nodes(api):
    job_id = api.submit(job())
    assert api.describe(job_id)["resources"] == {
        "cpus": 1, "memory": 1, "disk": 1, "walltime": 10, "nodes": 1,
    }  # fmt: skip
