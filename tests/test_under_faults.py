"""With a third of all API requests failing (HTML 502/503, dropped connections, and job
creations whose answer is lost), whole workflows still complete, with exactly one PROMINENCE
job per Snakemake job.

The example workflow is the one run here: it has group jobs (simulate and count of a sample),
a script rule and jobs that wait for others, as Snakemake's own harness workflows have (which
run without faults in test_conformance.py and on S3 in test_s3_storage.py)."""

from __future__ import annotations

import pytest
import requests

from tests.emulator_helpers import jwt_for
from tests.processes import copy_example, emulator_process, files_under, run_snakemake

pytestmark = pytest.mark.e2e


def test_example_workflow_under_faults(tmp_path):
    local = copy_example(tmp_path / "local")
    assert run_snakemake(["--cores", "2"], cwd=local).returncode == 0

    remote = copy_example(tmp_path / "remote")
    storage = tmp_path / "storage"
    with emulator_process(tmp_path / "state", "--fault-rate", "0.3", "--seed", "5") as url:
        result = run_snakemake(
            ["--profile", "profiles/emulator", "--default-storage-prefix", str(storage)],
            cwd=remote,
            env={"PROMINENCE_URL": url, "PROMINENCE_TOKEN": jwt_for("faults")},
        )
        stats = requests.get(url.rsplit("/api/v1", 1)[0] + "/_emulator/stats", timeout=10).json()
    assert result.returncode == 0, result.stderr[-5000:]
    assert files_under(storage / "results") == files_under(local / "results")
    # 3 group jobs (simulate + count per sample), merge and report: 5 jobs, each exactly once.
    assert sum(stats["jobs"].values()) == 5
    assert stats["jobs"]["completed"] == 5
    assert stats["total_faults"] > 0
