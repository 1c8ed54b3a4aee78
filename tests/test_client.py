"""The API client over real HTTP against the emulator on loopback."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest

from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import (
    AuthenticationError,
    ProminenceClient,
    ProminenceError,
    RequestRejected,
    ServiceUnavailable,
    WrongURL,
    check_base_url,
)
from tests.emulator_helpers import jwt_for


def job(cmd: str = "/bin/sh -c 'echo hello; echo oops >&2'", **resources) -> dict:
    return {
        "name": "client-test",
        "resources": {"nodes": 1, "cpus": 1, "memory": 1, "disk": 1, **resources},
        "tasks": [{"image": "busybox", "runtime": "singularity", "cmd": cmd}],
        "labels": {"suite": "client"},
    }


@pytest.fixture
def client(emulator):
    c = ProminenceClient(emulator.url, TokenProvider(jwt_for("client-test"), None, {}))
    yield c
    c.close()


def wait_until_finished(client: ProminenceClient, job_id: int, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        detail = client.get_job(job_id)
        if detail and detail["status"] in ("completed", "failed", "killed", "deleted"):
            return detail
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_submit_list_detail_and_output(client):
    job_id = client.create_job(job())
    assert isinstance(job_id, int)
    detail = wait_until_finished(client, job_id)
    assert detail["status"] == "completed"
    assert detail["execution"]["tasks"][0]["exitCode"] == 0
    assert client.read_output(job_id, "stdout") == b"hello\n"
    assert client.read_output(job_id, "stderr") == b"oops\n"
    assert client.read_output(job_id, "stdout", offset=2) == b"llo\n"
    listing = client.list_jobs([job_id, 999999])
    assert [entry["id"] for entry in listing] == [job_id]
    assert listing[0]["status"] == "completed"


def test_batch_listing_returns_every_known_id(client):
    ids = [client.create_job(job("/bin/true")) for _ in range(5)]
    listed = {entry["id"] for entry in client.list_jobs([*ids, 424242])}
    assert listed == set(ids)


def test_find_jobs_by_label(client):
    description = job("/bin/sleep 30")
    description["labels"] = {"findme": "abc123"}
    job_id = client.create_job(description)
    assert [j["id"] for j in client.find_jobs("findme=abc123")] == [job_id]
    assert client.delete_jobs([job_id]) is True
    assert client.find_jobs("findme=abc123") == []
    assert [j["id"] for j in client.find_jobs("findme=abc123", include_finished=True)] == [job_id]


def test_delete_running_then_already_gone(client):
    job_id = client.create_job(job("/bin/sleep 60"))
    assert client.delete_jobs([job_id]) is True
    detail = wait_until_finished(client, job_id)
    assert detail["status"] == "deleted"
    assert detail["statusReason"] == "Job deleted by user"
    # Nothing left to remove: the server says "No such job(s)", which is not an error here.
    assert client.delete_jobs([job_id]) is False


def test_unknown_job_is_none(client):
    assert client.get_job(987654321) is None


def test_validation_error_carries_the_servers_message(client):
    bad = job()
    bad["resources"]["memory"] = 1.5
    with pytest.raises(RequestRejected) as caught:
        client.create_job(bad)
    assert caught.value.status == 400
    assert str(caught.value) == "memory must be an integer"


def test_unauthenticated(emulator):
    client = ProminenceClient(emulator.url, TokenProvider(jwt_for("x"), None, {}))
    client._session.auth = None  # no Authorization header at all
    with pytest.raises(AuthenticationError, match="Authentication failure"):
        client.list_jobs([1])


def test_a_404_says_the_url_is_wrong_and_what_it_should_be(emulator):
    """The real server answers every jobs path with JSON (an unknown job: 200 []), so a 404,
    an HTML page here, means there is no PROMINENCE API at that address."""
    wrong_prefix = emulator.url.rsplit("/api/v1", 1)[0] + "/nowhere"
    client = ProminenceClient(wrong_prefix, TokenProvider(jwt_for("x"), None, {}))
    with pytest.raises(WrongURL) as caught:
        client.list_jobs([1])
    assert caught.value.status == 404
    message = str(caught.value)
    assert message.startswith(f"{wrong_prefix} is not a PROMINENCE API: GET {wrong_prefix}/jobs")
    assert "e.g. https://eosc.prominence.cloud/api/v1" in message and "<" not in message


def test_no_server_is_service_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ProminenceClient(
        f"http://127.0.0.1:{port}/api/v1",
        TokenProvider(jwt_for("x"), None, {}),
        attempts=1,
        backoff=0,
    )
    with pytest.raises(ServiceUnavailable):
        client.list_jobs([1])


def test_token_never_in_errors(emulator):
    secret = "very-secret-token-0123456789"
    client = ProminenceClient(emulator.url, TokenProvider(secret, None, {}))
    with pytest.raises(ProminenceError) as caught:
        client.create_job({"tasks": []})
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert secret not in repr(client)


@pytest.mark.parametrize(
    "url",
    ["http://prominence.example.org/api/v1", "http://10.0.0.1/api/v1", "ftp://x/api", "nonsense"],
)
def test_plain_http_only_to_loopback(url):
    with pytest.raises(ValueError):
        check_base_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://eosc.prominence.cloud/api/v1/",
        "http://127.0.0.1:8642/api/v1",
        "http://localhost:1/x",
        "http://[::1]:8642/api/v1",
    ],
)
def test_https_and_loopback_accepted(url):
    assert check_base_url(url) == url.rstrip("/")


def jwt(exp: float) -> str:
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), 'sub': 'alice'})}.c2ln"


def test_401_rereads_the_token_file_once_and_recovers(emulator, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(json.dumps({"access_token": jwt(time.time() - 10)}))
    client = ProminenceClient(emulator.url, TokenProvider(None, token_file, {}))
    with pytest.raises(AuthenticationError) as caught:
        client.list_jobs([1])
    assert f"the token file {token_file}" in str(caught.value)

    # The user refreshes the file in another terminal: the next call recovers by itself.
    token_file.write_text(json.dumps({"access_token": jwt(time.time() + 3600)}))
    assert client.list_jobs([1]) == []
    assert client.tokens.current().seconds_left() > 3000
