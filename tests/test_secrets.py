"""The token and secret environment values never appear in anything the plugin prints, logs
or writes; an expired token stops the run before anything is submitted; a token refreshed
while the run goes on is picked up."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.processes import plugin_args, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOWS = Path(__file__).resolve().parent / "workflows"


def jwt(exp: float, sub: str = "alice") -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'exp': int(exp), 'sub': sub})}.c2lnbmF0dXJl"
    )


def base_args(storage: Path) -> list[str]:
    return plugin_args(storage, 2)


def test_token_and_secrets_never_leak(tmp_path, emulator):
    token = jwt(time.time() + 7200, sub="leaktest") + "X9Q7ZLEAKTOKEN"
    secret = "S3CR3T-value-7f2c9d1e"
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "secrets", workdir)
    result = run_snakemake(
        [*base_args(tmp_path / "storage"), "--keep-going", "--verbose", "--show-failed-logs"],
        cwd=workdir,
        env={
            "PROMINENCE_URL": emulator.url,
            "SNAKEMAKE_PROMINENCE_TOKEN": token,
            "LEAKTEST_SECRET": secret,
        },
    )
    assert result.returncode != 0  # `fails` failed, as intended
    assert "Error in rule fails" in result.stderr
    # The job really had the secret: the emulator's own copy of its stderr shows it.
    (failed,) = [
        job
        for job in emulator.jobs()
        if job["labels"].get("snakemakerule") == "fails"
        and (emulator.job_dir(job["id"]) / "job.0.err").read_text().count(secret)
    ]
    assert failed["tasks"][0]["env"]["LEAKTEST_SECRET"] == secret

    # Nothing the plugin printed or wrote contains either value.
    for text, where in ((result.stdout, "stdout"), (result.stderr, "stderr")):
        assert token not in text and token[:40] not in text, where
        assert secret not in text, where
    written = [p for p in (workdir / ".snakemake").rglob("*") if p.is_file()]
    assert any("prominence_logs" in str(p) for p in written)
    for path in written:
        data = path.read_bytes()
        assert token.encode() not in data, path
        assert secret.encode() not in data, path
    log = next(p for p in written if "prominence_logs" in str(p) and "fails" in str(p))
    assert "the secret is <redacted>" in log.read_text()


def test_expired_token_stops_before_anything_is_submitted(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "one_job", workdir)
    posts_before = emulator.stats()["requests"].get("POST /jobs", 0)
    result = run_snakemake(
        base_args(tmp_path / "storage"),
        cwd=workdir,
        env={"PROMINENCE_URL": emulator.url, "PROMINENCE_TOKEN": jwt(time.time() - 600)},
    )
    assert result.returncode != 0
    assert "The PROMINENCE token from the PROMINENCE_TOKEN environment variable expired at" in (
        result.stderr
    )
    assert "prominence login" in result.stderr
    assert emulator.stats()["requests"].get("POST /jobs", 0) == posts_before


def test_token_file_refreshed_mid_run_is_picked_up(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "sleepers", workdir)
    token_file = tmp_path / "token"
    # Long enough for Snakemake to start on a loaded machine (it refuses an expired token at
    # start), short enough to expire while the 35-s job runs.
    expires = time.time() + 30
    token_file.write_text(json.dumps({"access_token": jwt(expires)}))
    token_file.chmod(0o600)
    import subprocess

    from tests.processes import BIN

    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(BIN / "snakemake"),
                *base_args(tmp_path / "storage"),
                "--prominence-token-file", str(token_file),
                "--prominence-max-status-interval", "3",
                "--config", "count=1", "seconds=35",
            ],
            cwd=workdir,
            env={"PATH": f"{BIN}:/usr/bin:/bin", "PROMINENCE_URL": emulator.url,
                 "HOME": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
    try:
        # Once the plugin has started with the short-lived token (and warned about it):
        # `prominence login` in another terminal, before that token expires mid-job.
        deadline = time.time() + 60
        while "nothing can renew it" not in log.read_text() and time.time() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        token_file.write_text(json.dumps({"access_token": jwt(time.time() + 3600)}))
        process.wait(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 0, output[-4000:]
    assert "and nothing can renew it" in output  # warned at start
    assert (tmp_path / "storage" / "slept" / "0.txt").exists()
    assert time.time() > expires  # the run outlived the first token: it needed the new one


def test_a_refused_token_stops_the_run_before_anything_is_submitted(tmp_path):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "one_job", workdir)
    right, wrong = jwt(time.time() + 3600, sub="right"), jwt(time.time() + 3600, sub="wrong")
    with Emulator(port=0, tokens=[right], state_dir=tmp_path / "emu") as emu:
        result = run_snakemake(
            base_args(tmp_path / "storage"),
            cwd=workdir,
            env={"PROMINENCE_URL": emu.url, "PROMINENCE_TOKEN": wrong},
        )
        assert emu.stats()["requests"].get("POST /jobs", 0) == 0
    assert result.returncode != 0
    assert (
        "PROMINENCE rejected the token from the PROMINENCE_TOKEN environment variable "
        "(401 Authentication failure). Nothing was submitted." in result.stderr
    )
    assert wrong not in result.stderr
