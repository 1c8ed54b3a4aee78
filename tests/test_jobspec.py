"""The Snakemake job -> PROMINENCE job mapping, resource by resource, and every bad value."""

from __future__ import annotations

import dataclasses
import math
import shlex
import string

import pytest

from snakemake_executor_plugin_prominence.job import description, resources
from snakemake_executor_plugin_prominence.job.description import JobDefaults, JobSpecError, build
from tests.jobs import FakeGroupJob, FakeJob

DEFAULTS = JobDefaults(image="snakemake/snakemake:v9.27.1", labels={"snakemakerun": "abc123"})
#: As DEFAULTS, for jobs whose rules set their disk themselves (taken as is, no floor).
OWN_DISK = dataclasses.replace(DEFAULTS, rules_set_disk=lambda job: True)
COMMAND = "python -m snakemake --snakefile 'Snakefile' --target-jobs 'align:sample=a'"


def make(job, defaults=DEFAULTS, env=None, labels=None):
    return build(job, COMMAND, env or {}, defaults, job_labels=labels)


def full_resources(**overrides):
    resources = {"mem_mb": 1000, "mem_mib": 954, "disk_mb": 1000, "disk_mib": 954, "_cores": 1}
    resources.update(overrides)
    return resources


# --- resources -------------------------------------------------------------------------


def test_minimal_job_has_every_field_the_server_requires():
    spec = make(FakeJob(resources=full_resources()))
    # Snakemake's default disk_mb=1000 is raised to the floor: the image is pulled into it
    assert spec["resources"] == {"nodes": 1, "cpus": 1, "memory": 1, "disk": 10}
    task = spec["tasks"][0]
    assert task["image"] == "snakemake/snakemake:v9.27.1"
    assert task["runtime"] == "singularity"
    assert spec["name"] == "snakejob.align.7"
    assert "policies" not in spec


@pytest.mark.parametrize("threads", [1, 2, 16, 64])
def test_cpus_come_from_threads(threads):
    assert (
        make(FakeJob(threads=threads, resources=full_resources()))["resources"]["cpus"] == threads
    )


@pytest.mark.parametrize(
    ("mib", "gb"), [(1, 1), (954, 1), (1024, 1), (1025, 2), (4096, 4), (4097, 5), (0, 1)]
)
def test_memory_rounds_mib_up_to_whole_gb(mib, gb):
    job = FakeJob(resources=full_resources(mem_mib=mib, mem_mb=round(mib * 1.048576)))
    assert make(job)["resources"]["memory"] == gb


def test_memory_from_mem_mb_when_mib_is_absent():
    resources = full_resources(mem_mb=5000)
    del resources["mem_mib"]
    # 5000 MB = 4768.4 MiB -> 4.66 GiB -> 5
    assert make(FakeJob(resources=resources))["resources"]["memory"] == 5


def test_fractional_memory_is_rounded_up_not_rejected():
    assert make(FakeJob(resources=full_resources(mem_mib=2048.5)))["resources"]["memory"] == 3


@pytest.mark.parametrize(("mib", "gb"), [(954, 1), (10240, 10), (10241, 11), (102400, 100)])
def test_disk_rounds_up_to_whole_gb(mib, gb):
    job = FakeJob(resources=full_resources(disk_mib=mib))
    assert make(job, OWN_DISK)["resources"]["disk"] == gb


@pytest.mark.parametrize(
    ("mib", "floor", "gb"), [(954, 10, 10), (954, 2, 2), (20480, 10, 20), (954, 1, 1)]
)
def test_disk_not_set_by_the_rule_is_at_least_the_floor(mib, floor, gb):
    defaults = dataclasses.replace(DEFAULTS, min_disk_gb=floor)
    assert (
        make(FakeJob(resources=full_resources(disk_mib=mib)), defaults)["resources"]["disk"] == gb
    )


def test_disk_the_rule_sets_is_taken_as_is_below_the_floor():
    seen = []

    def rule_sets_disk(job):
        seen.append(job)
        return job.name == "small"

    defaults = dataclasses.replace(DEFAULTS, rules_set_disk=rule_sets_disk)
    small = FakeJob(name="small", resources=full_resources(disk_mb=2000, disk_mib=1908))
    other = FakeJob(name="other", resources=full_resources(disk_mb=2000, disk_mib=1908))
    assert make(small, defaults)["resources"]["disk"] == 2
    assert make(other, defaults)["resources"]["disk"] == 10
    assert seen == [small, other]


def test_disk_is_always_sent_because_the_server_crashes_without_it():
    spec = make(FakeJob(resources={"_cores": 1}))
    assert spec["resources"]["disk"] == resources.DEFAULT_DISK_GB
    assert spec["resources"]["memory"] == 1


@pytest.mark.parametrize(("runtime", "minutes"), [(30, 30), (1, 1), (90.2, 91), (1440, 1440)])
def test_walltime_in_minutes_rounded_up(runtime, minutes):
    assert (
        make(FakeJob(resources=full_resources(runtime=runtime)))["resources"]["walltime"] == minutes
    )


@pytest.mark.parametrize("runtime", [None, 0])
def test_walltime_omitted_without_runtime(runtime):
    resources = full_resources()
    if runtime is not None:
        resources["runtime"] = runtime
    assert "walltime" not in make(FakeJob(resources=resources))["resources"]


def test_every_integer_sent_is_a_plain_non_negative_int():
    job = FakeJob(threads=3, resources=full_resources(mem_mib=3000.7, disk_mib=2e4, runtime=12.5))
    spec = make(job)
    for key, value in spec["resources"].items():
        assert type(value) is int and value >= 0, key


def test_zero_threads_ask_for_one_cpu():
    # threads: 0 is valid Snakemake; PROMINENCE needs at least one cpu.
    assert make(FakeJob(threads=0, resources=full_resources()))["resources"]["cpus"] == 1


def test_multi_node_job_needs_mpi():
    job = FakeJob(resources=full_resources(nodes=4, prominence_mpi="openmpi"))
    spec = make(job)
    assert spec["resources"]["nodes"] == 4
    assert spec["tasks"][0]["type"] == "openmpi"


def test_procs_per_node_needs_mpi_and_fits_cpus():
    job = FakeJob(
        threads=8,
        resources=full_resources(nodes=2, prominence_mpi="mpich", prominence_procs_per_node=4),
    )
    assert make(job)["tasks"][0]["procsPerNode"] == 4


# --- bad values: the rule, the resource and the value are named -----------------------------

BAD_VALUES = [
    ({"threads": -2}, "threads", "-2"),
    ({"resources": full_resources(mem_mib="lots")}, "mem_mib", "'lots'"),
    ({"resources": full_resources(mem_mib=-1)}, "mem_mib", "-1"),
    ({"resources": full_resources(mem_mib=math.nan)}, "mem_mib", "nan"),
    ({"resources": full_resources(mem_mib=math.inf)}, "mem_mib", "inf"),
    ({"resources": full_resources(mem_mib=True)}, "mem_mib", "True"),
    ({"resources": full_resources(disk_mib=-5)}, "disk_mib", "-5"),
    ({"resources": full_resources(disk_mib="big")}, "disk_mib", "'big'"),
    ({"resources": full_resources(disk_mib=1e30)}, "disk_mib", "1e+30"),
    ({"resources": full_resources(runtime=-10)}, "runtime", "-10"),
    ({"resources": full_resources(runtime="forever")}, "runtime", "'forever'"),
    ({"resources": full_resources(nodes=0)}, "nodes", "0"),
    ({"resources": full_resources(nodes=2.5, prominence_mpi="openmpi")}, "nodes", "2.5"),
    ({"resources": full_resources(nodes=3)}, "nodes", "3"),
    ({"resources": full_resources(prominence_mpi="lam")}, "prominence_mpi", "'lam'"),
    ({"resources": full_resources(prominence_runtime="docker")}, "prominence_runtime", "'docker'"),
    (
        {"resources": full_resources(prominence_image="two words")},
        "prominence_image",
        "'two words'",
    ),
    ({"resources": full_resources(prominence_image="")}, "prominence_image", "''"),
    ({"resources": full_resources(prominence_imgae="x")}, "prominence_imgae", "'x'"),
    ({"resources": full_resources(prominence_max_retries=7)}, "prominence_max_retries", "7"),
    ({"resources": full_resources(prominence_max_retries=1.5)}, "prominence_max_retries", "1.5"),
    (
        {"resources": full_resources(prominence_max_time_in_queue=-1)},
        "prominence_max_time_in_queue",
        "-1",
    ),
    (
        {"resources": full_resources(prominence_max_time_in_queue=44641)},
        "prominence_max_time_in_queue",
        "44641",
    ),
    ({"resources": full_resources(prominence_priority=-3)}, "prominence_priority", "-3"),
    ({"resources": full_resources(prominence_sites=5)}, "prominence_sites", "5"),
    ({"container_img_url": "docker://has space"}, "container", "'docker://has space'"),
    (
        {"resources": full_resources(prominence_procs_per_node=2)},
        "prominence_procs_per_node",
        "2",
    ),
]


@pytest.mark.parametrize(("fields", "resource", "shown"), BAD_VALUES)
def test_bad_value_names_rule_resource_and_value(fields, resource, shown):
    fields = {"resources": full_resources(), **fields}
    with pytest.raises(JobSpecError) as caught:
        make(FakeJob(name="bwa_map", **fields))
    message = str(caught.value)
    assert message.startswith("Rule 'bwa_map': ")
    assert f"resource {resource}={shown}" in message
    assert caught.value.rule == "bwa_map" and caught.value.resource == resource


def test_unknown_prominence_resource_lists_the_known_ones():
    with pytest.raises(JobSpecError, match="known: prominence_image"):
        make(FakeJob(resources=full_resources(prominence_imgae="x")))


# --- image precedence --------------------------------------------------------------------


def test_image_precedence_resource_over_container_over_default():
    base = full_resources()
    assert make(FakeJob(resources=base))["tasks"][0]["image"] == DEFAULTS.image
    job = FakeJob(resources=base, container_img_url="docker://rocker/r-ver:4.4")
    # the worker adds docker:// itself
    assert make(job)["tasks"][0]["image"] == "rocker/r-ver:4.4"
    job = FakeJob(
        resources=full_resources(prominence_image="me/tools:1"),
        container_img_url="docker://rocker/r-ver:4.4",
    )
    assert make(job)["tasks"][0]["image"] == "me/tools:1"


def test_runtime_from_setting_and_resource():
    defaults = JobDefaults(image="img", runtime="udocker")
    assert make(FakeJob(resources=full_resources()), defaults)["tasks"][0]["runtime"] == "udocker"
    job = FakeJob(resources=full_resources(prominence_runtime="singularity"))
    assert make(job, defaults)["tasks"][0]["runtime"] == "singularity"


# --- command and environment ---------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        COMMAND,
        "echo 'single' \"double\" $HOME `date` && exit 3",
        "python -c 'print(\"it'\"'\"'s\")'",
        "a\nb\tc \\ d",
        "echo $HOME $$ ${PROMINENCE_JOB_ID} $PROMINENCE_JOB_ID '$x' $",
    ],
)
def test_cmd_is_sh_c_and_survives_the_workers_substitution_and_split(command):
    spec = build(FakeJob(resources=full_resources()), command, {}, DEFAULTS)
    # The worker fills in $PROMINENCE_JOB_ID with string.Template, then runs
    # shlex.split(cmd) without a shell.
    cmd = string.Template(spec["tasks"][0]["cmd"]).safe_substitute({"PROMINENCE_JOB_ID": "17"})
    assert shlex.split(cmd) == ["/bin/sh", "-c", command]


def test_env_values_travel_in_task_env_as_strings_not_in_cmd():
    spec = make(FakeJob(resources=full_resources()), env={"SECRET": "s3cr3t-value", "N": 5})
    task = spec["tasks"][0]
    assert task["env"] == {"SECRET": "s3cr3t-value", "N": "5"}
    assert "s3cr3t-value" not in task["cmd"]


def test_no_env_key_when_there_is_nothing_to_pass():
    assert "env" not in make(FakeJob(resources=full_resources()))["tasks"][0]


# --- names and labels --------------------------------------------------------------------


NAME_PATTERN = r"^[a-zA-Z0-9\-\_\s\/\.]+$"
LABEL_KEY = r"^[a-zA-Z0-9]+$"
LABEL_VALUE = r"^[\w\-\_\.\/]+$"


@pytest.mark.parametrize("rule", ["align", "bwa_map", "weird rule:name", "ünïcode", "x" * 600])
def test_name_and_labels_match_server_patterns(rule):
    import re

    job = FakeJob(name=rule, resources=full_resources())
    spec = make(
        job,
        labels={
            "snakemakerule": description.label_value(rule),
            "snakemakejob": description.label_value(job.jobid),
        },
    )
    assert re.match(NAME_PATTERN, spec["name"]) and len(spec["name"]) <= 512
    for key, value in spec["labels"].items():
        assert re.match(LABEL_KEY, key) and len(key) <= 512
        assert re.match(LABEL_VALUE, value) and len(value) <= 512
    assert spec["labels"]["snakemakerun"] == "abc123"


def test_label_value_never_empty():
    assert description.label_value("") == "_"
    assert description.label_value("a b:c=d") == "a_b_c_d"


def test_user_labels_parsed_and_validated():
    assert description.parse_label_pairs("project=abc, team=x.y/z", "--prominence-labels") == {
        "project": "abc",
        "team": "x.y/z",
    }
    with pytest.raises(ValueError, match="--prominence-labels"):
        description.parse_label_pairs("bad_key=x", "--prominence-labels")
    with pytest.raises(ValueError, match="--prominence-labels"):
        description.parse_label_pairs("key=has space", "--prominence-labels")
    with pytest.raises(ValueError, match="--prominence-labels"):
        description.parse_label_pairs("novalue", "--prominence-labels")


# --- policies ----------------------------------------------------------------------------


def test_policies_from_settings_and_per_rule_resources():
    defaults = JobDefaults(
        image="img", max_retries=2, max_time_in_queue=600, sites=("SiteA",), regions=("EU",)
    )
    spec = make(FakeJob(resources=full_resources()), defaults)
    assert spec["policies"] == {
        "maximumRetries": 2,
        "maximumTimeInQueue": 600,
        "placement": {"requirements": {"sites": ["SiteA"], "regions": ["EU"]}},
    }
    job = FakeJob(
        resources=full_resources(
            prominence_max_retries=0,
            prominence_sites="B, C",
            prominence_priority=5,
            prominence_max_time_in_queue=0,
        )
    )
    assert make(job, defaults)["policies"] == {
        "maximumTimeInQueue": 0,
        "priority": 5,
        "placement": {"requirements": {"sites": ["B", "C"], "regions": ["EU"]}},
    }


# --- group jobs --------------------------------------------------------------------------


def test_group_job_uses_group_cores_and_a_uuid_jobid():
    group = FakeGroupJob(
        name="foo",
        jobs=[FakeJob(name="a", threads=2), FakeJob(name="b", threads=1)],
        resources=full_resources(_cores=3, runtime=20),
    )
    spec = make(group)
    assert spec["resources"]["cpus"] == 3
    assert spec["resources"]["walltime"] == 20
    assert spec["name"] == f"snakejob.foo.{group.jobid}"


def test_group_members_must_agree_on_image():
    group = FakeGroupJob(
        jobs=[FakeJob(container_img_url="docker://a"), FakeJob(container_img_url="docker://b")],
        resources=full_resources(),
    )
    with pytest.raises(JobSpecError, match="differs between the rules of the group"):
        make(group)
    group.jobs = [FakeJob(container_img_url="docker://a"), FakeJob()]
    assert make(group)["tasks"][0]["image"] == "a"
    # the same image, written with and without docker://
    group.jobs = [FakeJob(container_img_url="docker://a:1"), FakeJob(container_img_url="a:1")]
    assert make(group)["tasks"][0]["image"] == "a:1"


def test_group_members_must_agree_on_prominence_resources():
    group = FakeGroupJob(
        jobs=[
            FakeJob(resources={"prominence_runtime": "udocker"}),
            FakeJob(resources={"prominence_runtime": "singularity"}),
        ],
        resources=full_resources(),
    )
    with pytest.raises(JobSpecError, match="prominence_runtime"):
        make(group)
