"""Days-long runs: tokens that live 24 s are renewed ahead without a single refusal; an expired
token pauses the run (jobs tracked, submissions held) until a new one appears, any number of
times and across an API outage, without losing or duplicating a job; a run whose token never
comes back ends after the configured wait with the ids and the command to find its jobs."""

from __future__ import annotations

import json
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.run.pause import TokenPause
from tests.processes import BIN, plugin_args

pytestmark = pytest.mark.e2e

WORKFLOWS = Path(__file__).resolve().parent / "workflows"
#: lifetime of the tokens the emulator's identity provider issues here: renewed 18 s in, 6 s
#: ahead, and still about that when a loaded machine takes seconds to start Snakemake with the
#: first token (with 12 s, a request raced the expiry there once)
TOKEN_SECONDS = 24


def test_pause_state_holds_reminds_and_gives_up():
    clock = [0.0]
    state = TokenPause(100, remind_seconds=30, clock=lambda: clock[0])
    assert not state.active and not state.hold_if_paused(["a"])
    assert state.hold_and_begin(["a", "b"]) is True
    assert state.hold_and_begin(["c"]) is False  # already paused: held, not announced again
    assert state.hold_if_paused(["d"]) and state.held == 4
    clock[0] = 29
    assert not state.reminder_due()
    clock[0] = 31
    assert state.reminder_due() and not state.reminder_due()
    assert not state.gave_up()
    paused_for, held = state.end()
    assert paused_for == 31 and held == ["a", "b", "c", "d"] and not state.active
    state.hold_and_begin([])
    clock[0] = 131
    assert state.gave_up() and state.pauses == 2


@pytest.fixture
def token_emulator(tmp_path):
    """An emulator whose identity provider issues tokens that live 24 s."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(
        port=0,
        cpus=12,
        memory=32,
        state_dir=tmp_path / "emu",
        token_lifetime=TOKEN_SECONDS,
        oidc_clients={"snakemake-test": "client-s3cret-4e1f"},
    ) as emu:
        yield emu


def start(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Snakemake in the background, its output in ``log`` (a file: no pipe to fill)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [str(BIN / "snakemake"), *args],
            cwd=cwd,
            env={"PATH": f"{BIN}:/usr/bin:/bin", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wait_for_text(log: Path, text: str, count: int, timeout: float = 90) -> None:
    """Until ``text`` has appeared ``count`` times in the log."""
    deadline = time.time() + timeout
    while log.read_text().count(text) < count:
        assert time.time() < deadline, f"{text!r} did not appear {count} times"
        time.sleep(0.2)


def sleepers(tmp_path: Path, name: str) -> Path:
    workdir = tmp_path / name
    shutil.copytree(WORKFLOWS / "sleepers", workdir)
    return workdir


def run_jobs(emu, run_output: str) -> list[dict]:
    """The emulator's jobs of the run whose id the plugin printed."""
    (run_id,) = set(re.findall(r"PROMINENCE: run ([0-9a-f]{32})", run_output))
    return [job for job in emu.jobs() if job["labels"].get("snakemakerun") == run_id]


def assert_secrets_absent(secrets: list[str], output: str, workdir: Path) -> None:
    for secret in secrets:
        assert secret not in output, "a secret is in Snakemake's output"
    for path in (workdir / ".snakemake").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, path


def test_short_lived_tokens_are_renewed_ahead_by_a_command_and_by_the_refresh_grant(
    tmp_path, token_emulator
):
    emu = token_emulator
    # oidc-agent's `oidc-token <account>` stand-in: prints a fresh access token.
    command = tmp_path / "oidc-token"
    command.write_text(
        f"#!{sys.executable}\nimport json, urllib.request\n"
        f"request = urllib.request.Request({emu.root_url + '/_emulator/login?user=erin'!r}, "
        "method='POST')\n"
        "print(json.load(urllib.request.urlopen(request))['access_token'])\n"
    )
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    # The refresh-token grant: the token file as `prominence login` writes it.
    home = tmp_path / "home"
    token_file = home / ".prominence" / "token"
    token_file.parent.mkdir(parents=True)
    first = emu.login("frank")
    token_file.write_text(json.dumps(first))
    token_file.chmod(0o600)

    # 2 jobs of 28 s: past the first token's renewal point (18 s) in any case.
    config = ["--config", "count=2", "seconds=28"]
    by_command = start(
        plugin_args(tmp_path / "store-a", 3, *config, "--prominence-token-command", str(command)),
        sleepers(tmp_path, "a"),
        {"PROMINENCE_URL": emu.url, "HOME": str(tmp_path / "nohome")},
        tmp_path / "a.log",
    )
    by_grant = start(
        plugin_args(tmp_path / "store-b", 3, *config),
        sleepers(tmp_path, "b"),
        {
            "PROMINENCE_URL": emu.url,
            "HOME": str(home),
            "PROMINENCE_OIDC_URL": emu.oidc_url,
            "PROMINENCE_OIDC_CLIENT_ID": "snakemake-test",
            "PROMINENCE_OIDC_CLIENT_SECRET": "client-s3cret-4e1f",
        },
        tmp_path / "b.log",
    )
    started = time.monotonic()
    for process in (by_command, by_grant):
        process.wait(timeout=400)
    took = time.monotonic() - started
    out_a, out_b = (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text()
    assert by_command.returncode == 0, out_a[-3000:]
    assert by_grant.returncode == 0, out_b[-3000:]
    assert took > TOKEN_SECONDS  # the first tokens expired during the runs

    auth = emu.stats()["auth"]
    assert auth["refused"] == 0  # renewed ahead every time: no request ever used a stale token
    assert auth["logins"] >= 2  # the command ran at start and again before expiry
    assert auth["refresh_grants"] >= 1 and auth["refused_grants"] == 0
    for output in (out_a, out_b):
        assert "renewed by itself from" in output
        assert "PAUSED" not in output and "nothing can renew it" not in output
    assert "the token command `" in out_a and "the refresh token in " in out_b
    for output in (out_a, out_b):
        assert len(run_jobs(emu, output)) == 2
        assert all(job["status"] == "completed" for job in run_jobs(emu, output))

    # The token file holds the last renewed token (valid, newer than the first) and a rotated
    # refresh token; still private.
    saved = json.loads(token_file.read_text())
    assert saved["access_token"] != first["access_token"]
    assert saved["refresh_token"] != first["refresh_token"]
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    owners = {emu.owner(job["id"]) for job in run_jobs(emu, out_b)}
    assert owners == {"frank"}

    secrets = [
        "client-s3cret-4e1f",
        first["access_token"],
        first["refresh_token"],
        saved["access_token"],
        saved["refresh_token"],
    ]
    assert_secrets_absent(secrets, out_b, tmp_path / "b")
    assert_secrets_absent([saved["access_token"][:60]], out_a, tmp_path / "a")


def test_a_run_survives_three_expired_tokens_and_an_outage_with_every_job_exactly_once(
    tmp_path, token_emulator
):
    emu = token_emulator
    emu.set_token_lifetime(3600)  # tokens expire on demand here, not by themselves
    home = tmp_path / "home"
    token_file = home / ".prominence" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(json.dumps({"access_token": emu.login("grace")["access_token"]}))
    token_file.chmod(0o600)
    workdir = sleepers(tmp_path, "wf")
    log = tmp_path / "run.log"
    # Slow answers, so that the first token expires while the first submissions are under way
    # (some of them are refused and must be held, then sent once, after the pause).
    emu.set_faults(latency=0.5)
    process = start(
        # 8 jobs in two waves of 20 s: the second wave is submitted when the second pause
        # ends and outlasts the third; two submissions at a time, so that the first wave is
        # still being submitted when the first job exists and the token goes
        plugin_args(
            tmp_path / "store",
            4,
            "--prominence-submit-concurrency",
            "2",
            "--config",
            "count=8",
            "seconds=20",
        ),
        workdir,
        {"PROMINENCE_URL": emu.url, "HOME": str(home)},
        log,
    )
    expiries = 0
    try:
        # Wait until the run has jobs on PROMINENCE, then take its token away three times.
        deadline = time.time() + 120
        while not emu.jobs() and time.time() < deadline:
            time.sleep(0.05)
        for round_ in range(3):
            assert process.poll() is None, "the run ended before the token expired"
            emu.expire_tokens()
            expiries += 1
            emu.set_faults(latency=0.0)
            wait_for_text(log, "The run is PAUSED", round_ + 1)
            if round_ == 1:
                emu.set_faults(fault_rate=1.0)  # and PROMINENCE goes down for a while
                time.sleep(5)
            time.sleep(3)  # the user is away
            # `prominence login` in another terminal
            token_file.write_text(json.dumps({"access_token": emu.login("grace")["access_token"]}))
            if round_ == 1:
                time.sleep(3)
                emu.set_faults(fault_rate=0.0)
            wait_for_text(log, "accepts the token again", round_ + 1)
            time.sleep(2)
        process.wait(timeout=400)
    finally:
        emu.set_faults(fault_rate=0.0, latency=0.0)
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 0, output[-4000:]
    assert expiries == 3
    assert emu.stats()["auth"]["refused"] > 0  # the token really was refused
    assert output.count("The run is PAUSED") == 3
    assert output.count("accepts the token again") == 3
    held = [int(n) for n in re.findall(r"the run resumes \((\d+) held job", output)]
    assert held[0] > 0, "no submission was refused and held"
    assert "Error in rule" not in output and "did not accept the job" not in output
    # Snakemake reported each of its 9 jobs (8 sleepers and `all`) exactly once...
    finished = re.findall(r"Finished jobid: (\d+)", output)
    assert len(finished) == len(set(finished)) == 9
    assert "9 of 9 steps (100%) done" in output
    # ...and PROMINENCE holds exactly one job per Snakemake job that ran there.
    jobs = run_jobs(emu, output)
    keys = [job["labels"]["snakemakejob"] for job in jobs]
    assert len(jobs) == 8 and len(set(keys)) == 8
    assert all(job["status"] == "completed" for job in jobs)
    assert len(list((tmp_path / "store" / "slept").iterdir())) == 8


def test_a_token_that_never_comes_back_ends_the_run_after_the_wait_and_leaves_jobs_findable(
    tmp_path, token_emulator
):
    emu = token_emulator
    emu.set_token_lifetime(3600)
    log = tmp_path / "run.log"
    process = start(
        plugin_args(
            tmp_path / "store",
            2,
            "--config", "count=1", "seconds=600",
            "--prominence-max-token-wait", "0.25",
        ),
        sleepers(tmp_path, "wf"),
        {
            "PROMINENCE_URL": emu.url,
            "PROMINENCE_TOKEN": emu.login("heidi")["access_token"],
            "HOME": str(tmp_path / "home"),
        },
        log,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not emu.jobs() and time.time() < deadline:
            time.sleep(0.2)
        emu.expire_tokens()
        process.wait(timeout=200)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode != 0
    (job,) = emu.jobs()
    assert "The run is PAUSED, not ended: 1 job(s) keep running on PROMINENCE" in output
    waited = re.search(
        r"No valid PROMINENCE token for (\d+) s \(--prominence-max-token-wait\)", output
    )
    assert waited and 15 <= int(waited.group(1)) <= 40, output[-3000:]
    assert "stopping." in output
    assert f"1 job(s) of this run may still be running on PROMINENCE: {job['id']}" in output
    (run_id,) = set(re.findall(r"PROMINENCE: run ([0-9a-f]{32})", output))
    assert f"`prominence list --all --constraint snakemakerun={run_id}`" in output
    # With a new token, the job is found by the run's label, still running.
    from snakemake_executor_plugin_prominence.service.auth import TokenProvider
    from snakemake_executor_plugin_prominence.service.client import ProminenceClient

    fresh = ProminenceClient(emu.url, TokenProvider(emu.login("heidi")["access_token"], None, {}))
    (found,) = fresh.find_jobs(f"snakemakerun={run_id}")
    assert found["id"] == job["id"] and found["status"] == "running"


def test_ctrl_c_while_paused_says_how_to_delete_the_jobs_later(tmp_path, token_emulator):
    emu = token_emulator
    emu.set_token_lifetime(3600)
    log = tmp_path / "run.log"
    process = start(
        # a job that outlasts the whole test on any machine: it must still run at the end
        plugin_args(tmp_path / "store", 2, "--config", "count=1", "seconds=600"),
        sleepers(tmp_path, "wf"),
        {
            "PROMINENCE_URL": emu.url,
            "PROMINENCE_TOKEN": emu.login("ivan")["access_token"],
            "HOME": str(tmp_path / "home"),
        },
        log,
    )
    try:
        deadline = time.time() + 120
        while not emu.jobs() and time.time() < deadline:
            time.sleep(0.2)
        emu.expire_tokens()
        deadline = time.time() + 60
        while "The run is PAUSED" not in log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    (job,) = emu.jobs()
    assert "paused for want of a valid token, and deleting its 1 job(s) needs one" in output
    assert "`prominence delete <id>`" in output
    assert f"Could not delete PROMINENCE jobs {job['id']}" in output
    assert job["status"] == "running"  # the refused token could not delete it, as said
