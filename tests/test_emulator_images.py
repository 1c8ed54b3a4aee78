"""Images as the real worker pulls them (promlet.py download_singularity/download_udocker,
image_name; create_htcondor_job.py:59-95), over HTTP: instant mode, where only the pull
matters, and one real run for what the job's stderr says."""

from __future__ import annotations

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.emulator.images import is_registry_reference
from tests.emulator_helpers import Api, job

SHA = "a" * 64
STORAGE = {
    "type": "onedata",
    "mountpoint": "/data",
    "onedata": {"provider": "p.example", "token": "t"},
}


@pytest.fixture(scope="module")
def api():
    with Emulator(instant=True, job_seconds=0.05, missing_images=["ghcr.io/gone/*"]) as emu:
        yield Api(emu.url)


def run(api: Api, image: str, runtime: str = "singularity", **top) -> dict:
    body = job("true", **top)
    body["tasks"][0].update(image=image, runtime=runtime)
    return api.wait(api.submit(body), timeout=10)


@pytest.mark.parametrize(
    "image",
    ["busybox", "busybox:1.36", "snakemake/snakemake:v9.3.5", "library/ubuntu:24.04",
     "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8", "localhost:5000/team/tool:1",
     "registry.example.org:443/a/b-c/d__e", f"python@sha256:{SHA}", f"python:3.12@sha256:{SHA}"],
)  # fmt: skip
@pytest.mark.parametrize("runtime", ["singularity", "udocker"])
def test_registry_references_are_pulled(api, image, runtime):
    done = run(api, image, runtime)
    assert done["status"] == "completed" and "statusReason" not in done
    [task] = done["execution"]["tasks"]
    assert (task["imagePullStatus"], task["exitCode"]) == ("completed", 0)
    # Singularity hashes the image file it pulled; a udocker registry pull reports no checksum.
    assert ("imageSha256" in task) == (runtime == "singularity")


@pytest.mark.parametrize(
    ("image", "runtime"),
    [
        ("docker://busybox:1.36", "singularity"),  # pulled as docker://docker://busybox:1.36
        ("docker://busybox:1.36", "udocker"),
        ("docker://docker://busybox", "singularity"),
        ("library://alpine:3.20", "singularity"),
        ("oras://ghcr.io/x/y:1", "singularity"),
        ("docker-archive://saved", "singularity"),  # (with .tar in it: an upload's name, a 400)
        ("shub://vsoch/hello-world", "udocker"),  # udocker cannot pull from Singularity Hub
        ("Busybox", "singularity"),  # repository names are lower case
        ("Team/tool:1", "singularity"),
        ("httpd:2.4", "singularity"),  # starts with "http": downloaded as a URL, which it is not
        ("/cvmfs/images/tool.sif", "singularity"),  # no storage in the job to find it on
        ("/cvmfs/images/tool.tar", "udocker"),
        ("ghcr.io/gone/tool:1", "singularity"),  # --missing-image, on the image as given
    ],
)
def test_what_the_worker_cannot_pull_fails_the_job(api, image, runtime):
    done = run(api, image, runtime)
    assert (done["status"], done["statusReason"]) == ("failed", "Container image pull failed")
    assert done["execution"]["tasks"] == [{"imagePullStatus": "failed"}]  # no exitCode


@pytest.mark.parametrize(
    ("image", "runtime"),
    [
        ("shub://vsoch/hello-world", "singularity"),
        ("https://example.org/images/tool.sif", "singularity"),
        ("https://example.org/images/tool.tar", "udocker"),  # a `docker save` tarball
        ("http://example.org/tool.tgz", "singularity"),
    ],
)
def test_singularity_hub_and_urls_are_accepted(api, image, runtime):
    done = run(api, image, runtime)
    assert done["status"] == "completed"
    [task] = done["execution"]["tasks"]
    assert task["imagePullStatus"] == "completed" and "imageSha256" in task


def test_an_absolute_path_comes_from_the_jobs_default_storage(api):
    """With storage marked default, the worker downloads the path from its CDMI endpoint."""
    storage = {**STORAGE, "default": True}
    done = run(api, "/images/tool.sif", storage=storage)
    assert done["status"] == "completed"
    done = run(api, "/images/tool.sif", storage=STORAGE)  # mounted storage: not emulated
    assert done["statusReason"] == "Container image pull failed"


@pytest.mark.parametrize("image", ["tool.sif", "team/tool.tar.gz", "image.simg", "x.tgz"])
def test_names_of_uploaded_images_do_not_exist_at_submission(api, image):
    body = job("true")
    body["tasks"][0]["image"] = image
    response = api.post("/jobs", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"error": f"Image {image} does not exist"},
    )


def test_a_later_task_reuses_the_image_for_the_same_runtime_only(api):
    body = job("true")
    task = body["tasks"][0]
    body["tasks"] = [task, dict(task), {**task, "runtime": "udocker"}]
    done = api.wait(api.submit(body), timeout=10)
    statuses = [t["imagePullStatus"] for t in done["execution"]["tasks"]]
    assert statuses == ["completed", "cached", "completed"]
    cached = done["execution"]["tasks"][1]
    assert "imageSha256" not in cached and "imagePullTime" not in cached


def test_a_failed_pull_with_ignore_task_failures_goes_on(api):
    body = job("true", policies={"ignoreTaskFailures": True})
    good = body["tasks"][0]
    body["tasks"] = [{**good, "image": "docker://busybox"}, good]
    done = api.wait(api.submit(body), timeout=10)
    # The worker goes on and exits 0; the server still shows the failed pull.
    assert (done["status"], done["statusReason"]) == ("failed", "Container image pull failed")
    assert [t["imagePullStatus"] for t in done["execution"]["tasks"]] == ["failed", "completed"]
    assert "retries" not in done["execution"]


def test_a_failed_pull_is_retried_with_maximum_retries(api):
    done = run(api, "docker://busybox", policies={"maximumRetries": 2})
    assert done["statusReason"] == "Container image pull failed"
    assert done["execution"]["retries"] == 2


def test_patterns_match_the_image_as_given(tmp_path):
    """--bare-image and friends see what the task gives; the real run explains a bad image."""
    with Emulator(state_dir=tmp_path, bare_images=["*/bare:*"]) as emu:
        api = Api(emu.url)
        body = job("python -c 'import snakemake'")
        body["tasks"][0]["image"] = "example/bare:1"
        done = api.wait(api.submit(body), timeout=30)
        assert done["execution"]["tasks"][0]["exitCode"] == 1  # a python without Snakemake
        body["tasks"][0]["image"] = "docker://example/bare:1"
        done = api.wait(api.submit(body), timeout=30)
        assert done["statusReason"] == "Container image pull failed"
        stderr = api.get(f"/jobs/{done['id']}/stderr").text
        assert "docker://docker://example/bare:1" in stderr
        assert "without docker://" in stderr


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a", True), ("a/b/c:tag", True), ("a.b/c", True), ("localhost/x", True),
     ("A/b", False), ("a/B", False), ("a//b", False), ("a/", False), ("-a", False),
     ("a:", False), ("a@sha256:abc", False), ("a:" + "t" * 129, False),
     ("x" * 256, False), ("a b", False), ("docker://a", False), ("ä", False)],
)  # fmt: skip
def test_registry_reference_grammar(name, valid):
    assert is_registry_reference(name) is valid
