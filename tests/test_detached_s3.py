"""A detached run with S3 as the default storage (moto behind a SigV4 gate, see
``tests/s3server.py``): the sources are too large to travel inline, so they go into the run's
folder in the bucket and the head fetches them by a presigned URL; the results equal a local
run; the head's Snakemake log lands in the bucket; neither the user's token nor the S3 keys
appear where they must not."""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid

import pytest

from snakemake_executor_plugin_prominence.detached import headjob
from tests.emulator_helpers import wait_until
from tests.processes import BIN, EXAMPLE_RESULTS, copy_example, files_under
from tests.s3server import S3Server
from tests.test_detached import ACTIVE, assert_secret_nowhere, children, cli, emu, submit
from tests.test_s3_storage import ACCESS_KEY, CREDENTIALS_ENV, SECRET_KEY

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with tests/test_detached.py


def test_a_detached_run_on_s3_with_large_sources(emu, tmp_path):
    local = copy_example(tmp_path / "local")
    assert subprocess.run([str(BIN / "snakemake"), "--cores", "2"], cwd=local).returncode == 0
    workdir = copy_example(tmp_path / "wf")
    (workdir / "data").mkdir()
    (workdir / "data" / "noise.bin").write_bytes(os.urandom(headjob.MAX_INLINE_SOURCES_BYTES))

    with S3Server(ACCESS_KEY, SECRET_KEY) as s3:
        bucket = f"detached-{uuid.uuid4().hex[:12]}"
        s3.client().create_bucket(Bucket=bucket)
        args = [
            "--jobs", "4",
            "--prominence-storage-plugins", "image",
            "--default-storage-provider", "s3",
            "--default-storage-prefix", f"s3://{bucket}/work",
            "--storage-s3-endpoint-url", s3.endpoint_url,
            "--seconds-between-status-checks", "1",
        ]  # fmt: skip
        token = emu.login("hana")["access_token"]
        run_id, head_id, _ = submit(workdir, args, emu.url, token, env=CREDENTIALS_ENV)
        assert emu.job(head_id)["status"] in ACTIVE  # submit returned while the head runs

        # the sources went to the run's folder, not into the description
        folder = f"work/.prominence-runs/{run_id}/"
        stored = s3.objects(bucket, folder)
        assert list(stored) == ["sources.tar.gz"]
        assert len(stored["sources.tar.gz"]) > headjob.MAX_INLINE_SOURCES_BYTES
        head = emu.job(head_id)
        (task,) = head["tasks"]
        assert "inputs" not in head
        assert "X-Amz-Signature=" in task["env"][headjob.SOURCES_URL_ENV]
        assert task["env"][headjob.RUN_FOLDER_ENV] == f"s3://{bucket}/{folder}"
        assert task["env"]["SNAKEMAKE_STORAGE_S3_SECRET_KEY"] == SECRET_KEY
        for secret in (SECRET_KEY, ACCESS_KEY, token):
            assert secret not in task["cmd"] and secret not in repr(head["labels"])

        # status shows the run's jobs as they go
        assert wait_until(lambda: children(emu, run_id, head_id), timeout=120)
        status = cli("status", run_id, cwd=tmp_path, url=emu.url, token=token)
        assert f"Head job {head_id}: running" in status.stdout, status.stdout + status.stderr
        assert "Jobs of the run: none yet" not in status.stdout

        head = emu.wait(head_id, timeout=400)
        err = (emu.job_dir(head_id) / "job.0.err").read_text()
        assert head["status"] == "completed", err[-3000:]
        assert head["execution"]["tasks"][0]["exitCode"] == 0, err[-3000:]

        results = s3.objects(bucket, "work/results/")
        assert results == files_under(local / "results")
        assert sorted(results) == EXAMPLE_RESULTS
        # the head's Snakemake log and its stderr are in the run's folder
        copied = s3.objects(bucket, folder)
        logs = [k for k in copied if k.startswith("log/") and k.endswith(".snakemake.log")]
        assert len(logs) == 1, sorted(copied)
        assert b"steps (100%) done" in copied[logs[0]]
        assert b"steps (100%) done" in copied["log/head.stderr.log"]
        status = cli("status", run_id, cwd=tmp_path, url=emu.url, token=token)
        assert "Jobs of the run: 5 completed" in status.stdout, status.stdout
        assert f"Log and report: s3://{bucket}/{folder}\n" in status.stdout
        printed = cli("logs", run_id, cwd=tmp_path, url=emu.url, token=token)
        assert "steps (100%) done" in printed.stderr
        assert f"log and report: s3://{bucket}/{folder}" in printed.stderr

        # every S3 request was signed with the user's key pair (the presigned GET included)
        assert not s3.gate.refused()
        # the token is nowhere in descriptions, emulator files or the bucket; the S3 keys
        # are in no log the head copied
        bucket_dir = tmp_path / "bucket"
        for key, data in s3.objects(bucket).items():
            (bucket_dir / key).parent.mkdir(parents=True, exist_ok=True)
            (bucket_dir / key).write_bytes(data)
        assert_secret_nowhere(token, emu, tmp_path / "emu", bucket_dir)
        for key in [k for k in copied if k.startswith("log/")]:
            assert SECRET_KEY.encode() not in copied[key] and ACCESS_KEY.encode() not in copied[key]
        assert all(shlex.quote(SECRET_KEY) not in j["tasks"][0]["cmd"] for j in emu.jobs())
