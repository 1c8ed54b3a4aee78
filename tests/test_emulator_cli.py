"""``python -m snakemake_executor_plugin_prominence.emulator`` as a real process."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.emulator_helpers import TOKEN, Api, job, jwt_for, process_gone, wait_until

READY = re.compile(r"^PROMINENCE emulator listening on (http://127\.0\.0\.1:\d+/api/v1)\n$")
ROOT = Path(__file__).resolve().parents[1]


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    with open(tmp_path / "stderr.log", "w") as stderr:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "snakemake_executor_plugin_prominence.emulator",
             "--port", "0", "--state-dir", str(tmp_path / "state"), *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        )  # fmt: skip
    line = process.stdout.readline()
    match = READY.match(line)
    assert match, f"unexpected first line {line!r}: {(tmp_path / 'stderr.log').read_text()}"
    return process, match.group(1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    process.stdout.close()


def test_prints_one_line_and_stops_its_jobs_on_sigterm(tmp_path):
    process, url = start(tmp_path, "--cpus", "1", "--memory", "1")
    try:
        assert requests.get(url + "/health", timeout=10).status_code == 204
        api = Api(url)
        code = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
        job_id = api.submit(job(shlex.join(["python", "-c", code])))
        assert wait_until(lambda: api.get(f"/jobs/{job_id}/stdout").text.strip(), timeout=10)
        pid = int(api.get(f"/jobs/{job_id}/stdout").text)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stdout.read() == ""  # nothing after the one line
        assert wait_until(lambda: process_gone(pid), timeout=5)
        log = (tmp_path / "stderr.log").read_text()
        assert "not pulled" in log
        assert TOKEN not in log
    finally:
        stop(process)


def test_options_reach_the_emulator(tmp_path):
    t1, t2, t3 = jwt_for("t1"), jwt_for("t2"), jwt_for("t3")
    process, url = start(
        tmp_path, "--token", t1, "--token", t2, "--instant", "--job-seconds", "30",
        "--prefix", "api/v1/", "--cpus", "3", "--memory", "2",
    )  # fmt: skip
    try:
        assert Api(url, token=t2).get("/jobs").status_code == 200
        assert Api(url, token=t3).get("/jobs").status_code == 401
        job_id = Api(url, token=t1).submit(job("true"))
        assert Api(url, token=t1).describe(job_id)["status"] == "running"
        stats = requests.get(url.rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=10).json()
        assert stats["slots"] == {"cpus": 3, "memory": 2}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        stop(process)


def test_help_lists_the_contract_options():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake_executor_plugin_prominence.emulator", "--help"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
    )  # fmt: skip
    for option in ("--host", "--port", "--prefix", "--token", "--cpus", "--memory", "--state-dir",
                   "--instant", "--job-seconds", "--latency", "--fault-rate", "--seed",
                   "--time-scale", "--bare-image", "--missing-image", "--image-pull-seconds",
                   "--stage-in-seconds", "--stage-out-seconds", "--omit-memory",
                   "--write-token-file", "--token-user", "--remove-held-after",
                   "--submit-fault-rate"):  # fmt: skip
        assert option in result.stdout


def test_the_console_script_is_the_same_command():
    """``prominence-emulator`` (the installed script) starts the same command-line interface."""
    script = Path(sys.executable).parent / "prominence-emulator"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("usage: prominence-emulator")
    for option in ("--port", "--state-dir", "--instant", "--submit-fault-rate"):
        assert option in result.stdout


def test_a_busy_port_is_a_clear_error(tmp_path):
    process, url = start(tmp_path)
    try:
        port = url.split(":")[2].split("/")[0]
        result = subprocess.run(
            [sys.executable, "-m", "snakemake_executor_plugin_prominence.emulator",
             "--port", port],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=30,
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stdout == ""
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    finally:
        stop(process)


def test_identity_provider_options(tmp_path):
    process, url = start(tmp_path, "--token-lifetime", "2", "--oidc-client", "cid:csecret")
    try:
        root = url.rsplit("/api/v1", 1)[0]
        login = requests.post(root + "/_emulator/login?user=judy", timeout=10).json()
        assert Api(url, token=login["access_token"]).get("/jobs").status_code == 200
        grant = {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]}
        refused = requests.post(root + "/_emulator/oidc/token", data=grant, auth=("cid", "x"))
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        renewed = requests.post(
            root + "/_emulator/oidc/token",
            data={**grant, "client_id": "cid", "client_secret": "csecret"},  # form auth too
            timeout=10,
        ).json()
        assert renewed["expires_in"] == 2
        assert wait_until(
            lambda: Api(url, token=login["access_token"]).get("/jobs").status_code == 401
        )
        assert requests.post(root + "/_emulator/expire-tokens", timeout=10).json()["expired"] == 2
        assert Api(url, token=renewed["access_token"]).get("/jobs").status_code == 401
    finally:
        stop(process)
    bad = subprocess.run(
        [sys.executable, "-m", "snakemake_executor_plugin_prominence.emulator",
         "--oidc-client", "no-secret-here"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2 and "--oidc-client expects CLIENT_ID:SECRET" in bad.stderr


def test_kill_grace_gives_a_deleted_job_time_to_clean_up(tmp_path):
    """A deleted job gets SIGTERM, then SIGKILL after --kill-grace seconds: a task that needs
    3 s to clean up finishes its clean-up with 6 s, as a detached run's head must."""
    marker = tmp_path / "cleaned-up"
    script = f"trap 'sleep 3; touch {marker}; exit 0' TERM; while true; do sleep 0.1; done"
    process, url = start(tmp_path, "--kill-grace", "6")
    try:
        api = Api(url, token=jwt_for("t"))
        job_id = api.submit(job(f"/bin/sh -c {shlex.quote(script)}"))
        assert wait_until(lambda: api.describe(job_id)["status"] == "running", timeout=20)
        time.sleep(0.5)  # the shell has set its trap
        assert api.delete("/jobs", params={"id": job_id}).status_code == 200
        assert wait_until(marker.exists, timeout=10), "the clean-up was killed"
    finally:
        stop(process)


def test_overhead_and_memory_options_reach_the_emulator(tmp_path):
    process, url = start(
        tmp_path, "--stage-in-seconds", "0.2", "--image-pull-seconds", "0.1",
        "--stage-out-seconds", "0.05", "--omit-memory",
    )  # fmt: skip
    try:
        api = Api(url)
        done = api.wait(api.submit(job("true")), "completed")
        execution = done["execution"]
        assert execution["stageInTime"] >= 0.2 and execution["stageOutTime"] >= 0.05
        [task] = execution["tasks"]
        assert task["imagePullTime"] >= 0.1
        assert "maxResidentSetSizeKB" not in task and "maxMemoryUsageKB" not in execution
    finally:
        stop(process)


def test_a_negative_overhead_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake_executor_plugin_prominence.emulator",
         "--stage-in-seconds", "-1"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert result.returncode == 2
    assert "stage_in_seconds must be a non-negative number of seconds" in result.stderr


def test_write_token_file_gives_a_token_the_api_accepts(tmp_path):
    """What a user runs instead of `prominence login`: a private token file at start, in the
    CLI's format, whose access token the emulator (which refuses opaque tokens) accepts."""
    token_file = tmp_path / "home" / ".prominence" / "token"
    process, url = start(
        tmp_path, "--write-token-file", str(token_file), "--token-user", "zoe",
        "--token", jwt_for("only-this-one"),
    )  # fmt: skip
    try:
        assert token_file.stat().st_mode & 0o777 == 0o600
        saved = json.loads(token_file.read_text())
        assert {"access_token", "refresh_token", "expires_in", "token_type"} <= set(saved)
        api = Api(url, token=saved["access_token"])
        job_id = api.submit(job("true"))
        assert api.describe(job_id)["status"] in ("idle", "running", "completed")
        assert Api(url, token="an-opaque-token").get("/jobs").status_code == 401
        log = (tmp_path / "stderr.log").read_text()
        assert "token file for user zoe written to" in log
        assert saved["access_token"] not in log
    finally:
        stop(process)


def test_fault_and_hold_options_reach_the_emulator(tmp_path):
    process, url = start(
        tmp_path, "--instant", "--submit-fault-rate", "1", "--seed", "4",
        "--remove-held-after", "inf",
    )  # fmt: skip
    try:
        response = Api(url).post("/jobs", json=job("true"))
        assert response.status_code == 400
        root = url.rsplit("/api/v1", 1)[0]
        stats = requests.get(root + "/_emulator/stats", timeout=10).json()
        assert stats["submit_faults"]["total"] == 1
    finally:
        stop(process)
    bad = subprocess.run(
        [sys.executable, "-m", "snakemake_executor_plugin_prominence.emulator",
         "--submit-fault-rate", "2"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2 and "submit_fault_rate must be between 0 and 1" in bad.stderr


def test_every_option_is_in_the_readmes_emulator_section():
    from snakemake_executor_plugin_prominence.emulator.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The local emulator", 1)[1].split("\n## ", 1)[0]
    options = {
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    missing = sorted(
        option for option in options if not re.search(rf"(?<![\w-]){option}(?![\w-])", section)
    )
    assert missing == [], f"emulator options missing from README: {missing}"
