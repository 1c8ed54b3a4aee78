"""Mistakes in the set-up stop the run at once, with a message that says what to do, before
anything is submitted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.emulator_helpers import jwt, jwt_for
from tests.processes import plugin_args, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "one_job"
TOKEN = jwt_for("startup")


@pytest.mark.parametrize(
    ("env", "extra", "message"),
    [
        ({"PROMINENCE_TOKEN": TOKEN}, [], "No PROMINENCE URL: set --prominence-url"),
        (
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "http://prominence.example.org/api/v1"},
            [],
            "Refusing to send the PROMINENCE token over plain HTTP to prominence.example.org",
        ),
        ({"PROMINENCE_URL": "EMULATOR"}, [], "No PROMINENCE token found"),
        (  # PROMINENCE reads a missing exp as 0: such a token can never work
            {"PROMINENCE_TOKEN": "opaque-startup-value", "PROMINENCE_URL": "EMULATOR"},
            [],
            "The PROMINENCE token from the PROMINENCE_TOKEN environment variable is not a JWT "
            "access token with an expiry (an `exp` claim): PROMINENCE only accepts such tokens",
        ),
        (
            {"PROMINENCE_TOKEN": jwt({"sub": "startup"}), "PROMINENCE_URL": "EMULATOR"},
            [],
            "is not a JWT access token with an expiry",
        ),
        (
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "EMULATOR"},
            ["--prominence-submit-concurrency", "0"],
            "--prominence-submit-concurrency 0: must be at least 1.",
        ),
        (
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "EMULATOR"},
            ["--prominence-labels", "bad_key=x"],
            "--prominence-labels: label 'bad_key=x' is invalid",
        ),
        (
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "EMULATOR"},
            ["--prominence-ca-bundle", "/nonexistent/ca.pem"],
            "--prominence-ca-bundle: /nonexistent/ca.pem is not a file.",
        ),
        (  # a default image no PROMINENCE worker can pull, ours or Snakemake's
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "EMULATOR"},
            ["--prominence-container-image", "library://me/tools/snakemake:9"],
            "--prominence-container-image 'library://me/tools/snakemake:9' cannot be pulled",
        ),
        (
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "EMULATOR"},
            ["--container-image", "oras://ghcr.io/me/snakemake:9"],
            "--container-image 'oras://ghcr.io/me/snakemake:9' cannot be pulled",
        ),
        (  # the server's address without the API's path: a user's first mistake
            {"PROMINENCE_TOKEN": TOKEN, "PROMINENCE_URL": "EMULATOR_ROOT"},
            [],
            "is not a PROMINENCE API: GET http://127.0.0.1:",
        ),
    ],
)
def test_setup_mistakes_stop_the_run_before_submitting(tmp_path, emulator, env, extra, message):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    root = emulator.url.rsplit("/api/v1", 1)[0]
    urls = {"EMULATOR": emulator.url, "EMULATOR_ROOT": root}
    env = {key: urls.get(value, value) for key, value in env.items()}
    env.setdefault("PROMINENCE_URL", "")
    env.setdefault("PROMINENCE_TOKEN", "")
    env["HOME"] = str(tmp_path)  # no ~/.prominence/token to fall back to
    posts = emulator.stats()["requests"].get("POST /jobs", 0)
    result = run_snakemake(plugin_args(tmp_path / "storage", 1, *extra), workdir, env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if env["PROMINENCE_TOKEN"]:
        assert env["PROMINENCE_TOKEN"] not in result.stderr + result.stdout
    assert emulator.stats()["requests"].get("POST /jobs", 0) == posts
