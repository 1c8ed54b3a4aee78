"""Latency and transient faults: what a client must survive (DESIGN "Tests", layer 5)."""

from __future__ import annotations

import time

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import TOKEN, Api, ids, job

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def retrying_session() -> requests.Session:
    """Retries idempotent calls on 502/503 and on dropped connections, like a careful client."""
    retry = Retry(
        total=30,
        connect=30,
        read=30,
        status=30,
        status_forcelist=(502, 503),
        allowed_methods=("GET", "DELETE"),
        backoff_factor=0,
        raise_on_status=True,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.headers.update(AUTH)
    return session


def test_latency_is_added_to_api_requests_only():
    with Emulator(instant=True, latency=0.25) as emu:
        started = time.monotonic()
        assert requests.get(emu.url + "/jobs", headers=AUTH, timeout=10).status_code == 200
        assert time.monotonic() - started >= 0.25
        started = time.monotonic()
        requests.get(emu.root_url + "/_emulator/stats", timeout=10)
        assert time.monotonic() - started < 0.25


def test_every_fault_kind_happens_and_stats_never_fault():
    with Emulator(instant=True, fault_rate=1.0, seed=3) as emu:
        outcomes = set()
        for _ in range(40):
            try:
                response = requests.get(emu.url + "/jobs", headers=AUTH, timeout=10)
            except requests.ConnectionError:
                outcomes.add("dropped")
            else:
                assert response.headers["Content-Type"].startswith("text/html")
                assert "<html>" in response.text
                outcomes.add(response.status_code)
            stats = requests.get(emu.root_url + "/_emulator/stats", timeout=10)
            assert stats.status_code == 200
        assert outcomes == {502, 503, "dropped"}
        stats = emu.stats()
        assert stats["requests"]["GET /jobs"] == 40
        assert stats["total_faults"] == 40
        assert set(stats["faults"]) == {"http_502", "http_503", "drop"}


def test_lost_answers_to_post_still_create_jobs():
    with Emulator(instant=True, job_seconds=60, fault_rate=1.0, seed=11) as emu:
        for _ in range(30):
            try:
                response = requests.post(emu.url + "/jobs", json=job(), headers=AUTH, timeout=10)
            except requests.ConnectionError:
                continue
            assert response.status_code in (502, 503)
        stats = emu.stats()
        lost = stats["faults"]["lost_response_502"] + stats["faults"]["lost_response_drop"]
        assert lost > 0
        assert stats["faults"]["lost_created_jobs"] == lost
        assert len(emu.jobs()) == lost  # every lost answer is a job the client does not know


def test_a_retrying_client_gets_correct_answers_through_faults():
    with Emulator(instant=True, job_seconds=60, fault_rate=0.3, seed=42) as emu:
        plain = Api(emu.url)
        known: list[int] = []
        while len(known) < 5:  # POST is not retried blindly: a lost answer may be a created job
            try:
                response = plain.post("/jobs", json=job())
            except requests.ConnectionError:
                continue
            if response.status_code == 201:
                known.append(response.json()["id"])
        session = retrying_session()
        query = emu.url + "/jobs?id=" + ",".join(map(str, known))
        for _ in range(40):
            response = session.get(query, timeout=10)
            assert response.status_code == 200
            assert sorted(ids(response.json())) == sorted(known)
        response = session.delete(f"{emu.url}/jobs/{known[0]}", timeout=10)
        # A retried DELETE whose first answer was lost sees "No such job(s)": already deleted.
        assert (response.status_code, response.json()) in (
            (200, {}),
            (400, {"error": "No such job(s)"}),
        )
        assert emu.job(known[0])["status"] == "deleted"
        stats = emu.stats()
        assert stats["total_faults"] > 0
        assert stats["faults"].get("drop", 0) > 0
        assert stats["requests"]["GET /jobs"] >= 40
        assert len(emu.jobs()) == 5 + stats["faults"].get("lost_created_jobs", 0)


@pytest.mark.parametrize("seed", [1, 2])
def test_faults_are_reproducible(seed):
    def run() -> list[object]:
        with Emulator(instant=True, fault_rate=0.5, seed=seed) as emu:
            seen: list[object] = []
            for _ in range(20):
                try:
                    seen.append(
                        requests.get(emu.url + "/jobs", headers=AUTH, timeout=10).status_code
                    )
                except requests.ConnectionError:
                    seen.append("dropped")
            return seen

    assert run() == run()


SUBMIT_MESSAGES = {
    "Unable to create job sandbox",
    "Unable to write input file to disk",
    "Job submission failed with an exception: Failed to create new cluster.",
    "Job submission failed with an exception: Failed to commit and disconnect from queue.",
}
INPUT = {"filename": "in.txt", "content": "aGk="}


def submit_many(emu: Emulator, count: int, **top: object) -> list[requests.Response]:
    return [
        requests.post(emu.url + "/jobs", json=job(**top), headers=AUTH, timeout=10)
        for _ in range(count)
    ]


def test_submission_faults_are_400s_and_some_create_the_job_anyway():
    """create_job.py and jobs.py: backend failures after validation are 400s with these
    messages; only HTCondor's part can fail after the job was queued."""
    with Emulator(instant=True, job_seconds=0.05, submit_fault_rate=1.0, seed=5) as emu:
        answers = submit_many(emu, 40, labels={"batch": "faulty"}, inputs=[INPUT])
        assert {a.status_code for a in answers} == {400}
        messages = [a.json()["error"] for a in answers]
        assert set(messages) == SUBMIT_MESSAGES  # every kind happens (a job with inputs)
        stats = emu.stats()["submit_faults"]
        assert stats["total"] == 40 and stats["input"] > 0
        created = [j for j in emu.jobs() if j["labels"] == {"batch": "faulty"}]
        assert len(created) == stats["created_anyway"] > 0
        assert stats["created_anyway"] == messages.count(
            "Job submission failed with an exception: Failed to commit and disconnect from queue."
        )
        # A job created anyway is a real job of the user's: listed, and it runs.
        api = Api(emu.url)
        assert api.wait(created[0]["id"], timeout=10)["status"] == "completed"
        found = api.get("/jobs?all&constraint=batch=faulty").json()
        assert sorted(ids(found)) == sorted(j["id"] for j in created)


def test_submission_faults_come_after_validation_and_at_the_given_rate():
    with Emulator(instant=True, job_seconds=60, submit_fault_rate=0.3, seed=8) as emu:
        invalid = requests.post(
            emu.url + "/jobs", json=job(resources={"cpus": 1}), headers=AUTH, timeout=10
        )
        assert invalid.json() == {"error": "memory or memoryPerCpu (in GB) must be defined"}
        answers = submit_many(emu, 60)  # no inputs: no input file to fail writing
        faulted = [a for a in answers if a.status_code == 400]
        assert 5 <= len(faulted) <= 35
        assert all(a.status_code == 201 for a in answers if a not in faulted)
        assert "Unable to write input file to disk" not in {a.json()["error"] for a in faulted}
        stats = emu.stats()["submit_faults"]
        assert (stats["total"], stats["input"]) == (len(faulted), 0)


def test_submission_faults_are_reproducible_with_a_seed():
    def outcomes() -> list[object]:
        with Emulator(instant=True, submit_fault_rate=0.5, seed=21) as emu:
            return [a.json().get("error", a.status_code) for a in submit_many(emu, 20)]

    first = outcomes()
    assert first == outcomes() and len(set(first)) > 1
