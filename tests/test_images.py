"""What a user writes as an image -> what the PROMINENCE worker can pull, or a clear refusal.

The worker pulls a registry name as ``docker://<name>`` itself, tells URLs, paths, Singularity
Hub and uploaded images apart by their form, and udocker runs Docker images only
(``promlet.py`` ``download_singularity``/``download_udocker``, the server's
``create_htcondor_job.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
from types import SimpleNamespace

import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_prominence import ExecutorSettings
from snakemake_executor_plugin_prominence.detached import cli
from snakemake_executor_plugin_prominence.job import images
from snakemake_executor_plugin_prominence.job.description import JobDefaults, JobSpecError, build
from snakemake_executor_plugin_prominence.run import startup
from tests.jobs import FakeGroupJob, FakeJob

BOTH = ("singularity", "udocker")


SAME = None  # reaches the worker as written
DIGEST = "@sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("written", "runtimes", "sent"),
    [
        ("docker://biocontainers/samtools:1.19", BOTH, "biocontainers/samtools:1.19"),
        ("DOCKER://ubuntu:22.04", BOTH, "ubuntu:22.04"),
        ("docker://ghcr.io/me/tool" + DIGEST, BOTH, "ghcr.io/me/tool" + DIGEST),
        ("snakemake/snakemake:v9.27.1", BOTH, SAME),
        ("quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8", BOTH, SAME),
        ("docker:24-dind", BOTH, SAME),  # an image named docker, not a scheme
        ("localhost:5000/tool:1", BOTH, SAME),
        ("shub://vsoch/hello-world", ("singularity",), SAME),
        ("https://example.org/images/tool.sif", ("singularity",), SAME),
        ("https://s3.example.org/b/tool.simg?X-Amz-Signature=ab", ("singularity",), SAME),
        ("https://example.org/tool.tar", BOTH, SAME),
        ("http://example.org/tool.tgz", BOTH, SAME),
        ("/storage/images/tool.sif", ("singularity",), SAME),
        ("/storage/images/tool.tar", BOTH, SAME),
        ("tool.sif", ("singularity",), SAME),  # uploaded
        ("tool.tar", BOTH, SAME),
        ("team/tool.tgz", BOTH, SAME),
    ],
)  # fmt: skip
def test_what_the_worker_can_pull_reaches_it_as_it_pulls_it(written, runtimes, sent):
    for runtime in runtimes:
        assert images.pullable(written, runtime) == (written if sent is SAME else sent)


@pytest.mark.parametrize(
    ("written", "runtimes", "says"),
    [
        ("library://sylabs/examples/lolcow:latest", BOTH, "Sylabs library"),
        ("oras://ghcr.io/me/tool:1", BOTH, "ORAS"),
        ("docker-archive://tool.tar", BOTH, "prominence upload"),
        ("oci-archive:///tmp/tool.tar", BOTH, "docker save"),
        ("docker-daemon://tool:1", BOTH, "push it to a registry"),
        ("file:///home/me/tool.sif", BOTH, "no PROMINENCE worker pulls file:// images"),
        ("instance://x", BOTH, "no PROMINENCE worker pulls instance:// images"),
        ("HTTPS://example.org/tool.sif", BOTH, "lower case"),
        ("docker://", BOTH, "names no image after docker://"),
        ("docker://docker://ubuntu", BOTH, "no registry name after docker://"),
        ("docker://shub://a/b", BOTH, "no registry name after docker://"),
        ("docker:///abs/path", BOTH, "no registry name after docker://"),
        ("docker://me/tool.tar:1", BOTH, "uploaded"),
        ("", BOTH, "without spaces"),
        ("   ", BOTH, "without spaces"),
        ("me/tool:1 --privileged", BOTH, "without spaces"),
        (None, BOTH, "without spaces"),
        (42, BOTH, "without spaces"),
        ("shub://vsoch/hello-world", ("udocker",), "Singularity Hub"),
        ("https://example.org/tool.sif", ("udocker",), "Singularity image"),
        ("https://example.org/tool.simg?sig=1", ("udocker",), "Singularity image"),
        ("tool.sif", ("udocker",), "Singularity image (uploaded image)"),
        ("/storage/tool.sif", ("udocker",), "only a `docker save` .tar"),
        ("/storage/tool.tgz", ("udocker",), "only a `docker save` .tar"),
    ],
)
def test_what_no_worker_can_pull_is_refused_saying_what_to_write(written, runtimes, says):
    for runtime in runtimes:
        with pytest.raises(images.ImageRefused) as caught:
            images.pullable(written, runtime)
        assert says in str(caught.value)


def test_a_runtime_mismatch_says_how_to_switch_runtime():
    with pytest.raises(images.ImageRefused) as caught:
        images.pullable("https://example.org/tool.sif", "udocker")
    assert "prominence_runtime='singularity'" in str(caught.value)
    assert "--prominence-runtime singularity" in str(caught.value)


def test_a_refused_image_of_a_job_names_rule_resource_and_value():
    with pytest.raises(JobSpecError) as caught:
        images.for_job("align", "container", "library://me/tool:1", "singularity")
    message = str(caught.value)
    assert message.startswith("Rule 'align': resource container='library://me/tool:1' ")
    assert (caught.value.rule, caught.value.resource) == ("align", "container")


# --- in the job description ------------------------------------------------------------------

DEFAULTS = JobDefaults(image="snakemake/snakemake:v9.27.1")
BASE = {"mem_mb": 1000, "disk_mb": 1000, "_cores": 1}


def make(job, defaults=DEFAULTS):
    return build(job, "true", {}, defaults)


@pytest.mark.parametrize("resource", ["prominence_image", "container"])
def test_both_image_sources_are_stripped_and_checked(resource):
    def job(image):
        if resource == "container":
            return FakeJob(name="fit", resources=BASE, container_img_url=image)
        return FakeJob(name="fit", resources={**BASE, resource: image})

    assert make(job("docker://rocker/r-ver:4.4"))["tasks"][0]["image"] == "rocker/r-ver:4.4"
    with pytest.raises(JobSpecError, match=f"Rule 'fit': resource {resource}='oras://x/y:1' "):
        make(job("oras://x/y:1"))


def test_the_jobs_own_runtime_decides_what_it_can_run():
    job = FakeJob(resources={**BASE, "prominence_runtime": "udocker"}, container_img_url="a.sif")
    with pytest.raises(JobSpecError, match="Singularity image"):
        make(job)
    job = FakeJob(resources={**BASE, "prominence_runtime": "udocker"}, container_img_url="a.tar")
    assert make(job)["tasks"][0] == {
        **make(job)["tasks"][0],
        "image": "a.tar",
        "runtime": "udocker",
    }


def test_a_default_image_the_rules_runtime_cannot_run_names_the_setting():
    defaults = JobDefaults(image="shub://me/tool", image_setting="--prominence-container-image")
    assert make(FakeJob(resources=BASE), defaults)["tasks"][0]["image"] == "shub://me/tool"
    job = FakeJob(name="fit", resources={**BASE, "prominence_runtime": "udocker"})
    with pytest.raises(JobSpecError) as caught:
        make(job, defaults)
    message = str(caught.value)
    assert message.startswith("Rule 'fit': resource prominence_runtime='udocker' cannot run")
    assert "'shub://me/tool' (--prominence-container-image)" in message


def test_group_rules_that_write_the_same_image_differently_agree():
    group = FakeGroupJob(
        jobs=[
            FakeJob(container_img_url="docker://me/tool:1"),
            FakeJob(container_img_url="me/tool:1"),
        ],
        resources=BASE,
    )
    assert make(group)["tasks"][0]["image"] == "me/tool:1"


# --- run-wide defaults ------------------------------------------------------------------------


def workflow(container_image=None, retries=0):
    return SimpleNamespace(
        remote_execution_settings=SimpleNamespace(container_image=container_image),
        execution_settings=SimpleNamespace(retries=retries),
    )


OURS = "--prominence-container-image"


def test_the_default_image_is_stripped_like_any_other():
    settings = ExecutorSettings(container_image="docker://me/snakemake:9")
    assert startup.default_image(settings, workflow()) == "me/snakemake:9"
    snakemakes = workflow(container_image="docker://snakemake/snakemake:v9.27.1")
    assert startup.default_image(ExecutorSettings(), snakemakes) == "snakemake/snakemake:v9.27.1"


@pytest.mark.parametrize(
    ("settings", "snakemakes", "flag", "value"),
    [
        ({"container_image": "library://me/tool"}, None, OURS, "library://me/tool"),
        ({}, "oras://ghcr.io/me/tool:1", "--container-image", "oras://ghcr.io/me/tool:1"),
        ({"container_image": "tool.sif", "runtime": "udocker"}, None, OURS, "tool.sif"),
    ],
)  # fmt: skip
def test_a_default_image_no_worker_can_pull_stops_the_run_naming_the_setting(
    settings, snakemakes, flag, value
):
    with pytest.raises(WorkflowError) as caught:
        startup.default_image(ExecutorSettings(**settings), workflow(container_image=snakemakes))
    assert str(caught.value).startswith(f"{flag} {value!r} ")


def test_job_defaults_name_where_the_default_image_came_from():
    run = startup.runinfo.RunLabels("r1", "k1")
    ours = startup.job_defaults(ExecutorSettings(container_image="x"), run, "x")
    theirs = startup.job_defaults(ExecutorSettings(), run, "x")
    assert ours.image_setting == "--prominence-container-image"
    assert theirs.image_setting == "--container-image"
    assert dataclasses.replace(ours, image_setting="") == dataclasses.replace(
        theirs, image_setting=""
    )


# --- the detached head ------------------------------------------------------------------------


def head_args(**values):
    defaults = {"prominence_head_image": None, "container_image": None, "runtime": None}
    return argparse.Namespace(**{**defaults, **values})


def test_the_head_image_is_stripped_and_falls_back_like_the_jobs():
    assert cli._head_image(head_args(prominence_head_image="docker://me/head:1")) == "me/head:1"
    assert cli._head_image(head_args(container_image="docker://me/jobs:1")) == "me/jobs:1"
    both = head_args(prominence_head_image="me/head:1", container_image="docker://me/jobs:1")
    assert cli._head_image(both) == "me/head:1"
    assert cli._head_image(head_args()).startswith("snakemake/snakemake:v")


def test_a_head_image_no_worker_can_pull_stops_submit_before_anything_happens(capsys):
    status = cli.main(["submit", "--prominence-head-image", "library://me/head:1"])
    assert status == 2
    err = capsys.readouterr().err
    assert "--prominence-head-image 'library://me/head:1' cannot be pulled" in err
    # the jobs' default image too: the head's run would refuse it only once the head runs
    status = cli.main(["submit", "--prominence-container-image", "docker://"])
    assert status == 2
    assert "--prominence-container-image 'docker://' names no image" in capsys.readouterr().err
