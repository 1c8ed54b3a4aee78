"""Detached runs end to end with the ``fs`` storage provider: `prominence-snakemake submit`
returns at once, the head job runs a workflow on the emulator with its job token while the
user's short-lived token expires, `status`/`logs --follow` watch it, a failed run's log lands in
storage and its re-submission resumes, a git-only file reaches the worker jobs, and a head
deleted from outside, `cancel` in the middle of a run and `list` leave and show what they
should. (S3: tests/test_detached_s3.py.)"""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from snakemake_executor_plugin_prominence.detached import head as head_process
from snakemake_executor_plugin_prominence.detached import headjob, runstore, views
from snakemake_executor_plugin_prominence.detached.cli import HEAD_FLAGS
from snakemake_executor_plugin_prominence.run import runinfo
from tests.emulator_helpers import wait_until
from tests.processes import BIN, EXAMPLE_RESULTS, copy_example, files_under, plugin_args

pytestmark = pytest.mark.e2e

ACTIVE = {"idle", "pending", "running"}
BANNER = "k-mer pipeline (detached)\n"


@pytest.fixture
def emu(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(
        port=0, cpus=6, memory=32, state_dir=tmp_path / "emu", kill_grace=15.0
    ) as emulator:
        emulator.set_token_lifetime(600)
        yield emulator


def cli(
    *args: str, cwd: Path, url: str, token: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "prominence-snakemake"), *args],
        cwd=cwd,
        env={
            "PATH": f"{BIN}:/usr/bin:/bin",
            "PROMINENCE_URL": url,
            "PROMINENCE_TOKEN": token,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def submit(
    workdir: Path,
    storage_args: list[str],
    url: str,
    token: str,
    *extra: str,
    env: dict[str, str] | None = None,
) -> tuple[str, int, float]:
    started = time.monotonic()
    result = cli("submit", *storage_args, *extra, cwd=workdir, url=url, token=token, env=env)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    found = re.search(r"Detached run (\w+): head job (\d+)\.", result.stdout)
    assert found, result.stdout
    for command in ("status", "logs", "cancel"):
        assert f"prominence-snakemake {command} {found.group(1)}" in result.stdout
    assert "prominence-snakemake list" in result.stdout
    print(f"submit returned in {took:.2f} s")
    return found.group(1), int(found.group(2)), took


def run_jobs(emu, run_id: str) -> list[dict]:
    return [j for j in emu.jobs() if (j.get("labels") or {}).get("snakemakerun") == run_id]


def children(emu, run_id: str, head_id: int) -> list[dict]:
    return [j for j in run_jobs(emu, run_id) if j["id"] != head_id]


def git_workflow(destination: Path) -> Path:
    """The example workflow as a git checkout whose report rule runs a shell command that
    reads ``tools/banner.txt``: a file only git tracks (no rule names it), and fails when
    the config says ``fail_report=1``."""
    workdir = copy_example(destination)
    (workdir / "tools").mkdir()
    (workdir / "tools" / "banner.txt").write_text(BANNER)
    snakefile = workdir / "Snakefile"
    text = snakefile.read_text()
    old = "\"(echo 'k-mer report'; "
    assert old in text
    text = text.replace(
        old, "\"test {config[fail_report]} = 0; (cat tools/banner.txt; echo 'k-mer report'; "
    )
    text = text.replace(
        'configfile: "config.yaml"\n',
        'configfile: "config.yaml"\nconfig.setdefault("fail_report", 0)\n',
    )
    snakefile.write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "workflow"]):
        subprocess.run([*git, *step], cwd=workdir, check=True, capture_output=True)
    return workdir


def assert_secret_nowhere(secret: str, emu, *roots: Path) -> None:
    """Not in any stored description, nor in any file under the emulator's state or
    ``roots`` (storage, copied logs)."""
    assert all(secret not in repr(job) for job in emu.jobs())
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 5_000_000:
                assert secret.encode() not in path.read_bytes(), path


def test_a_detached_run_outlives_its_submitter_fails_keeps_its_log_and_resumes(emu, tmp_path):
    local = git_workflow(tmp_path / "local")
    assert subprocess.run([str(BIN / "snakemake"), "--cores", "2"], cwd=local).returncode == 0
    assert (local / "results" / "report.txt").read_text().startswith(BANNER)

    workdir = git_workflow(tmp_path / "wf")
    storage = tmp_path / "storage"
    user_token = emu.login("dana")["access_token"]
    # first run: the report rule fails
    run_id, head_id, _ = submit(
        workdir, plugin_args(storage), emu.url, user_token, "--config", "fail_report=1"
    )
    assert emu.job(head_id)["status"] in ACTIVE  # submit returned while the head still runs
    assert "inputs" in emu.job(head_id)  # small sources travel inline
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
    assert re.search(r"Head walltime: \d+ of 10080 min used", status.stdout), status.stdout
    assert "Jobs of the run:" in status.stdout
    folder = f"{storage}/.prominence-runs/{run_id}/"
    assert f"Log and report: {folder} (copied when the head ends)" in status.stdout

    head = emu.wait(head_id, timeout=400)
    assert head["status"] == "completed"
    assert head["execution"]["tasks"][0]["exitCode"] != 0  # Snakemake failed: the report
    assert follower.wait(timeout=30) == 0
    followed = follow_log.read_text()
    assert "Error in rule report" in followed
    assert f"log and report: {folder}" in followed  # said when the head ended

    # the failed run's Snakemake log and the head's stderr outlive the head, in storage
    copied = files_under(Path(folder))
    snakemake_logs = [k for k in copied if re.fullmatch(r"log/.*\.snakemake\.log", k)]
    assert len(snakemake_logs) == 1, sorted(copied)
    assert b"Error in rule report" in copied[snakemake_logs[0]]
    assert b"Error in rule report" in copied["log/head.stderr.log"]
    first = children(emu, run_id, head_id)
    assert sorted(j["labels"]["snakemakerule"] for j in first) == [
        "merge", *["per_sample_count_simulate"] * 3, "report"
    ]  # fmt: skip
    assert all(emu.owner(j["id"]) == "dana" for j in first)
    # the head and its jobs carry the key of the directory submit ran in, not of the head's
    # scratch directory: a re-submission finds (and adopts) what a dead head left
    key = runinfo.workdir_key(os.path.realpath(workdir))
    assert {j["labels"]["snakemakewd"] for j in [*first, emu.job(head_id)]} == {key}

    # re-submitted: what is already in storage is not recomputed; only the report runs, and
    # its shell command finds tools/banner.txt, which only git tracked
    run2, head2, _ = submit(workdir, plugin_args(storage), emu.url, token)
    head = emu.wait(head2, timeout=300)
    err = (emu.job_dir(head2) / "job.0.err").read_text()
    assert head["status"] == "completed" and head["execution"]["tasks"][0]["exitCode"] == 0, err
    second = children(emu, run2, head2)
    assert [j["labels"]["snakemakerule"] for j in second] == ["report"], err[-3000:]
    assert second[0]["labels"]["snakemakewd"] == key
    assert files_under(storage / "results") == files_under(local / "results")
    assert sorted(files_under(storage / "results")) == EXAMPLE_RESULTS

    status = cli("status", run2, cwd=tmp_path, url=emu.url, token=token)
    assert f"Head job {head2}: completed" in status.stdout
    assert "Jobs of the run: 1 completed" in status.stdout
    assert f"Log and report: {storage}/.prominence-runs/{run2}/\n" in status.stdout
    assert "Head walltime" not in status.stdout  # only while it runs

    # the walltime warning, on this head's real description as if 90 % had passed
    started = head["events"]["startTime"]
    lines = views.walltime_lines({**head, "status": "running"}, started + 0.9 * 10080 * 60)
    assert "90%" in lines[0] and "SIGKILL" in lines[1]

    # the user's tokens appear in no stored description, no file the emulator wrote, no
    # copied log and not in what `logs` printed
    for secret in (user_token, token):
        assert_secret_nowhere(secret, emu, tmp_path / "emu", storage)
        assert secret not in followed


def test_a_deleted_head_cancel_in_the_middle_and_list(emu, tmp_path):
    storage = tmp_path / "storage"
    workdir = copy_example(tmp_path / "wf")
    token = emu.login("erin")["access_token"]
    run_id, head_id, _ = submit(workdir, plugin_args(storage), emu.url, token)
    assert wait_until(
        lambda: any(j["status"] == "running" for j in children(emu, run_id, head_id)),
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
    assert any(j["status"] == "deleted" for j in children(emu, run_id, head_id))
    err = (emu.job_dir(head_id) / "job.0.err").read_text()
    assert token not in err
    again = cli("cancel", run_id, cwd=tmp_path, url=emu.url, token=token)
    assert "Deleted 0 job(s)" in again.stdout
    assert emu.job(head_id)["status"] == "deleted"
    # even a deletion leaves the head time to copy its log
    head_log = storage / ".prominence-runs" / run_id / "log" / "head.stderr.log"
    assert wait_until(head_log.is_file, timeout=30)

    # a second run, cancelled while its jobs run
    other = copy_example(tmp_path / "other-wf")
    run2, head2, _ = submit(other, plugin_args(storage), emu.url, token)
    assert wait_until(
        lambda: any(j["status"] == "running" for j in children(emu, run2, head2)), timeout=120
    )
    active_before = [j["id"] for j in run_jobs(emu, run2) if j["status"] in ACTIVE]
    cancelled = cli("cancel", run2, cwd=tmp_path, url=emu.url, token=token)
    found = re.search(r"Deleted (\d+) job\(s\) of run " + run2, cancelled.stdout)
    assert found, cancelled.stdout + cancelled.stderr
    assert int(found.group(1)) >= 2 and head2 in active_before  # the head and its job(s)
    assert wait_until(
        lambda: not any(j["status"] in ACTIVE for j in run_jobs(emu, run2)), timeout=30
    ), [(j["id"], j["status"]) for j in run_jobs(emu, run2)]
    assert emu.job(head2)["status"] == "deleted"
    assert any(j["status"] == "deleted" for j in children(emu, run2, head2))

    listed = cli("list", cwd=tmp_path, url=emu.url, token=token)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUN", "HEAD", "STATE"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [run2, str(head2), "deleted"],
        [run_id, str(head_id), "deleted"],
    ], listed.stdout
    assert "other-wf" in lines[1] and " wf " in lines[2]
    other_user = cli("list", cwd=tmp_path, url=emu.url, token=emu.login("frank")["access_token"])
    assert other_user.stdout.strip() == "No detached runs."


def test_submit_without_a_default_storage_prefix_is_refused_before_anything_is_submitted(
    emu, tmp_path
):
    workdir = copy_example(tmp_path / "wf")
    token = emu.login("gil")["access_token"]
    args = ["--default-storage-provider", "fs", "--prominence-storage-plugins", "image"]
    result = cli("submit", *args, cwd=workdir, url=emu.url, token=token)
    assert result.returncode == 2
    assert "needs --default-storage-prefix" in result.stderr
    assert emu.jobs() == []
    # sources too large to travel inline are stored first, and removed when the server then
    # refuses the head (here for its runtime)
    (workdir / "noise.bin").write_bytes(os.urandom(headjob.MAX_INLINE_SOURCES_BYTES))
    storage = tmp_path / "storage"
    args = [*plugin_args(storage), "--prominence-runtime", "docker"]
    result = cli("submit", *args, cwd=workdir, url=emu.url, token=token)
    assert result.returncode == 1
    assert "the container runtime must be either udocker or singularity" in result.stderr
    assert emu.jobs() == [] and files_under(storage) == {}
    assert (storage / ".prominence-runs").is_dir()  # they had been stored


def test_list_rows_count_active_jobs_per_run_newest_first():
    heads = [
        {"id": 1, "status": "completed", "events": {"createTime": 100}, "labels": {
            "snakemakerun": "a", "snakemakehead": "1", "snakemakeworkflow": "wf1"}},
        {"id": 7, "status": "running", "events": {"createTime": 200}, "labels": {
            "snakemakerun": "b", "snakemakehead": "1", "snakemakeworkflow": "wf2"}},
    ]  # fmt: skip
    active = [
        {"id": 7, "status": "running", "labels": {"snakemakerun": "b", "snakemakehead": "1"}},
        {"id": 8, "status": "running", "labels": {"snakemakerun": "b"}},
        {"id": 9, "status": "idle", "labels": {"snakemakerun": "b"}},
    ]
    rows = views.run_rows(heads, active)
    assert [(r.run_id, r.active_jobs) for r in rows] == [("b", "1 idle, 1 running"), ("a", "-")]
    table = views.format_rows(rows).splitlines()
    assert table[1].split() == ["b", "7", "running", "1970-01-01", "00:03:20", "wf2", "1",
                                "idle,", "1", "running"]  # fmt: skip
    assert table[0].index("HEAD") == table[1].index("7")  # columns line up


def test_sources_carry_the_workflow_and_the_plugin_but_not_its_state(tmp_path):
    workdir = copy_example(tmp_path / "wf")
    (workdir / ".snakemake").mkdir()
    (workdir / ".snakemake" / "state").write_text("x")
    with tarfile.open(fileobj=io.BytesIO(headjob.pack_sources(workdir))) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "head", filter="data")
    assert "Snakefile" in names and not any(n.startswith(".snakemake") for n in names)
    plugin = [n for n in names if n.startswith(headjob.HEAD_SITE)]
    assert f"{headjob.HEAD_SITE}/snakemake_executor_plugin_prominence/detached/head.py" in plugin
    assert not any("emulator" in n or "__pycache__" in n for n in plugin)
    command = headjob.head_command("r1", ["--jobs", "2"], ["--prominence-runtime", "docker"])
    assert "PROMINENCE_SNAKEMAKE_RUN_ID=r1" in command and "TOKEN" not in command
    # the head runs the shipped copy of the plugin, at the local version, whatever its image has
    site = tmp_path / "head" / headjob.HEAD_SITE
    probe = (
        "import importlib.metadata as m, snakemake_executor_plugin_prominence as p, "
        "snakemake_executor_plugin_prominence.detached.head; "
        "print(p.__file__); print(m.version('snakemake-executor-plugin-prominence'))"
    )
    result = subprocess.run(
        [str(BIN / "python"), "-c", probe],
        env={"PYTHONPATH": str(site)},
        cwd=tmp_path,  # not the repository's root, whose package would come first
        capture_output=True,
        text=True,
        check=True,
    )
    where, version = result.stdout.split()
    assert Path(where).is_relative_to(site)
    assert version == importlib.metadata.version("snakemake-executor-plugin-prominence")


def test_the_head_copies_its_logs_and_the_run_report_with_the_storage_plugin(tmp_path, monkeypatch):
    """What ``head`` copies when it ends, through the real ``fs`` storage plugin built from
    Snakemake arguments as ``submit`` and the head build it."""
    workdir = tmp_path / "head"
    (workdir / ".snakemake" / "log").mkdir(parents=True)
    (workdir / ".snakemake" / "log" / "2026-01-01T000000.snakemake.log").write_text("done")
    reports = workdir / ".snakemake" / "prominence_reports"
    (reports / "r1" / "jobs").mkdir(parents=True)
    (reports / "r1" / "report.html").write_text("<html>")
    (reports / "r1" / "jobs" / "jobs.tsv").write_text("id\tstate")
    (reports / "r0").mkdir()
    (reports / "r0" / "report.html").write_text("an earlier run's")
    (workdir / runstore.HEAD_LOG).parent.mkdir(parents=True)
    (workdir / runstore.HEAD_LOG).write_text("stderr")
    monkeypatch.chdir(workdir)
    storage = tmp_path / "storage"
    store = runstore.from_snakemake_args(
        ["--default-storage-provider", "fs", "--default-storage-prefix", str(storage)]
    )
    assert store.folder("r1") == f"{storage}/.prominence-runs/r1/"
    head_process.copy_run_files(store, workdir, "r1")
    assert files_under(storage / ".prominence-runs" / "r1") == {
        "log/2026-01-01T000000.snakemake.log": b"done",
        "log/head.stderr.log": b"stderr",
        "report/report.html": b"<html>",
        "report/jobs/jobs.tsv": b"id\tstate",
    }
    # A report written elsewhere (--prominence-report-dir, forwarded to the head) is the one
    # copied; with the report off there is none to copy.
    (workdir / "elsewhere" / "r2").mkdir(parents=True)
    (workdir / "elsewhere" / "r2" / "rules.tsv").write_text("rule")
    head_process.copy_run_files(store, workdir, "r2", ["--prominence-report-dir", "elsewhere"])
    assert sorted(files_under(storage / ".prominence-runs" / "r2")) == [
        "log/2026-01-01T000000.snakemake.log", "log/head.stderr.log", "report/rules.tsv",
    ]  # fmt: skip
    assert head_process.report_dir_of(["--prominence-report-dir", "none"], "r1") is None
    with pytest.raises(runstore.RunStoreError, match="default storage provider"):
        runstore.from_snakemake_args(["--jobs", "2"])


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
    # create_job_token.py's claims; no groups or e-mail known for a user without such claims
    assert set(claims) == {"username", "groups", "job", "email", "exp"}
    assert claims["username"] == "dana" and len(claims["job"]) == 36  # the job's uuid
    expected = before + 10 * 24 * 3600 + 2 * 60 * 60 * 3
    assert expected - 5 <= claims["exp"] <= expected + 5
    assert token.split(".")[0] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256",...}
    auth.idp.expire_all()  # the user's access tokens expire; the job token does not
    assert auth.username(f"Bearer {token}") == "dana"
