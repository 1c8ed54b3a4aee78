"""The default path ships the storage plugins a run needs to its jobs without a package index.

The jobs run as in the official ``snakemake/snakemake`` image: the emulator's ``--plain-image``
gives them a Python with Snakemake and its own requirements only (no storage plugin, no boto3),
and the package index is unreachable to them (``PIP_INDEX_URL`` points at a closed loopback
port, pip's config files are off). A run on S3 with the default settings must still complete:
the S3 plugin and boto3 can only have come from the run's own zip. The same run with
``--prominence-storage-plugins install`` (each job pip-installs, the behaviour before) and with
``image`` must fail, which shows the set-up really cuts the jobs off from both.
"""

from __future__ import annotations

import socket
import uuid

import pytest

from snakemake_executor_plugin_prominence.job import deployment
from tests.emulator_helpers import jwt_for
from tests.processes import run_snakemake
from tests.s3server import S3Server
from tests.test_s3_storage import ACCESS_KEY, CREDENTIALS_ENV, SECRET_KEY

pytestmark = pytest.mark.e2e

SNAKEFILE = """\
rule all:
    input: "hello.txt"

rule hello:
    output: "hello.txt"
    shell: "echo hello from a lean job > {output}"
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cut_off(tmp_path_factory):
    """An emulator whose jobs see a Snakemake-only Python and no package index."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    no_index = {
        "PIP_INDEX_URL": f"http://127.0.0.1:{closed_port()}/simple",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
    }
    patch = pytest.MonkeyPatch()
    for name, value in no_index.items():
        patch.setenv(name, value)
    try:
        with (
            S3Server(ACCESS_KEY, SECRET_KEY) as s3,
            Emulator(
                port=0,
                state_dir=tmp_path_factory.mktemp("lean-emulator"),
                cpus=2,
                memory=8,
                plain_images=("snakemake/snakemake:*",),
                pass_env=tuple(no_index),
            ) as emulator,
        ):
            yield emulator, s3
    finally:
        patch.undo()


def run_on_s3(emulator, s3, workdir, *extra: str):
    workdir.mkdir()
    (workdir / "Snakefile").write_text(SNAKEFILE)
    bucket = f"lean-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    before = {job["id"] for job in emulator.jobs()}
    args = [
        "--executor", "prominence",
        "--jobs", "1",
        "--default-storage-provider", "s3",
        "--default-storage-prefix", f"s3://{bucket}/run",
        "--storage-s3-endpoint-url", s3.endpoint_url,
        "--seconds-between-status-checks", "1",
        *extra,
    ]  # fmt: skip
    env = {"PROMINENCE_URL": emulator.url, "PROMINENCE_TOKEN": jwt_for("lean"), **CREDENTIALS_ENV}
    result = run_snakemake(args, cwd=workdir, env=env, timeout=300)
    jobs = [job for job in emulator.jobs() if job["id"] not in before]
    return result, bucket, jobs


def test_default_run_on_s3_needs_no_package_index(cut_off, tmp_path):
    emulator, s3 = cut_off
    result, bucket, jobs = run_on_s3(emulator, s3, tmp_path / "wf")
    assert result.returncode == 0, result.stderr[-4000:]
    assert s3.objects(bucket) == {"run/hello.txt": b"hello from a lean job\n"}  # zip removed
    assert "shipping" in result.stderr and "snakemake-storage-plugin-s3==" in result.stderr

    (job,) = jobs
    task = job["tasks"][0]
    assert "pip install" not in task["cmd"]
    assert task["env"][deployment.URL_ENV].startswith(s3.endpoint_url)
    assert ACCESS_KEY not in task["cmd"]  # the presigned URL is in the env, not the command
    shipped = emulator.job_dir(job["id"]) / "userhome" / deployment.PIP_TARGET
    for package in ("snakemake_storage_plugin_s3", "boto3", "botocore"):
        assert (shipped / package).is_dir(), package
    # Only what the run needs: not the fs plugin, nothing Snakemake itself brings.
    assert not (shipped / "snakemake_storage_plugin_fs").exists()
    assert not (shipped / "snakemake").exists() and not (shipped / "packaging").exists()
    stderr = (emulator.job_dir(job["id"]) / "job.0.err").read_text()
    assert "dependency conflicts" not in stderr, stderr[-2000:]
    assert "which is incompatible" not in stderr, stderr[-2000:]
    # The zip was fetched once, by the job, with a presigned GET.
    gets = [r for r in s3.gate.requests if "snakemake-prominence-packages." in r.path]
    assert [r.method for r in gets].count("GET") == 1, gets


@pytest.mark.parametrize("mode", ["install", "image"])
def test_the_jobs_really_are_cut_off(cut_off, tmp_path, mode):
    """Without the shipped zip the same job fails: no index, no plugin in the image."""
    emulator, s3 = cut_off
    result, _, jobs = run_on_s3(emulator, s3, tmp_path / "wf", "--prominence-storage-plugins", mode)
    assert result.returncode != 0
    (job,) = jobs
    assert job["execution"]["tasks"][0]["exitCode"] != 0
    stderr = (emulator.job_dir(job["id"]) / "job.0.err").read_text()
    if mode == "install":  # pip ran and found no index
        assert "No matching distribution found for snakemake-storage-plugin-s3" in stderr, stderr
    else:  # the image has no S3 plugin: its Snakemake does not even know the S3 settings
        assert "unrecognized arguments: --storage-s3-" in stderr, stderr[-2000:]
