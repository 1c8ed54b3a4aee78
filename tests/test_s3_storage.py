"""The production data path end to end: S3 as the default storage provider.

A real S3-compatible HTTP server runs on loopback (moto in server mode, behind a gate that
checks every request's SigV4 signature against one key pair, see ``tests/s3server.py``), and
Snakemake runs through the plugin against the emulator, which really executes every job's
``python -m snakemake`` in a fresh scratch directory with a minimal environment plus the task
``env``. Jobs therefore reach the bucket only with the credentials the plugin gave them.

- The example workflow, run as a user runs it (credentials in ``SNAKEMAKE_STORAGE_S3_*``
  environment variables), leaves in the bucket exactly what a local run leaves on disk.
- The credentials are in every job's task ``env`` and nowhere else: not in ``cmd``, the name
  or the labels, not in Snakemake's output, not under ``.snakemake/``, not in the bucket.
- Snakemake's own executor conformance harness passes with S3 configured through the API's
  storage settings objects (no environment variables).
"""

from __future__ import annotations

import json
import os
import shlex
import uuid
from types import SimpleNamespace

import botocore.exceptions
import pytest
from snakemake_interface_common.plugin_registry.plugin import TaggedSettings

from tests import test_conformance
from tests.emulator_helpers import jwt_for
from tests.processes import EXAMPLE_RESULTS, copy_example, files_under, run_snakemake
from tests.s3server import S3Server

pytestmark = pytest.mark.e2e

# Distinctive values, so that a leak anywhere is found by a plain substring search.
ACCESS_KEY = "AKIAPROMTEST7Q2X"
SECRET_KEY = "q7Zr2PROMS3SECRETMARKER9dKw4LxVb8Nf3Hj6T"
assert len(SECRET_KEY) == 40
CREDENTIALS_ENV = {
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": ACCESS_KEY,
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET_KEY,
}


@pytest.fixture(scope="module")
def s3():
    with S3Server(ACCESS_KEY, SECRET_KEY) as server:
        yield server


def new_bucket(s3: S3Server, what: str) -> str:
    name = f"{what}-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


def assert_credentials_only_in_env(job: dict, endpoint_url: str) -> None:
    """The job carries the S3 settings in its task env, and the keys nowhere else."""
    (task,) = job["tasks"]
    assert task["env"]["SNAKEMAKE_STORAGE_S3_ACCESS_KEY"] == ACCESS_KEY, job["id"]
    assert task["env"]["SNAKEMAKE_STORAGE_S3_SECRET_KEY"] == SECRET_KEY, job["id"]
    assert task["env"]["SNAKEMAKE_STORAGE_S3_ENDPOINT_URL"] == endpoint_url, job["id"]
    *shell, script = shlex.split(task["cmd"])
    assert shell == ["/bin/sh", "-c"], task["cmd"]
    words = shlex.split(script)
    assert "--default-storage-provider" in words, task["cmd"]
    assert words[words.index("--default-storage-provider") + 1] == "s3", task["cmd"]
    for key in (SECRET_KEY, ACCESS_KEY):
        assert key not in task["cmd"], job["id"]
        assert key not in job["name"], job["id"]
        assert key not in json.dumps(job["labels"]), job["id"]


def test_the_server_refuses_wrong_credentials(s3):
    """The gate is real: only the exact key pair gets in, so a job that writes had it."""
    bucket = new_bucket(s3, "gate")
    s3.client().put_object(Bucket=bucket, Key="x", Body=b"ok")
    for access_key, secret_key, code in (
        (ACCESS_KEY, SECRET_KEY[:-1] + "X", "SignatureDoesNotMatch"),
        ("AKIAPROMOTHERKEY1", SECRET_KEY, "InvalidAccessKeyId"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.client(access_key, secret_key).get_object(Bucket=bucket, Key="x")
        assert refused.value.response["Error"]["Code"] == code
    assert s3.objects(bucket) == {"x": b"ok"}


# --- the example workflow, run as a user runs it -------------------------------------------


@pytest.fixture(scope="module")
def example_run(s3, emulator, tmp_path_factory):
    """One run of the example workflow on S3 through the plugin, and a local run to compare
    it with; the tests below look at the S3 run from different sides."""
    root = tmp_path_factory.mktemp("s3-example")
    local = copy_example(root / "local")
    remote = copy_example(root / "remote")
    bucket = new_bucket(s3, "example")
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    jobs_before = {job["id"] for job in emulator.jobs()}
    requests_before = len(s3.gate.requests)
    args = [
        "--executor", "prominence",
        "--jobs", "4",
        "--prominence-storage-plugins", "image",
        "--default-storage-provider", "s3",
        "--default-storage-prefix", f"s3://{bucket}/{prefix}",
        "--storage-s3-endpoint-url", s3.endpoint_url,
        "--seconds-between-status-checks", "1",
        "--verbose",
        # Successful jobs' stdout/stderr too go to .snakemake/prominence_logs/, so the leak
        # check below also covers what the remote Snakemake printed.
        "--prominence-keep-logs",
    ]  # fmt: skip
    env = {
        "PROMINENCE_URL": emulator.url,
        "PROMINENCE_TOKEN": jwt_for("s3-test"),
        **CREDENTIALS_ENV,
    }
    local_result = run_snakemake(["--cores", "2"], cwd=local)
    assert local_result.returncode == 0, local_result.stderr[-3000:]
    result = run_snakemake(args, cwd=remote, env=env)
    assert result.returncode == 0, result.stderr[-5000:]
    return SimpleNamespace(
        result=result,
        local=local,
        remote=remote,
        bucket=bucket,
        prefix=prefix,
        jobs=[job for job in emulator.jobs() if job["id"] not in jobs_before],
        requests=s3.gate.requests[requests_before:],
    )


def test_example_workflow_on_s3_matches_a_local_run(s3, example_run):
    stored = s3.objects(example_run.bucket, f"{example_run.prefix}/")
    expected = files_under(example_run.local / "results")
    assert sorted(expected) == EXAMPLE_RESULTS
    results = {k[len("results/") :]: v for k, v in stored.items() if k.startswith("results/")}
    assert results == expected  # byte for byte
    logs = {k[len("logs/") :]: v for k, v in stored.items() if k.startswith("logs/")}
    assert sorted(logs) == sorted(files_under(example_run.local / "logs"))
    assert logs["count/alpha.log"]  # a rule's own log, written in the job, uploaded by it
    # Besides results and logs, the bucket held the workflow sources for the jobs, which
    # Snakemake uploaded first and removed at the end.
    assert [k for k in stored if not k.startswith(("results/", "logs/"))] == []
    base = f"/{example_run.bucket}/{example_run.prefix}"
    sources = {r.path for r in example_run.requests if "/snakemake-workflow-sources." in r.path}
    assert len(sources) == 1, sources
    (sources,) = sources
    assert sources.startswith(f"{base}/") and sources.endswith(".tar.xz"), sources
    methods = [r.method for r in example_run.requests if r.path == sources]
    assert methods.count("PUT") == 1 and "DELETE" in methods, methods
    assert methods.count("GET") >= len(example_run.jobs), methods  # every job fetched them
    # Nothing of the outputs is on the submitting machine's disk: S3 was the only way.
    assert not (example_run.remote / "results").exists()

    # Five PROMINENCE jobs (three per-sample group jobs, merge, report), all completed, and
    # their uploads reached the server signed with the user's key pair (anything else would
    # have been refused, and nothing was).
    assert len(example_run.jobs) == 5
    assert all(job["status"] == "completed" for job in example_run.jobs)
    assert [r for r in example_run.requests if r.error] == []
    puts = {r.path for r in example_run.requests if r.method == "PUT"}
    assert {f"{base}/results/report.txt", f"{base}/logs/merge.log"} <= puts
    assert all(r.access_key == ACCESS_KEY for r in example_run.requests)


def test_s3_credentials_travel_only_in_the_task_env(s3, example_run):
    for job in example_run.jobs:
        assert_credentials_only_in_env(job, s3.endpoint_url)


def test_s3_credentials_leak_nowhere(s3, example_run):
    result = example_run.result
    assert "PROMINENCE job" in result.stderr  # --verbose: the job ids are printed
    for text, where in ((result.stdout, "stdout"), (result.stderr, "stderr")):
        assert SECRET_KEY not in text, where
        assert ACCESS_KEY not in text, where

    written = [p for p in (example_run.remote / ".snakemake").rglob("*") if p.is_file()]
    assert any("prominence_logs" in str(p) for p in written)  # the jobs' own output too
    assert any(p.parent.name == "log" for p in written)  # Snakemake's run log
    for path in written:
        data = path.read_bytes()
        assert SECRET_KEY.encode() not in data, path
        assert ACCESS_KEY.encode() not in data, path

    # Nor in anything left in the bucket (results and the rules' logs).
    for key, data in s3.objects(example_run.bucket).items():
        assert SECRET_KEY.encode() not in data, key
        assert ACCESS_KEY.encode() not in data, key


# --- Snakemake's conformance harness with S3, through the API ------------------------------


class TestConformanceS3(test_conformance.TestConformance):
    """``simple`` and ``groups`` with S3 settings given as the API's settings objects: the
    credentials are in no environment variable, only in ``TaggedSettings``."""

    __test__ = True

    @pytest.fixture(autouse=True)
    def _use_emulator(self, emulator, s3):  # replaces the base class's fs set-up
        self.emulator = emulator
        self.s3 = s3
        self.bucket = new_bucket(s3, "conformance")
        self.prefix = f"conformance-{uuid.uuid4().hex[:8]}"

    def get_default_storage_provider(self) -> str:
        return "s3"

    def get_default_storage_prefix(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def get_default_storage_provider_settings(self):
        # As snakemake.common.tests.TestWorkflowsMinioPlayStorageBase builds them.
        from snakemake_storage_plugin_s3 import StorageProviderSettings

        tagged = TaggedSettings()
        tagged.register_settings(
            StorageProviderSettings(
                endpoint_url=self.s3.endpoint_url,
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
            )
        )
        return {"s3": tagged}

    def run_workflow(self, test_name, tmp_path, deployment_method=frozenset()):
        assert not [name for name in os.environ if name.startswith("SNAKEMAKE_STORAGE_S3_")]
        jobs_before = {job["id"] for job in self.emulator.jobs()}
        requests_before = len(self.s3.gate.requests)
        # Snakemake's own run_workflow (the base class's override checks a local directory).
        super(test_conformance.TestConformance, self).run_workflow(
            test_name, tmp_path, deployment_method
        )
        stored = self.s3.objects(self.bucket, f"{self.prefix}/")
        for output in test_conformance.EXPECTED_OUTPUTS[test_name]:
            assert output in stored, (output, sorted(stored))
        ours = [job for job in self.emulator.jobs() if job["id"] not in jobs_before]
        assert ours, "no job reached the emulator"
        assert all(job["status"] == "completed" for job in ours), [j["status"] for j in ours]
        for job in ours:
            assert_credentials_only_in_env(job, self.s3.endpoint_url)
        requests = self.s3.gate.requests[requests_before:]
        assert [r for r in requests if r.error] == []
        assert {r.method for r in requests} >= {"PUT", "GET"}
