"""Jobs that really run: sandbox, environment, states and reasons (reference §4, §8)."""

from __future__ import annotations

import base64
import json
import os
import shlex
import time
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import TOKEN, Api, job, process_gone, wait_until
from tests.processes import emulator_process

SCALE = 0.005  # one minute of job time lasts 0.3 s

PROBE = """
import importlib.util, json, os, sys
print(json.dumps({
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "snakemake": importlib.util.find_spec("snakemake") is not None,
}))
"""


def python_cmd(code: str) -> str:
    return shlex.join(["python", "-c", code])


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    state = tmp_path_factory.mktemp("emulator-state")
    with Emulator(
        cpus=2,
        memory=4,
        state_dir=state,
        time_scale=SCALE,
        kill_grace=0.5,
        missing_images=["ghcr.io/missing/*"],
    ) as emu:
        yield emu


@pytest.fixture(scope="module")
def api(emulator):
    return Api(emulator.url)


def stdout(api: Api, job_id: int) -> str:
    return api.get(f"/jobs/{job_id}/stdout").text


def stderr(api: Api, job_id: int) -> str:
    return api.get(f"/jobs/{job_id}/stderr").text


def test_task_sandbox_and_environment(api, emulator, monkeypatch):
    monkeypatch.setenv("EMULATOR_TEST_SECRET", "must-not-leak")
    body = job(python_cmd(PROBE), resources={"cpus": 2, "memory": 3, "disk": 1})
    body["tasks"][0]["env"] = {"MY_VAR": "x y", "COUNT": 3, "PROMINENCE_JOB_ID": "spoofed"}
    job_id = api.submit(body)
    done = api.wait(job_id)
    assert done["execution"]["tasks"][0]["exitCode"] == 0
    probe = json.loads(stdout(api, job_id))
    env = probe["env"]
    home = emulator.job_dir(job_id) / "userhome"
    assert Path(probe["cwd"]) == home == Path(env["HOME"])
    assert Path(env["TMPDIR"]).parent == home
    assert probe["snakemake"], "the job's python must have Snakemake"
    assert "EMULATOR_TEST_SECRET" not in env
    assert env["MY_VAR"] == "x y" and env["COUNT"] == "3"
    assert env["PROMINENCE_JOB_ID"] == str(job_id)
    # what the server shows as provisioned: int(3000 MB / 1024) GB
    assert env["PROMINENCE_CPUS"] == "2" and env["PROMINENCE_MEMORY"] == "2"
    assert env["PROMINENCE_NODES"] == "1" and env["PROMINENCE_NODE_NUM"] == "0"
    assert env["PROMINENCE_CONTAINER_RUNTIME"] == "singularity"
    assert env["PROMINENCE_URL"] == emulator.url
    assert env["PROMINENCE_TOKEN"] not in ("", TOKEN)
    assert env["LANG"] == "C.UTF-8"
    assert env["PATH"].split(os.pathsep)[0].startswith(str(emulator.state_dir))


def test_the_job_token_works_against_the_api(api):
    code = (
        "import os, json, urllib.request as u\n"
        "url = os.environ['PROMINENCE_URL'] + '/jobs/' + os.environ['PROMINENCE_JOB_ID']\n"
        "auth = {'Authorization': 'Bearer ' + os.environ['PROMINENCE_TOKEN']}\n"
        "req = u.Request(url, headers=auth)\n"
        "print(json.load(u.urlopen(req))[0]['status'])\n"
    )
    job_id = api.submit(job(python_cmd(code)))
    api.wait(job_id)
    assert stdout(api, job_id) == "running\n"


def test_cmd_is_split_without_a_shell(api):
    job_id = api.submit(job("echo a && echo 'b  c' $HOME"))
    api.wait(job_id)
    assert stdout(api, job_id) == "a && echo b  c $HOME\n"


def test_job_id_substitution_like_the_worker(api):
    # The worker applies string.Template to cmd: $PROMINENCE_JOB_ID is replaced, $$ becomes $.
    job_id = api.submit(job("echo $PROMINENCE_JOB_ID ${PROMINENCE_JOB_ID}x $$HOME $OTHER"))
    api.wait(job_id)
    assert stdout(api, job_id) == f"{job_id} {job_id}x $HOME $OTHER\n"


def test_relative_workdir_and_inputs(api, emulator):
    script = base64.b64encode(b"#!/bin/sh\necho from-input\npwd\n").decode()
    body = job(
        "../run.sh", inputs=[{"filename": "dir/run.sh", "content": script, "executable": True}]
    )
    body["tasks"][0]["workdir"] = "sub"
    job_id = api.submit(body)
    api.wait(job_id)
    home = emulator.job_dir(job_id) / "userhome"
    assert stdout(api, job_id) == f"from-input\n{home / 'sub'}\n"


def test_task_stdout_file_gets_a_copy(api, emulator):
    body = job("echo copied")
    body["tasks"][0]["stdout"] = "logs/out.txt"
    job_id = api.submit(body)
    api.wait(job_id)
    assert stdout(api, job_id) == "copied\n"
    assert (emulator.job_dir(job_id) / "userhome/logs/out.txt").read_text() == "copied\n"


def test_non_zero_exit_is_completed_with_the_exit_code(api):
    job_id = api.submit(job("sh -c 'echo oops >&2; exit 3'"))
    done = api.wait(job_id)
    assert done["status"] == "completed"
    assert "statusReason" not in done
    [task] = done["execution"]["tasks"]
    assert task["exitCode"] == 3
    assert task["wallTimeUsage"] >= 0 and task["cpuTimeUsage"] >= 0
    assert task["maxResidentSetSizeKB"] > 0
    assert stderr(api, job_id) == "oops\n"


def test_a_command_that_does_not_exist(api):
    done = api.wait(api.submit(job("no-such-command-here --x")))
    assert done["status"] == "completed"
    assert done["execution"]["tasks"][0]["exitCode"] == 255


def test_tasks_stop_at_the_first_failure(api):
    body = job("sh -c 'exit 2'")
    body["tasks"].append({**body["tasks"][0], "cmd": "echo never"})
    done = api.wait(api.submit(body))
    assert [t["exitCode"] for t in done["execution"]["tasks"]] == [2]
    body["policies"] = {"ignoreTaskFailures": True}
    job_id = api.submit(body)
    done = api.wait(job_id)
    assert [t["exitCode"] for t in done["execution"]["tasks"]] == [2, 0]
    assert [t["imagePullStatus"] for t in done["execution"]["tasks"]] == ["completed", "cached"]
    assert stdout(api, job_id) == "never\n"


def test_task_retries(api, emulator):
    body = job("sh -c 'echo run >> runs; exit 1'", policies={"maximumTaskRetries": 2})
    job_id = api.submit(body)
    [task] = api.wait(job_id)["execution"]["tasks"]
    assert (task["exitCode"], task["retries"]) == (1, 2)
    assert (emulator.job_dir(job_id) / "userhome/runs").read_text() == "run\nrun\nrun\n"


def test_job_retries_run_again_on_a_fresh_scratch(api):
    body = job("sh -c 'ls; touch mark; exit 1'", policies={"maximumRetries": 1})
    job_id = api.submit(body)
    done = api.wait(job_id)
    assert done["execution"]["retries"] == 1
    assert done["status"] == "completed"
    assert stdout(api, job_id) == ""  # "mark" from the first run is not in the second scratch


def test_bare_image_has_python_without_snakemake(api):
    body = job(python_cmd("import snakemake"))
    body["tasks"][0]["image"] = "busybox:1.36"
    done = api.wait(api.submit(body))
    assert done["status"] == "completed"
    assert done["execution"]["tasks"][0]["exitCode"] == 1
    assert "No module named 'snakemake'" in stderr(api, done["id"])


def test_missing_image_fails_the_pull(api):
    body = job("echo never")
    body["tasks"][0]["image"] = "ghcr.io/missing/snakemake:1"
    done = api.wait(api.submit(body))
    assert (done["status"], done["statusReason"]) == ("failed", "Container image pull failed")
    assert done["execution"]["tasks"] == [{"imagePullStatus": "failed"}]
    assert stdout(api, done["id"]) == ""


def test_walltime_kills_the_job(api):
    started = time.monotonic()
    job_id = api.submit(
        job("sleep 60", resources={"cpus": 1, "memory": 1, "disk": 1, "walltime": 1})
    )
    done = api.wait(job_id)
    assert time.monotonic() - started < 5
    assert (done["status"], done["statusReason"]) == ("killed", "Walltime limit exceeded")
    assert done["execution"]["tasks"][0]["exitCode"] == -9


def test_queue_time_limit_spares_a_job_that_only_waits_for_a_slot(api):
    """04-prominence-rules removes a job past maximumTimeInQueue only while it is held or no
    site can take it; a job that is merely idle, waiting for a free slot, stays."""
    blocker = api.submit(job("sleep 60", resources={"cpus": 2, "memory": 1, "disk": 1}))
    api.wait(blocker, "running")
    queued = api.submit(job("true", policies={"maximumTimeInQueue": 1}))
    time.sleep(60 * SCALE * 3)  # three times its limit
    assert api.describe(queued)["status"] == "idle"
    api.delete(f"/jobs/{blocker}")
    done = api.wait(queued)
    assert done["status"] == "completed" and "statusReason" not in done


def test_slots_are_shared(api):
    first = api.submit(job("sleep 60", resources={"cpus": 2, "memory": 1, "disk": 1}))
    api.wait(first, "running")
    second = api.submit(job("true"))
    time.sleep(0.2)
    assert api.describe(second)["status"] == "idle"
    api.delete(f"/jobs/{first}")
    assert api.wait(second)["status"] == "completed"


@pytest.mark.parametrize(
    "resources",
    [{"cpus": 3, "memory": 1, "disk": 1}, {"cpus": 1, "memory": 5, "disk": 1},
     {"cpus": 1, "memory": 3, "disk": 1, "nodes": 2}],
)  # fmt: skip
def test_no_matching_resources(api, resources):
    done = api.wait(api.submit(job("true", resources=resources)))
    assert (done["status"], done["statusReason"]) == ("failed", "No matching resources")


@pytest.mark.parametrize("trap", ["", "trap '' TERM; "], ids=["plain", "ignores-sigterm"])
def test_delete_kills_the_whole_process_group(api, emulator, trap):
    job_id = api.submit(job(shlex.join(["sh", "-c", f"{trap}sleep 60 & echo $! > child; wait"])))
    child_file = emulator.job_dir(job_id) / "userhome" / "child"
    assert wait_until(lambda: child_file.exists() and child_file.read_text().strip())
    child = int(child_file.read_text())
    assert api.delete(f"/jobs/{job_id}").json() == {}
    done = api.wait(job_id)
    assert (done["status"], done["statusReason"]) == ("deleted", "Job deleted by user")
    assert wait_until(lambda: process_gone(child), timeout=5)


def test_background_processes_do_not_outlive_their_task(api, emulator):
    job_id = api.submit(job(shlex.join(["sh", "-c", "sleep 60 & echo $! > child"])))
    api.wait(job_id)
    child = int((emulator.job_dir(job_id) / "userhome" / "child").read_text())
    assert wait_until(lambda: process_gone(child), timeout=5)


def test_stop_kills_running_jobs(tmp_path):
    with Emulator(state_dir=tmp_path, cpus=1, memory=1) as emu:
        api = Api(emu.url)
        job_id = api.submit(
            job(python_cmd("import os, time; print(os.getpid(), flush=True); time.sleep(60)"))
        )
        assert wait_until(lambda: stdout(api, job_id).strip())
        pid = int(stdout(api, job_id))
    assert wait_until(lambda: process_gone(pid), timeout=5)


def test_instant_mode(tmp_path):
    # Jobs of 3 s: the 20 submissions and the first listing fit in that on a loaded machine.
    with Emulator(instant=True, job_seconds=3, state_dir=tmp_path) as emu:
        api = Api(emu.url)
        job_ids = [api.submit(job("exit 1")) for _ in range(20)]
        ids = ",".join(map(str, job_ids))
        listed = api.get("/jobs?id=" + ids).json()
        assert {j["status"] for j in listed} == {"running"}
        assert wait_until(
            lambda: {j["status"] for j in api.get("/jobs?id=" + ids).json()} == {"completed"},
            timeout=30,
        )
        listed = api.get("/jobs?detail&id=" + ids).json()
        assert {j["status"] for j in listed} == {"completed"}
        assert {j["execution"]["tasks"][0]["exitCode"] for j in listed} == {0}
        assert emu.stats()["jobs"]["completed"] == 20
        assert api.get(f"/jobs/{job_ids[0]}/stdout").content == b""
        assert not (tmp_path / "jobs" / str(job_ids[0])).exists()


def test_pending_state_reports_queued_jobs_as_pending(tmp_path):
    with Emulator(state_dir=tmp_path, cpus=1, memory=1, pending_state=True) as emu:
        api = Api(emu.url)
        blocker = api.submit(job("sleep 60"))
        api.wait(blocker, "running")
        queued = api.submit(job("true"))
        assert api.describe(queued)["status"] == "pending"
        assert [j["status"] for j in api.get("/jobs?status=idle").json()] == ["pending"]
        api.delete(f"/jobs?id={blocker},{queued}")


def test_a_reused_state_dir_never_reuses_job_ids(tmp_path):
    with Emulator(state_dir=tmp_path, instant=False) as emu:
        first = Api(emu.url).submit(job("true"))
    with Emulator(state_dir=tmp_path) as emu:
        second = Api(emu.url).submit(job("true"))
        assert second > first
        assert Api(emu.url).get(f"/jobs/{first}").json() == []  # jobs live in memory only


def test_sidecar_runs_alongside_and_is_stopped_at_the_end(api, emulator):
    sidecar = python_cmd(
        "import os, time; open('sidecar.pid', 'w').write(str(os.getpid())); time.sleep(60)"
    )
    main = python_cmd(
        "import os, time\n"
        "while not os.path.exists('sidecar.pid'): time.sleep(0.01)\n"
        "print('main saw sidecar')\n"
    )
    body = job(main)
    body["tasks"].insert(
        0, {"image": "redis", "runtime": "singularity", "cmd": sidecar, "type": "sidecar"}
    )
    job_id = api.submit(body)
    done = api.wait(job_id)
    assert [t["exitCode"] for t in done["execution"]["tasks"]] == [0]  # sidecars have no entry
    assert stdout(api, job_id) == "main saw sidecar\n"
    pid = int((emulator.job_dir(job_id) / "userhome" / "sidecar.pid").read_text())
    assert wait_until(lambda: process_gone(pid), timeout=5)


def test_pass_env_is_the_only_way_in(tmp_path, monkeypatch):
    monkeypatch.setenv("EMU_PASSED", "yes")
    monkeypatch.setenv("EMU_NOT_PASSED", "no")
    with Emulator(state_dir=tmp_path, pass_env=["EMU_PASSED"]) as emu:
        api = Api(emu.url)
        job_id = api.submit(job(python_cmd(PROBE)))
        api.wait(job_id)
        env = json.loads(stdout(api, job_id))["env"]
    assert env["EMU_PASSED"] == "yes"
    assert "EMU_NOT_PASSED" not in env


BURN_AND_ALLOCATE = """
import subprocess, sys
burn = "import time\\nend = time.process_time() + 0.8\\nwhile time.process_time() < end: pass"
grab = "b = bytearray(200 * 1024 * 1024)\\nfor i in range(0, len(b), 4096): b[i] = 1"
subprocess.run([sys.executable, "-c", burn], check=True)
subprocess.run([sys.executable, "-c", grab], check=True)
"""


def test_usage_covers_the_task_process_tree_and_the_cpu_is_reported(tmp_path):
    """The rule's processes run under Snakemake inside the job: grandchildren count too.

    The emulator runs as its own process here: Linux counts the pages of the process that
    starts a task in the task's peak until it execs, and this test process can be larger than
    the 200 MiB measured."""
    from snakemake_executor_plugin_prominence.emulator.cpuinfo import host_cpu

    body = job(python_cmd(BURN_AND_ALLOCATE))
    with emulator_process(tmp_path / "emulator") as url:
        api = Api(url)
        done = api.wait(api.submit(body), timeout=120)
    [task] = done["execution"]["tasks"]
    assert task["exitCode"] == 0
    assert task["cpuTimeUsage"] >= 0.8  # the busy loop ran in a grandchild
    assert 200 * 1024 <= task["maxResidentSetSizeKB"] <= 250 * 1024  # the largest process
    # the job's peak (the cgroup's on the worker) in bytes / 1000: a float, at least as large
    peak = done["execution"]["maxMemoryUsageKB"]
    assert isinstance(peak, float) and peak >= task["maxResidentSetSizeKB"] * 1024 / 1000
    assert done["execution"]["cpu"] == host_cpu()
    assert set(host_cpu()) == {"vendor", "model", "clock"}


def test_overheads_are_spent_in_the_run_and_reported(tmp_path):
    with Emulator(
        state_dir=tmp_path, image_pull_seconds=0.3, stage_in_seconds=0.2, stage_out_seconds=0.1
    ) as emu:
        api = Api(emu.url)
        body = job("true")
        body["tasks"].append(dict(body["tasks"][0]))  # the same image again: cached
        before = time.monotonic()
        job_id = api.submit(body)
        assert wait_until(lambda: api.describe(job_id)["status"] == "completed", timeout=20)
        elapsed = time.monotonic() - before
        execution = api.describe(job_id)["execution"]
        first, second = execution["tasks"]
        assert first["imagePullStatus"] == "completed" and 0.3 <= first["imagePullTime"] < 2
        assert len(first["imageSha256"]) == 64
        # promlet.py writes no pull time and no checksum for a cached image
        assert second["imagePullStatus"] == "cached"
        assert "imagePullTime" not in second and "imageSha256" not in second
        assert 0.2 <= execution["stageInTime"] < 2 and 0.1 <= execution["stageOutTime"] < 2
        assert elapsed >= 0.6  # really waited, inside the run (the job was running meanwhile)
        assert "maxMemoryUsageKB" in execution


def test_omit_memory_leaves_out_the_memory_figures(tmp_path):
    with Emulator(state_dir=tmp_path, omit_memory=True) as emu:
        api = Api(emu.url)
        done = api.wait(api.submit(job("true")))
        [task] = done["execution"]["tasks"]
        assert "maxResidentSetSizeKB" not in task and "maxMemoryUsageKB" not in done["execution"]
        assert task["cpuTimeUsage"] >= 0 and task["wallTimeUsage"] >= 0


def test_deleting_a_job_during_its_stage_in_ends_it_at_once(tmp_path):
    with Emulator(state_dir=tmp_path, stage_in_seconds=30) as emu:
        api = Api(emu.url)
        job_id = api.submit(job("true"))
        api.wait(job_id, "running")
        api.delete(f"/jobs?id={job_id}")
        assert api.wait(job_id, "deleted")["status"] == "deleted"
        # its worker stopped waiting (else it would hold its slots for the whole 30 s)
        assert wait_until(lambda: not emu.core.runner._workers, timeout=5)
        assert not api.describe(job_id)["execution"].get("tasks")  # no task ever started


def test_the_walltime_clock_leaves_out_the_stage_in_and_the_image_pull(tmp_path):
    """promlet.py starts the clock after the stage-in and adds back the pull time (~2028): a
    1-minute walltime (1.2 s here) is not used up by 3 s of overheads."""
    with Emulator(
        state_dir=tmp_path, time_scale=0.02, image_pull_seconds=1.5, stage_in_seconds=1.5
    ) as emu:
        api = Api(emu.url)
        body = job("sleep 0.2", resources={"cpus": 1, "memory": 1, "disk": 1, "walltime": 1})
        done = api.wait(api.submit(body), timeout=30)
        assert done["status"] == "completed"
        assert done["execution"]["tasks"][0]["exitCode"] == 0
        body = job("sleep 30", resources={"cpus": 1, "memory": 1, "disk": 1, "walltime": 1})
        killed = api.wait(api.submit(body), timeout=30)
        assert (killed["status"], killed["statusReason"]) == ("killed", "Walltime limit exceeded")
