"""Command lines as the real worker builds and splits them (promlet.py run_udocker,
run_singularity, run_with_timeout; the uncaught ValueError of run_tasks): over HTTP in
instant mode, in real runs where what the task sees matters, and as pure functions."""

from __future__ import annotations

import json
import shlex

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.emulator.launch import WorkerCrash, udocker
from tests.emulator_helpers import Api, job

PRINT_ENV = shlex.join(["python", "-c", "import json, os; print(json.dumps(dict(os.environ)))"])
TRICKY = ["a b", "it's", 'say "hi"', "back\\slash", "$HOME", "tab\there", "", "x=y=z", "'"]


@pytest.fixture(scope="module")
def instant():
    with Emulator(instant=True, job_seconds=0.05) as emu:
        yield Api(emu.url)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    with Emulator(state_dir=tmp_path_factory.mktemp("emulator"), cpus=2, memory=4) as emu:
        yield Api(emu.url)


def udocker_job(env: dict, cmd: str = "true", **top) -> dict:
    body = job(cmd, **top)
    body["tasks"][0].update(runtime="udocker", env=env)
    return body


def stderr(api: Api, job_id: int) -> str:
    return api.get(f"/jobs/{job_id}/stderr").text


def test_a_udocker_env_value_with_a_space_fails_the_task(instant):
    done = instant.wait(instant.submit(udocker_job({"GREETING": "hello world"})), timeout=10)
    assert done["status"] == "completed" and "statusReason" not in done
    [task] = done["execution"]["tasks"]
    assert (task["imagePullStatus"], task["exitCode"]) == ("completed", 1)


@pytest.mark.parametrize("value", ["it's", 'say "hi'])
def test_an_unbalanced_quote_crashes_the_worker_and_leaves_no_task_results(instant, value):
    done = instant.wait(instant.submit(udocker_job({"V": value})), timeout=10)
    # list_jobs.py: the exit is a normal one (JobStatus 4), the report is the empty {} the
    # worker wrote at its start: no tasks, no cpu, no runtime versions, no reason.
    assert done["status"] == "completed" and "statusReason" not in done
    execution = done["execution"]
    assert "tasks" not in execution and "cpu" not in execution
    assert execution["runtimeVersion"] == {}
    assert {"site", "provisionedResources"} <= set(execution)


def test_a_crashed_worker_exits_non_zero_so_htcondor_retries(instant):
    body = udocker_job({"V": "it's"}, policies={"maximumRetries": 2})
    done = instant.wait(instant.submit(body), timeout=10)
    assert done["execution"]["retries"] == 2 and "tasks" not in done["execution"]


def test_singularity_env_values_are_safe_but_a_cmd_quote_crashes(instant):
    body = job("true")
    body["tasks"][0]["env"] = {"V": "it's a b"}  # a mapping: never split
    assert instant.wait(instant.submit(body), timeout=10)["execution"]["tasks"][0]["exitCode"] == 0
    done = instant.wait(instant.submit(job("echo 'unbalanced")), timeout=10)
    assert done["status"] == "completed" and "tasks" not in done["execution"]


def test_udocker_gives_the_task_what_the_split_gives(real):
    """Quotes are removed, backslashes escape; a value quoted with shlex.quote (what a client
    must send for udocker) arrives as it was before quoting."""
    env = {"QUOTED": "'a b'", "DOUBLE": '"x y"', "ESCAPED": "a\\ b", "DOLLAR": "$HOME"}
    env.update({f"SAFE{n}": shlex.quote(value) for n, value in enumerate(TRICKY)})
    env["PROMINENCE_JOB_ID"] = "spoofed"
    job_id = real.submit(udocker_job(env, PRINT_ENV))
    done = real.wait(job_id, timeout=30)
    assert done["execution"]["tasks"][0]["exitCode"] == 0, stderr(real, job_id)
    seen = json.loads(real.get(f"/jobs/{job_id}/stdout").text)
    assert (seen["QUOTED"], seen["DOUBLE"], seen["ESCAPED"]) == ("a b", "x y", "a b")
    assert seen["DOLLAR"] == "$HOME"  # no shell: nothing expands
    assert [seen[f"SAFE{n}"] for n in range(len(TRICKY))] == TRICKY
    assert seen["PROMINENCE_JOB_ID"] == str(job_id)  # the worker's own pairs come later
    assert seen["PROMINENCE_CONTAINER_RUNTIME"] == "udocker"


def test_what_the_job_shows_when_udocker_takes_a_word_as_its_container(real):
    job_id = real.submit(udocker_job({"SECRET_GREETING": "hello there-friend"}, "echo never"))
    done = real.wait(job_id, timeout=30)
    assert done["execution"]["tasks"][0]["exitCode"] == 1
    assert real.get(f"/jobs/{job_id}/stdout").text == ""
    err = stderr(real, job_id)
    assert "Error: image or container not available" in err
    assert "SECRET_GREETING" in err and "there-friend" not in err  # the name, never the value


def test_what_the_job_shows_when_the_worker_crashes(real):
    job_id = real.submit(udocker_job({"PASSWORD": "it's-secret"}, "echo never"))
    done = real.wait(job_id, timeout=30)
    assert "tasks" not in done["execution"]
    err = stderr(real, job_id)
    assert err.startswith("Traceback (most recent call last):")
    assert "ValueError: No closing quotation" in err
    assert "PASSWORD" in err and "it's-secret" not in err
    assert real.get(f"/jobs/{job_id}/stdout").text == ""


def test_a_sidecar_whose_line_cannot_be_split_does_not_run_but_the_job_goes_on(real):
    body = job("echo main ran")
    body["tasks"].insert(
        0,
        {"image": "redis", "runtime": "udocker", "cmd": "sleep 60", "type": "sidecar",
         "env": {"V": "it's"}},
    )  # fmt: skip
    job_id = real.submit(body)
    done = real.wait(job_id, timeout=30)
    assert [t["exitCode"] for t in done["execution"]["tasks"]] == [0]
    assert real.get(f"/jobs/{job_id}/stdout").text == "main ran\n"
    assert "Process Process-1:" in stderr(real, job_id)  # the sidecar's process died


def worker_env(env: dict, cmd: str = "true") -> dict:
    launched = udocker(
        {"runtime": "udocker", "image": "x", "env": env},
        job_id=7, task_num=0, container="image0", cmd=cmd, user="u", url="http://h/api",
        token="t.t.t", cpus=2, memory=3,
    )  # fmt: skip
    assert not launched.failure, launched.failure
    return launched.env


def test_quotes_pair_up_across_values_and_swallow_the_pairs_between():
    env = worker_env({"A": "it's", "B": "that's", "C": "fine"})
    assert env["A"] == "its --env=B=thats" and "B" not in env and env["C"] == "fine"


def test_the_pairs_the_worker_adds_and_their_order():
    env = worker_env({"PROMINENCE_CPUS": "99", "X": "1"})
    assert env["PROMINENCE_CPUS"] == "2"  # the worker's --env comes after the task's
    assert env["PROMINENCE_MEMORY"] == "3" and env["PROMINENCE_JOB_ID"] == "7"
    assert env["PROMINENCE_TOKEN"] == "t.t.t" and env["PROMINENCE_URL"] == "http://h/api"
    assert "HOME" not in env and "UDOCKER_DIR" not in env  # set by the emulator for the host


def test_the_cmd_is_split_with_the_rest_of_the_line():
    launched = udocker(
        {"runtime": "udocker", "image": "x", "env": {}},
        job_id=1, task_num=0, container="image0", cmd="sh -c 'echo a b'", user="u", url="",
        token="", cpus=1, memory=0,
    )  # fmt: skip
    assert launched.argv == ["sh", "-c", "echo a b"]
    with pytest.raises(WorkerCrash) as crashed:
        udocker(
            {"runtime": "udocker", "image": "x", "env": {"Q": "'"}},
            job_id=1, task_num=0, container="image0", cmd=None, user="u", url="", token="",
            cpus=1, memory=0,
        )  # fmt: skip
    assert crashed.value.suspects == ["Q"]
