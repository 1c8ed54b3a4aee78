"""Jobs held in the queue on demand, as when no site has room (reference §4.1, §4.2)."""

from __future__ import annotations

import math
import subprocess
import time

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.emulator.cli import build_parser
from tests.emulator_helpers import Api, job
from tests.processes import BIN, emulator_process

REASON = "No matching resources currently available"


def listing(api: Api, *ids: int) -> dict[int, dict]:
    return {j["id"]: j for j in api.get("/jobs?id=" + ",".join(map(str, ids))).json()}


def test_held_jobs_wait_with_the_servers_reason_then_run(tmp_path):
    with Emulator(state_dir=tmp_path, cpus=2, memory=2) as emu:
        api = Api(emu.url)
        emu.hold_idle(match=["snakejob.stuck.*"])
        held = api.submit(job("true", name="snakejob.stuck.3"))
        free = api.submit(job("true", name="snakejob.ok.1"))
        assert api.wait(free)["status"] == "completed"
        jobs = listing(api, held, free)
        # The summary listing carries the reason, as the real server's does.
        assert (jobs[held]["status"], jobs[held]["statusReason"]) == ("waiting", REASON)
        assert "startTime" not in jobs[held]["events"]
        # A held job is still queued (JobStatus idle) for ?status=idle.
        assert [j["id"] for j in api.get("/jobs?status=idle").json()] == [held]
        assert api.describe(held)["status"] == "waiting"
        emu.release_idle()
        done = api.wait(held)
        assert done["status"] == "completed" and "statusReason" not in done
        assert done["execution"]["tasks"][0]["exitCode"] == 0


def test_a_timed_hold_ends_by_itself_and_pending_mode_keeps_the_reason(tmp_path):
    with Emulator(state_dir=tmp_path, pending_state=True, hold_idle=0.6) as emu:
        api = Api(emu.url)
        job_id = api.submit(job("true"))
        queued = listing(api, job_id)[job_id]
        assert (queued["status"], queued["statusReason"]) == ("pending", REASON)
        done = api.wait(job_id, timeout=20)
        assert done["status"] == "completed"
        assert done["events"]["startTime"] >= done["events"]["createTime"]


def test_held_jobs_can_be_deleted_and_queue_time_still_applies(tmp_path):
    with Emulator(state_dir=tmp_path, time_scale=0.01) as emu:
        api = Api(emu.url)
        emu.hold_idle()
        deleted = api.submit(job("true"))
        expired = api.submit(job("true", policies={"maximumTimeInQueue": 1}))
        assert api.delete(f"/jobs/{deleted}").json() == {}
        assert api.wait(deleted)["statusReason"] == "Job deleted by user"
        done = api.wait(expired, timeout=20)
        # 04-prominence-rules removes a waiting job past its limit with the removal reason
        # NoMatchingResourcesAvailable, which list_jobs.py shows as the waiting reason.
        assert (done["status"], done["statusReason"]) == ("failed", REASON)
        assert set(done["events"]) == {"createTime"}  # removed before it started: no endTime


def test_holds_in_instant_mode(tmp_path):
    with Emulator(state_dir=tmp_path, instant=True, job_seconds=0.2) as emu:
        api = Api(emu.url)
        emu.hold_idle(math.inf, match=["held*"])
        held = api.submit(job("true", name="held-1"))
        free = api.submit(job("true", name="free-1"))
        jobs = listing(api, held, free)
        assert jobs[free]["status"] == "running"
        assert (jobs[held]["status"], jobs[held]["statusReason"]) == ("waiting", REASON)
        time.sleep(0.3)
        assert listing(api, held)[held]["status"] == "waiting"
        emu.release_idle()
        assert listing(api, held)[held]["status"] == "running"
        assert api.wait(held, timeout=5)["status"] == "completed"
        # The hold applies to new jobs only while it is on.
        later = api.submit(job("true", name="held-2"))
        assert listing(api, later)[later]["status"] == "running"


def test_command_line_options(tmp_path):
    args = build_parser().parse_args(["--hold-idle", "inf", "--hold-idle-match", "a*"])
    assert math.isinf(args.hold_idle) and args.hold_idle_match == ["a*"]
    with emulator_process(tmp_path, "--instant", "--hold-idle", "30") as url:
        api = Api(url)
        job_id = api.submit(job("true"))
        assert listing(api, job_id)[job_id]["statusReason"] == REASON
    bad = subprocess.run(
        [str(BIN / "prominence-emulator"), "--hold-idle", "-1"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "hold_idle must not be negative" in bad.stderr


def test_queue_time_removes_only_waiting_jobs_in_instant_mode_too(tmp_path):
    """04-prominence-rules: past maximumTimeInQueue, a job is removed only while no site can
    take it (shown waiting); the limit is in minutes, times --time-scale, since submission."""
    with Emulator(state_dir=tmp_path, instant=True, job_seconds=0.05, time_scale=0.01) as emu:
        api = Api(emu.url)
        emu.hold_idle(match=["stuck*"])
        limit = {"maximumTimeInQueue": 1}  # 0.6 s here
        stuck = api.submit(job("true", name="stuck-1", policies=limit))
        free = api.submit(job("true", name="free-1", policies=limit))
        assert listing(api, stuck)[stuck]["status"] == "waiting"
        time.sleep(0.3)
        assert listing(api, stuck)[stuck]["status"] == "waiting"  # not yet past its limit
        done = api.wait(stuck, timeout=10)
        assert (done["status"], done["statusReason"]) == ("failed", REASON)
        assert set(done["events"]) == {"createTime"}
        assert api.describe(free)["status"] == "completed"


def test_a_hold_that_ends_before_the_limit_lets_the_job_run(tmp_path):
    with Emulator(state_dir=tmp_path, time_scale=0.01, hold_idle=0.2) as emu:
        api = Api(emu.url)
        job_id = api.submit(job("true", policies={"maximumTimeInQueue": 1}))
        done = api.wait(job_id, timeout=20)
        assert done["status"] == "completed" and "statusReason" not in done
