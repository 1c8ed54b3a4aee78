"""Property-based: whatever resources and names a rule has, the job builder either produces a
job the real server's validator accepts, or a clear error naming rule, resource and value."""

from __future__ import annotations

import json
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from snakemake_executor_plugin_prominence.emulator.validation import validate_job
from snakemake_executor_plugin_prominence.job import description
from snakemake_executor_plugin_prominence.job.description import JobDefaults, JobSpecError, build
from tests.jobs import FakeGroupJob, FakeJob

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9\-\_\s\/\.]+$")
LABEL_KEY = re.compile(r"^[a-zA-Z0-9]+$")
LABEL_VALUE = re.compile(r"^[\w\-\_\.\/]+$")

hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["4", "2.5", "-1", "1e3", "lots", "", " 8 ", "nan", "inf", "0x10"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
resource_names = st.sampled_from(
    [
        "mem_mb", "mem_mib", "disk_mb", "disk_mib", "runtime", "nodes", "_cores",
        *description.PROMINENCE_RESOURCES,
        "prominence_typo", "gpu", "tmpdir",
    ]
)  # fmt: skip
texts = st.text(min_size=1, max_size=40)


def checked(job, labels=None):
    """Build; a success must pass the server's validation and be plain JSON."""
    defaults = JobDefaults(image="snakemake/snakemake:v9", labels={"snakemakerun": "r1"})
    try:
        spec = build(job, "python -m snakemake --target-jobs 'x:'", {"K": "v"}, defaults, labels)
    except JobSpecError as e:
        message = str(e)
        assert message.startswith(f"Rule '{job.name}': resource {e.resource}=")
        assert repr(e.value) in message
        return None
    assert validate_job(json.loads(json.dumps(spec, allow_nan=False))) is None, spec
    for value in spec["resources"].values():
        assert type(value) is int and 0 <= value < 2**31
    return spec


@settings(max_examples=400, deadline=None)
@given(
    threads=hostile_values,
    resources=st.dictionaries(resource_names, hostile_values, max_size=6),
    container=st.one_of(st.none(), texts),
)
def test_any_resources_give_a_valid_job_or_a_clear_error(threads, resources, container):
    job = FakeJob(name="rule1", threads=threads, resources=resources, container_img_url=container)
    checked(job)


@settings(max_examples=200, deadline=None)
@given(
    threads=st.integers(min_value=1, max_value=512),
    mem_mb=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    disk_mb=st.integers(min_value=0, max_value=10**9),
    runtime=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
)
def test_sane_resources_always_build_and_round_up(threads, mem_mb, disk_mb, runtime):
    resources = {"mem_mb": mem_mb, "disk_mb": disk_mb}
    if runtime is not None:
        resources["runtime"] = runtime
    spec = checked(FakeJob(threads=threads, resources=resources))
    assert spec is not None
    assert spec["resources"]["cpus"] == threads
    assert spec["resources"]["memory"] * 1024 >= mem_mb * 1e6 / 2**20
    assert spec["resources"]["memory"] == max(1, math.ceil(mem_mb * 1e6 / 2**20 / 1024))
    if runtime:
        assert spec["resources"]["walltime"] >= runtime


@settings(max_examples=300, deadline=None)
@given(
    rule=texts,
    jobid=st.one_of(st.integers(min_value=0), st.uuids().map(str), texts),
    wildcard_value=texts,
    group=st.booleans(),
)
def test_names_and_labels_always_match_the_servers_patterns(rule, jobid, wildcard_value, group):
    member = FakeJob(name=rule, jobid=jobid, wildcards={"sample": wildcard_value})
    job = FakeGroupJob(name=rule, jobid=jobid, jobs=[member]) if group else member
    labels = {
        "snakemakerule": description.label_value(rule),
        "snakemakejob": description.label_value(jobid),
        "snakemakewild": description.label_value(wildcard_value),
    }
    spec = checked(job, labels)
    assert spec is not None
    assert NAME_PATTERN.match(spec["name"]) and len(spec["name"]) <= 512
    for key, value in spec["labels"].items():
        assert LABEL_KEY.match(key) and len(key) <= 512
        assert LABEL_VALUE.match(value) and len(value) <= 512
