"""GPU rules (PROMINENCE has no GPU resource), retries that multiply, and the settings that
govern both, checked at start."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_prominence import ExecutorSettings
from snakemake_executor_plugin_prominence.job import resources
from snakemake_executor_plugin_prominence.job.description import JobDefaults, JobSpecError, build
from snakemake_executor_plugin_prominence.run import startup
from tests.jobs import FakeGroupJob, FakeJob

DEFAULTS = JobDefaults(image="snakemake/snakemake:v9.27.1")
BASE = {"mem_mb": 1000, "disk_mb": 1000, "_cores": 1}


def make(job, defaults=DEFAULTS):
    return build(job, "true", {}, defaults)


# --- GPUs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ({"gpu": 1}, ("gpu", 1)),
        ({"gpus": 2.0}, ("gpus", 2.0)),
        ({"nvidia_gpu": "1"}, ("nvidia_gpu", "1")),
        ({"nvidia_gpu": "nvidia-tesla-t4"}, ("nvidia_gpu", "nvidia-tesla-t4")),
        ({"amd_gpu": True}, ("amd_gpu", True)),
        ({"gpu_model": "a100"}, ("gpu_model", "a100")),
        ({"gpu": 0, "gpu_manufacturer": "nvidia"}, ("gpu_manufacturer", "nvidia")),
        ({"gpu": 0}, None),
        ({"gpu": "0"}, None),
        ({"gpu": " 0.0 "}, None),
        ({"gpu": None, "gpu_model": ""}, None),
        ({"nvidia_gpu": False}, None),
        ({"gpu": -1}, None),
        ({"mem_mb": 1000, "gpu_memory": 5}, None),
    ],
)
def test_what_counts_as_asking_for_a_gpu(given, found):
    assert resources.gpu_request(given) == found


def test_a_gpu_rule_fails_alone_naming_rule_resource_value_and_what_to_do():
    with pytest.raises(JobSpecError) as caught:
        make(FakeJob(name="train", resources={**BASE, "gpu": 2}))
    message = str(caught.value)
    assert message.startswith("Rule 'train': resource gpu=2 asks for a GPU")
    assert "prominence_sites" in message and "--prominence-ignore-gpu" in message
    assert "localrules" in message
    # a rule without one is unaffected
    assert make(FakeJob(name="prep", resources={**BASE, "gpu": 0}))["resources"]["cpus"] == 1


def test_a_gpu_rule_in_a_group_names_the_group_and_the_rule():
    group = FakeGroupJob(
        name="pipeline",
        jobs=[FakeJob(name="prep", resources=BASE), FakeJob(name="train", resources={"gpu": 1})],
        resources={**BASE, "gpu": 1},
    )
    with pytest.raises(JobSpecError) as caught:
        make(group)
    assert str(caught.value).startswith("Rule 'pipeline': resource gpu=1 asks for a GPU")
    assert "(rule train of the group)" in str(caught.value)


def test_ignore_gpu_submits_the_rule_without_its_gpu_request():
    defaults = dataclasses.replace(DEFAULTS, ignore_gpu=True)
    spec = make(FakeJob(resources={**BASE, "gpu": 2, "gpu_model": "a100"}), defaults)
    assert "gpu" not in str(spec).lower()
    assert spec["resources"] == {"nodes": 1, "cpus": 1, "memory": 1, "disk": 10}


def test_job_defaults_carry_the_gpu_and_disk_settings():
    run = startup.runinfo.RunLabels("r1", "k1")
    settings = ExecutorSettings(ignore_gpu=True, min_disk=25)
    defaults = startup.job_defaults(settings, run, "img")
    assert (defaults.ignore_gpu, defaults.min_disk_gb) == (True, 25)
    plain = startup.job_defaults(ExecutorSettings(), run, "img")
    assert (plain.ignore_gpu, plain.min_disk_gb) == (False, resources.DEFAULT_DISK_GB)


# --- retries -----------------------------------------------------------------------------------


def workflow(retries):
    return SimpleNamespace(
        remote_execution_settings=SimpleNamespace(container_image=None),
        execution_settings=SimpleNamespace(retries=retries),
    )


@pytest.mark.parametrize(("ours", "theirs"), [(None, 3), (0, 3), (2, 0), (None, 0)])
def test_no_warning_when_only_one_kind_of_retries_is_on(ours, theirs):
    assert startup.retries_warning(ExecutorSettings(max_retries=ours), workflow(theirs)) is None


def test_both_kinds_of_retries_warn_with_how_many_runs_a_failing_job_can_cost():
    warning = startup.retries_warning(ExecutorSettings(max_retries=2), workflow(3))
    assert warning.startswith("--prominence-max-retries 2 and Snakemake's --retries 3 multiply")
    assert "non-zero exit" in warning and "walltime" in warning
    assert "can run 12 times" in warning  # (2 + 1) x (3 + 1)


# --- settings checked at start -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_disk": 0}, "--prominence-min-disk 0: must be at least 1."),
        ({"max_retries": 7}, "--prominence-max-retries 7: must be from 0 to 6"),
        ({"max_retries": -1}, "--prominence-max-retries -1: must be from 0 to 6"),
    ],
)
def test_impossible_settings_stop_the_run_at_start(values, message):
    with pytest.raises(WorkflowError) as caught:
        startup.check_settings(ExecutorSettings(**values))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("values", [{}, {"min_disk": 1}, {"max_retries": 0}, {"max_retries": 6}])
def test_possible_settings_pass(values):
    startup.check_settings(ExecutorSettings(**values))
