"""GET /jobs parameters, job shapes and user isolation (reference §4.3, §5.1), over HTTP.

One emulator with two CPU slots holds, for alice: two completed jobs (C then D), one running job
(A) and one idle job (B, which needs both slots); and one completed job of bob's (E).
"""

from __future__ import annotations

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import Api, ids, job, jwt_for

# promlet.py's entry of a task whose image it pulled, without --image-pull-seconds (a pull
# that took no time has no imagePullTime)
TASK_RESULT_KEYS = {
    "imagePullStatus", "imageSha256", "exitCode", "wallTimeUsage", "cpuTimeUsage",
    "maxResidentSetSizeKB", "retries",
}  # fmt: skip


@pytest.fixture(scope="module")
def world():
    with Emulator(cpus=2, memory=4, time_scale=0.01) as emulator:
        alice, bob = Api(emulator.url), Api(emulator.url, token=jwt_for("bob"))
        c = alice.submit(job("true", name="c", labels={"Run": "r1"}))
        alice.wait(c)
        d = alice.submit(job("true", name="d", labels={"run": "r2"}))
        alice.wait(d)
        a = alice.submit(job("sleep 60", name="a", labels={"run": "r1"}))
        alice.wait(a, "running")
        b = alice.submit(job("sleep 60", name="b", resources={"cpus": 2, "memory": 1, "disk": 1}))
        e = bob.submit(job("true", name="e"))
        bob.wait(e)
        assert alice.describe(b)["status"] == "idle"
        yield {"api": alice, "bob": bob, "a": a, "b": b, "c": c, "d": d, "e": e}


def listing(world: dict, query: str) -> list[int]:
    response = world["api"].get("/jobs" + query)
    assert response.status_code == 200, response.text
    return ids(response.json())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "ab"),
        ("?completed=true", "d"),
        ("?completed=true&num=5", "dc"),
        ("?completed=true&num=-1", "dc"),
        ("?completed=yes", "ab"),
        ("?num=5", "ab"),
        ("?all", "dcab"),
        ("?all=false", "dcab"),
        ("?all=true&completed=true&num=1", "dcab"),
        ("?id={c},{a},999999,{e}", "ca"),
        ("?id={a},{c}", "ca"),
        ("?id={d},{c}", "dc"),
        ("?id={b}&completed=true", "b"),
        ("?status=idle", "b"),
        ("?status=running", "a"),
        ("?status=running&id={b}", ""),
        ("?status=idle&all", "b"),
        ("?constraint=run=r1", "a"),
        ("?constraint=run=r1&all", "ca"),
        ("?constraint=RUN=r2&completed=true&num=3", "d"),
        ("?constraint=run=R1&all", ""),
        ("?constraint=run=", ""),
        ("?name=a", "a"),
        ("?name=c&all", "c"),
        ("?name=e&all", ""),
        ("?workflow=true&id={a}", ""),
    ],
)
def test_listing_parameters(world, query, expected):
    query = query.format(**world)
    assert listing(world, query) == [world[letter] for letter in expected]


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        ("?status=completed", 200, {"error": "invalid status specified"}),
        ("?status=", 200, {"error": "invalid status specified"}),
        ("?constraint=run", 400, {"error": "Invalid constraint"}),
        ("?constraint=a=b=c", 400, {"error": "Invalid constraint"}),
        ("?constraint=run&status=bad", 400, {"error": "Invalid constraint"}),
    ],
)
def test_listing_errors(world, query, status, body):
    response = world["api"].get("/jobs" + query)
    assert response.status_code == status
    assert response.json() == body


@pytest.mark.parametrize("query", ["?id=abc", "?id=", "?id=1,,2", "?completed=true&num=many"])
def test_listing_values_the_server_cannot_convert_crash(world, query):
    response = world["api"].get("/jobs" + query)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")


def test_summary_shape(world):
    [running] = world["api"].get("/jobs?name=a").json()
    assert set(running) == {"id", "status", "name", "tasks", "events"}
    assert running["status"] == "running"
    assert running["tasks"] == job("sleep 60")["tasks"]
    assert set(running["events"]) == {"createTime", "startTime"}
    assert all(isinstance(v, int) for v in running["events"].values())


@pytest.mark.parametrize("query", ["?detail", "?detail=false", "?detail=0&all"])
def test_detail_is_a_presence_flag(world, query):
    for entry in world["api"].get("/jobs" + query).json():
        assert {"resources", "execution"} <= set(entry)


def test_detail_of_a_completed_job(world):
    detail = world["api"].describe(world["c"])
    assert detail["status"] == "completed"
    assert "statusReason" not in detail
    assert detail["resources"] == {"cpus": 1, "memory": 1, "disk": 1, "walltime": 10, "nodes": 1}
    assert detail["labels"] == {"Run": "r1"}
    events = detail["events"]
    assert all(isinstance(v, int) for v in events.values())
    assert events["createTime"] <= events["startTime"] <= events["endTime"]
    execution = detail["execution"]
    assert execution["site"]
    # list_jobs.py: int(MemoryProvisioned / 1024) of a 1000 MB slot, ceil(disk KB / 10^6)
    assert execution["provisionedResources"] == {"cpus": 1, "memory": 0, "disk": 2, "nodes": 1}
    assert execution["runtimeVersion"] == {"singularity": "emulated"}
    assert set(execution["cpu"]) == {"vendor", "model", "clock"}
    assert "stageInTime" not in execution and "stageOutTime" not in execution  # 0: left out
    assert isinstance(execution["maxMemoryUsageKB"], float)
    [task] = execution["tasks"]
    assert set(task) == TASK_RESULT_KEYS
    assert task["exitCode"] == 0
    assert task["imagePullStatus"] == "completed"


def test_detail_of_an_idle_job(world):
    detail = world["api"].describe(world["b"])
    assert detail["status"] == "idle"
    assert detail["execution"] == {"runtimeVersion": {}}
    assert set(detail["events"]) == {"createTime"}


def test_users_only_see_their_own_jobs(world):
    alice, bob = world["api"], world["bob"]
    assert ids(bob.get("/jobs?all").json()) == [world["e"]]
    assert alice.get(f"/jobs/{world['e']}").json() == []
    assert bob.get(f"/jobs/{world['a']}").json() == []
    assert bob.get(f"/jobs?id={world['a']},{world['e']}").json()[0]["id"] == world["e"]
    response = alice.get(f"/jobs/{world['e']}/stdout")
    assert (response.status_code, response.json()) == (
        403,
        {"error": "Not authorized to access this job"},
    )
    response = bob.delete(f"/jobs/{world['a']}")
    assert (response.status_code, response.json()) == (400, {"error": "No such job(s)"})
    assert alice.describe(world["a"])["status"] == "running"


def test_query_parameters_are_ignored_on_a_single_job(world):
    response = world["api"].get(f"/jobs/{world['c']}?completed=false&status=bad")
    assert ids(response.json()) == [world["c"]]
