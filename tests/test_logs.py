"""Where job logs go, what is redacted, and --prominence-keep-logs on a real run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.job import logs
from tests.emulator_helpers import jwt_for
from tests.jobs import FakeGroupJob, FakeJob
from tests.processes import plugin_args, plugin_env, run_snakemake

WORKFLOWS = Path(__file__).resolve().parent / "workflows"


def test_log_path_by_rule_wildcards_and_group():
    job = FakeJob(name="map", wildcards={"sample": "A", "dir": "x/y z"})
    assert logs.log_path(job, 42, Path("L")) == Path("L/map/sample_A/dir_x_y_z/42.log")
    assert logs.log_path(FakeJob(name="all"), 7, Path("L")) == Path("L/all/7.log")
    group = FakeGroupJob(name="grp_a_b")
    group.groupid = "grp"
    assert logs.log_path(group, 9, Path("L")) == Path("L/groups/grp/9.log")


def test_redact_replaces_every_secret_longest_first():
    text = "token abcdef1234 and abcdef1234XYZ and pw hunter22"
    assert logs.redact(text, ["abcdef1234", "abcdef1234XYZ", "hunter22", "", "ab"]) == (
        "token <redacted> and <redacted> and pw <redacted>"
    )


def test_saved_log_has_header_streams_and_no_secret(tmp_path):
    path = logs.save_job_log(
        tmp_path / "a" / "1.log",
        "# PROMINENCE job 1 (x): completed with exit code 1",
        {"stdout": "out line", "stderr": "err SECRETVALUE\n"},
        ["SECRETVALUE"],
    )
    assert path.read_text() == (
        "# PROMINENCE job 1 (x): completed with exit code 1\n"
        "\n===== stdout =====\nout line\n"
        "\n===== stderr =====\nerr <redacted>\n"
    )


@pytest.mark.e2e
def test_keep_logs_saves_the_logs_of_a_successful_job(tmp_path, emulator):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "one_job", workdir)
    result = run_snakemake(
        plugin_args(tmp_path / "storage", 1, "--prominence-keep-logs"),
        cwd=workdir,
        env=plugin_env(emulator.url, jwt_for("keep-logs")),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (log,) = (workdir / ".snakemake" / "prominence_logs" / "hello").glob("*.log")
    text = log.read_text()
    assert "completed with exit code 0" in text.splitlines()[0]
    assert "rule hello:" in text  # the remote Snakemake's own output, from the job's stderr
