"""Detached runs end to end: `prominence-snakemake submit` returns at once, the head job runs the
example workflow on the emulator with its job token while the user's short-lived token expires,
`status`/`logs --follow` watch it, and a head deleted from outside plus `cancel` leave nothing."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from snakemake_executor_plugin_prominence import detached
from snakemake_executor_plugin_prominence.cli import HEAD_FLAGS
from tests.emulator_helpers import wait_until
from tests.processes import BIN, EXAMPLE_RESULTS, copy_example, files_under, plugin_args

pytestmark = pytest.mark.e2e

ACTIVE = {"idle", "pending", "running"}


@pytest.fixture
def emu(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(
        port=0, cpus=6, memory=32, state_dir=tmp_path / "emu", kill_grace=15.0
    ) as emulator:
        emulator.set_token_lifetime(600)
        yield emulator


def cli(*args: str, cwd: Path, url: str, token: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "prominence-snakemake"), *args],
        cwd=cwd,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "PROMINENCE_URL": url, "PROMINENCE_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )


def submit(workdir: Path, storage: Path, url: str, token: str) -> tuple[str, int, float]:
    started = time.monotonic()
    result = cli("submit", *plugin_args(storage), cwd=workdir, url=url, token=token)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    found = re.search(r"Detached run (\w+): head job (\d+)\.", result.stdout)
    assert found, result.stdout
    assert f"prominence-snakemake logs {found.group(1)} --follow" in result.stdout
    return found.group(1), int(found.group(2)), took


def run_jobs(emu, run_id: str) -> list[dict]:
    return [j for j in emu.jobs() if (j.get("labels") or {}).get("snakemakerun") == run_id]


def test_a_detached_run_outlives_its_submitter_and_the_users_token(emu, tmp_path):
    local = copy_example(tmp_path / "local")
    assert subprocess.run([str(BIN / "snakemake"), "--cores", "2"], cwd=local).returncode == 0

    workdir = copy_example(tmp_path / "wf")
    storage = tmp_path / "storage"
    user_token = emu.login("dana")["access_token"]
    run_id, head_id, took = submit(workdir, storage, emu.url, user_token)
    print(f"submit returned in {took:.2f} s")
    emu.expire_tokens()  # the user's token dies; the head goes on with its job token
    assert cli("status", run_id, cwd=tmp_path, url=emu.url, token=user_token).returncode != 0

    token = emu.login("dana")["access_token"]  # later, the user logs in again to look
    follow_log = tmp_path / "follow.out"
    with follow_log.open("w") as out:
        follower = subprocess.Popen(
            [str(BIN / "prominence-snakemake"), "logs", run_id, "--follow", "--interval", "0.5"],
            env={
                "PATH": f"{BIN}:/usr/bin:/bin",
                "PROMINENCE_URL": emu.url,
                "PROMINENCE_TOKEN": token,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # progress lines arrive while the head still runs
    assert wait_until(lambda: "steps" in follow_log.read_text(), timeout=120)
    assert emu.job(head_id)["status"] == "running"
    status = cli("status", run_id, cwd=tmp_path, url=emu.url, token=token)
    assert f"Head job {head_id}: running" in status.stdout, status.stdout + status.stderr
    assert "Jobs of the run:" in status.stdout

    head = emu.wait(head_id, timeout=400)
    assert head["status"] == "completed", (emu.job_dir(head_id) / "job.0.err").read_text()[-3000:]
    assert follower.wait(timeout=30) == 0
    followed = follow_log.read_text()
    assert "steps (100%) done" in followed

    assert files_under(storage / "results") == files_under(local / "results")
    assert sorted(files_under(storage / "results")) == EXAMPLE_RESULTS
    children = [j for j in run_jobs(emu, run_id) if j["id"] != head_id]
    assert children and all(emu.owner(j["id"]) == "dana" for j in children)
    assert all(j["status"] == "completed" for j in children)

    status = cli("status", run_id, cwd=tmp_path, url=emu.url, token=token)
    assert f"Head job {head_id}: completed" in status.stdout
    assert f"{len(children)} completed" in status.stdout

    # the user's tokens appear in no stored description and no file the emulator wrote
    for secret in (user_token, token):
        assert all(secret not in repr(job) for job in emu.jobs())
        for path in (tmp_path / "emu").rglob("*"):
            if path.is_file() and path.stat().st_size < 5_000_000:
                assert secret.encode() not in path.read_bytes(), path
        assert secret not in followed


def test_a_head_deleted_from_outside_deletes_its_jobs_and_cancel_finds_none_left(emu, tmp_path):
    workdir = copy_example(tmp_path / "wf")
    token = emu.login("erin")["access_token"]
    run_id, head_id, _ = submit(workdir, tmp_path / "storage", emu.url, token)
    assert wait_until(
        lambda: any(j["id"] != head_id and j["status"] == "running" for j in run_jobs(emu, run_id)),
        timeout=120,
    )
    emu.expire_tokens()
    token = emu.login("erin")["access_token"]
    # deleted from outside: the head gets SIGTERM and deletes its own jobs within the grace
    response = requests.delete(
        f"{emu.url}/jobs/{head_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert wait_until(
        lambda: not any(j["status"] in ACTIVE for j in run_jobs(emu, run_id)), timeout=30
    ), [(j["id"], j["status"]) for j in run_jobs(emu, run_id)]
    # the head deleted the job(s) it had running (not merely left them to finish)
    assert any(j["status"] == "deleted" for j in run_jobs(emu, run_id) if j["id"] != head_id)
    err = (emu.job_dir(head_id) / "job.0.err").read_text()
    assert token not in err
    again = cli("cancel", run_id, cwd=tmp_path, url=emu.url, token=token)
    assert "Deleted 0 job(s)" in again.stdout
    assert emu.job(head_id)["status"] == "deleted"


def test_sources_carry_the_workflow_but_not_its_state(tmp_path):
    workdir = copy_example(tmp_path / "wf")
    (workdir / ".snakemake").mkdir()
    (workdir / ".snakemake" / "state").write_text("x")
    with tarfile.open(fileobj=io.BytesIO(detached.pack_sources(workdir))) as tar:
        names = tar.getnames()
    assert "Snakefile" in names and not any(n.startswith(".snakemake") for n in names)
    command = detached.head_command("r1", ["--jobs", "2"], ["--prominence-runtime", "docker"])
    assert "PROMINENCE_SNAKEMAKE_RUN_ID=r1" in command and "TOKEN" not in command


def test_submit_help_lists_the_head_flags():
    result = subprocess.run(
        [str(BIN / "prominence-snakemake"), "submit", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for flag in HEAD_FLAGS:
        assert flag in result.stdout


def test_the_emulator_job_token_is_the_real_servers_jwt_and_outlives_user_tokens():
    from snakemake_executor_plugin_prominence.emulator.auth import Authenticator, jwt_claims

    auth = Authenticator()
    before = time.time()
    token = auth.issue_job_token("dana", walltime_minutes=60)
    claims = jwt_claims(token)
    assert claims["username"] == "dana" and claims["groups"] and claims["job"]
    expected = before + 10 * 24 * 3600 + 2 * 60 * 60 * 3
    assert expected - 5 <= claims["exp"] <= expected + 5
    assert token.split(".")[0] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256",...}
    auth.idp.expire_all()  # the user's access tokens expire; the job token does not
    assert auth.username(f"Bearer {token}") == "dana"
