"""Helpers for the emulator tests: a tiny API client, job builders, JWTs, polling."""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from typing import Any

import requests

#: how long the tokens of ``jwt_for`` live: longer than any test session
TEST_TOKEN_SECONDS = 7 * 24 * 3600


def jwt(claims: dict) -> str:
    """An unsigned-looking JWT with ``claims`` (the server never checks the signature)."""

    def part(data: dict) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def jwt_for(user: str, lifetime: float = TEST_TOKEN_SECONDS) -> str:
    """An access token of ``user`` that PROMINENCE (and the emulator) accepts: a JWT whose
    ``preferred_username`` is ``user`` and whose ``exp`` is ``lifetime`` seconds away.

    The real server refuses every token that is not a JWT or has no ``exp``, and so does the
    emulator: tests use this instead of an opaque string."""
    return jwt({"preferred_username": user, "sub": user, "exp": int(time.time() + lifetime)})


TOKEN = jwt_for("alice")


def job(cmd: str = "true", **top: Any) -> dict:
    """A minimal valid job running ``cmd``; keyword arguments replace top-level keys."""
    body = {
        "name": "test-job",
        "resources": {"cpus": 1, "memory": 1, "disk": 1, "walltime": 10},
        "tasks": [{"image": "snakemake/snakemake:v9", "runtime": "singularity", "cmd": cmd}],
    }
    body.update(copy.deepcopy(top))
    return body


class Api:
    """Calls one emulator as one user (``Authorization: Bearer <token>``)."""

    def __init__(self, url: str, token: str | None = TOKEN, scheme: str = "Bearer") -> None:
        self.url = url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"{scheme} {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def submit(self, body: dict) -> int:
        response = self.post("/jobs", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def describe(self, job_id: int) -> dict:
        response = self.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        [found] = response.json()
        return found

    def wait(self, job_id: int, *statuses: str, timeout: float = 20.0) -> dict:
        """Poll ``GET /jobs/<id>`` until the job is in one of ``statuses`` (default: terminal)."""
        wanted = statuses or ("completed", "failed", "killed", "deleted")
        deadline = time.monotonic() + timeout
        while True:
            found = self.describe(job_id)
            if found["status"] in wanted:
                return found
            assert time.monotonic() < deadline, f"job {job_id} stuck in {found['status']}"
            time.sleep(0.05)


def ids(listing: list[dict]) -> list[int]:
    return [entry["id"] for entry in listing]


def process_gone(pid: int) -> bool:
    """True if ``pid`` no longer exists or is a zombie (dead, waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
