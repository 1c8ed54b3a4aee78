"""Authentication, DELETE, stdout/stderr and the other routes, over HTTP (reference §1, §2, §5)."""

from __future__ import annotations

import shlex
import time

import pytest
import requests

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import Api, ids, job, jwt, jwt_for

AUTH_FAILURE = {"error": "Authentication failure"}
EXPIRED = jwt({"preferred_username": "carol", "exp": int(time.time()) - 60})
VALID_CAROL = jwt({"preferred_username": "carol", "exp": int(time.time()) + 3600})
OTHER_CAROL = jwt({"preferred_username": "carol", "sub": "x", "exp": int(time.time()) + 7200})
NO_EXP = jwt({"sub": "dave"})
NOT_A_JWT = "alice-token"


@pytest.fixture(scope="module")
def emulator():
    with Emulator(cpus=2, memory=4, time_scale=0.01, kill_grace=0.5) as emu:
        yield emu


@pytest.fixture(scope="module")
def api(emulator):
    return Api(emulator.url)


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "", EXPIRED, f"Bearer {EXPIRED}", f"Bearer {NO_EXP}",
     f"Bearer {NOT_A_JWT}", "Bearer a.b.c", f"Bearer {jwt_for('x')}.extra"],
    ids=["missing", "no-space", "empty-token", "empty", "bare-expired", "expired-jwt",
         "jwt-without-exp", "not-a-jwt", "three-junk-segments", "four-segments"],
)  # fmt: skip
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/1"), ("DELETE", "/jobs?id=1"),
     ("GET", "/jobs/1/stdout")],
)  # fmt: skip
def test_authentication_failure(emulator, header, method, path):
    headers = {} if header is None else {"Authorization": header}
    response = requests.request(method, emulator.url + path, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == AUTH_FAILURE


@pytest.mark.parametrize("scheme", ["Bearer", "token", "Anything"])
def test_the_scheme_word_is_ignored(emulator, scheme):
    assert Api(emulator.url, scheme=scheme).get("/jobs").status_code == 200


def test_an_unexpired_jwt_is_accepted_whatever_its_signature(emulator):
    assert Api(emulator.url, token=VALID_CAROL).get("/jobs").status_code == 200


def test_an_exp_that_is_not_a_number_crashes_the_server(emulator):
    """The server compares ``time.time() > exp`` outside its error handling: HTTP 500."""
    response = Api(emulator.url, token=jwt({"sub": "x", "exp": "tomorrow"})).get("/jobs")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")


def test_jwt_username_claim_decides_the_owner(emulator):
    job_id = Api(emulator.url, token=VALID_CAROL).submit(job("true"))
    assert emulator.owner(job_id) == "carol"
    assert ids(Api(emulator.url, token=OTHER_CAROL).get(f"/jobs?id={job_id}").json()) == [job_id]
    assert Api(emulator.url, token=jwt_for("someone-else")).get(f"/jobs/{job_id}").json() == []


def test_configured_tokens_only():
    good, bad = jwt_for("good"), jwt_for("bad")
    with Emulator(tokens=[good], instant=True) as emu:
        assert Api(emu.url, token=good).get("/jobs").status_code == 200
        response = Api(emu.url, token=bad).get("/jobs")
        assert (response.status_code, response.json()) == (401, AUTH_FAILURE)
        # its identity provider's tokens pass the allow-list, as the user's real tokens would
        login = emu.login("good")["access_token"]
        assert Api(emu.url, token=login).get("/jobs").status_code == 200


@pytest.mark.parametrize("token", ["opaque", jwt({"sub": "no-exp"})], ids=["opaque", "no-exp"])
def test_a_configured_token_the_server_would_refuse_is_a_clear_error(token):
    with pytest.raises(ValueError, match="accepted token #2 is not a JWT with a numeric exp"):
        Emulator(tokens=[jwt_for("fine"), token])


# -- other routes -----------------------------------------------------------------------------


def test_health_and_stats_need_no_authentication(emulator):
    assert requests.get(emulator.url + "/health", timeout=10).status_code == 204
    root = emulator.url.rsplit("/api/v1", 1)[0]
    stats = requests.get(root + "/_emulator/stats", timeout=10)
    assert stats.status_code == 200
    assert {"requests", "jobs", "faults"} <= set(stats.json())


def test_stats_count_requests_by_route_template(api, emulator):
    before = emulator.stats()["requests"]
    api.get("/jobs")
    api.get("/jobs/424242")
    api.get("/jobs/424243")
    api.get("/jobs/424243/stderr")
    after = emulator.stats()["requests"]
    assert after["GET /jobs"] - before.get("GET /jobs", 0) == 1
    assert after["GET /jobs/<id>"] - before.get("GET /jobs/<id>", 0) == 2
    assert after["GET /jobs/<id>/stderr"] - before.get("GET /jobs/<id>/stderr", 0) == 1


def test_unknown_routes_are_flask_html_errors(api):
    response = api.get("/workflows-not-here")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    response = api.request("PATCH", "/jobs")
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("text/html")


def test_unknown_job_is_an_empty_list(api):
    response = api.get("/jobs/987654")
    assert (response.status_code, response.json()) == (200, [])


def test_exec_and_snapshots_are_disabled(api):
    response = api.post("/jobs/1/exec?command=ls")
    assert (response.status_code, response.json()) == (401, {"error": "Functionality disabled"})


def test_clone_resubmits_the_stored_description(api):
    original = api.submit(job("true", name="to-clone"))
    response = api.request("PUT", f"/jobs/{original}/clone")
    assert response.status_code == 201
    clone = api.describe(response.json()["id"])
    assert clone["name"] == "to-clone"
    assert clone["resources"] == api.describe(original)["resources"]


# -- DELETE -------------------------------------------------------------------------------------


def test_delete_needs_ids(api):
    response = api.delete("/jobs")
    assert response.status_code == 400
    assert response.json() == {"error": "a job id or list of job ids must be provided"}


def test_delete_semantics(api):
    running = api.submit(job("sleep 60"))
    finished = api.submit(job("true"))
    api.wait(finished)
    api.wait(running, "running")
    response = api.delete(f"/jobs/{finished}")
    assert (response.status_code, response.json()) == (400, {"error": "No such job(s)"})
    response = api.delete(f"/jobs?id={finished},{running},999999")
    assert (response.status_code, response.json()) == (200, {})
    assert response.headers["Content-Length"] == "3"
    deleted = api.wait(running)
    assert (deleted["status"], deleted["statusReason"]) == ("deleted", "Job deleted by user")
    assert {"startTime", "endTime"} <= set(deleted["events"])
    response = api.delete(f"/jobs/{running}")
    assert (response.status_code, response.json()) == (400, {"error": "No such job(s)"})
    assert api.delete("/jobs/999999").json() == {"error": "No such job(s)"}
    assert ids(api.get(f"/jobs?completed=true&num=1&id={running}").json()) == [running]


@pytest.fixture
def blocker(api):
    """A running job holding one of the two CPU slots, so a 2-CPU job stays idle."""
    job_id = api.submit(job("sleep 60"))
    api.wait(job_id, "running")
    yield job_id
    api.delete(f"/jobs/{job_id}")


TWO_CPUS = {"cpus": 2, "memory": 1, "disk": 1}


def test_delete_an_idle_job(api, blocker):
    idle = api.submit(job("true", resources=TWO_CPUS))
    assert api.describe(idle)["status"] == "idle"
    assert api.delete(f"/jobs/{idle}").json() == {}
    deleted = api.describe(idle)
    assert (deleted["status"], deleted["statusReason"]) == ("deleted", "Job deleted by user")
    # list_jobs.py gives a removed job an endTime only if it ever started
    assert set(deleted["events"]) == {"createTime"}


def test_a_job_that_can_never_fit_fails_and_cannot_be_deleted(api):
    job_id = api.submit(job("true", resources={"cpus": 1, "memory": 99, "disk": 1}))
    failed = api.wait(job_id)
    assert (failed["status"], failed["statusReason"]) == ("failed", "No matching resources")
    assert "tasks" not in failed["execution"]
    assert set(failed["events"]) == {"createTime"}  # removed by a rule before it started
    assert api.delete(f"/jobs/{job_id}").status_code == 400


def test_leave_in_queue_and_remove(api):
    job_id = api.submit(job("true", policies={"leaveInQueue": True}))
    api.wait(job_id)
    assert job_id in ids(api.get("/jobs").json())
    assert job_id not in ids(api.get("/jobs?completed=true&num=100").json())
    assert api.request("PUT", f"/jobs/{job_id}/remove").json() == {}
    assert job_id not in ids(api.get("/jobs").json())
    assert job_id in ids(api.get("/jobs?completed=true&num=100").json())
    response = api.request("PUT", f"/jobs/{job_id}/remove")
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Job is no longer in the queue"},
    )


# -- stdout / stderr -----------------------------------------------------------------------------


def python_cmd(code: str) -> str:
    return shlex.join(["python", "-c", code])


def test_output_offsets_are_bytes(api):
    code = "import sys; print('héllo wörld'); sys.stderr.write('érr\\n')"
    job_id = api.submit(job(python_cmd(code)))
    api.wait(job_id)
    out = api.get(f"/jobs/{job_id}/stdout")
    assert out.status_code == 200
    assert out.headers["Content-Type"].startswith("text/html")
    assert out.content == "héllo wörld\n".encode()
    assert api.get(f"/jobs/{job_id}/stdout?offset=2").content == "héllo wörld\n".encode()[2:]
    assert api.get(f"/jobs/{job_id}/stdout?offset=100").content == b""
    assert api.get(f"/jobs/{job_id}/stderr?offset=2&node=0").content == "érr\n".encode()[2:]


def test_output_is_readable_while_running(api):
    job_id = api.submit(job(python_cmd("import time; print('first', flush=True); time.sleep(60)")))
    deadline = time.monotonic() + 10
    while api.get(f"/jobs/{job_id}/stdout").content != b"first\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.describe(job_id)["status"] == "running"
    assert api.get(f"/jobs/{job_id}/stdout?offset=6").content == b""
    api.delete(f"/jobs/{job_id}")


def test_output_of_a_job_not_started_is_empty(api, blocker):
    job_id = api.submit(job("true", resources=TWO_CPUS))
    response = api.get(f"/jobs/{job_id}/stderr")
    assert (response.status_code, response.content) == (200, b"")
    assert api.describe(job_id)["status"] == "idle"
    api.delete(f"/jobs/{job_id}")


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_errors(api, emulator, stream):
    response = api.get(f"/jobs/987654/{stream}")
    assert (response.status_code, response.json()) == (400, {"error": "Job does not exist"})
    job_id = api.submit(job("true"))
    api.wait(job_id)
    (emulator.job_dir(job_id) / f"job.0.{stream[3:]}").unlink()
    response = api.get(f"/jobs/{job_id}/{stream}")
    assert (response.status_code, response.json()) == (400, {"error": f"{stream} does not exist"})


@pytest.mark.parametrize("query", ["?offset=-1", "?offset=x", "?node=first"])
def test_output_parameters_the_server_cannot_convert_crash(api, query):
    job_id = api.submit(job("true"))
    response = api.get(f"/jobs/{job_id}/stdout{query}")
    assert response.status_code == 500


def test_a_busy_port_raises_oserror_in_python(emulator):
    port = int(emulator.url.split(":")[2].split("/")[0])
    with pytest.raises(OSError):
        Emulator(port=port).start()
