"""With a third of all API requests failing (HTML 502/503, dropped connections, and job
creations whose answer is lost), whole workflows still complete, with exactly one PROMINENCE
job per Snakemake job."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from tests import test_conformance
from tests.emulator_helpers import jwt_for
from tests.processes import copy_example, emulator_process, files_under, run_snakemake

pytestmark = pytest.mark.e2e

REMOTE_JOBS = {"simple": 5, "groups": 4}


@pytest.fixture(scope="module")
def faulty_emulator(tmp_path_factory):
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(
        port=0,
        cpus=4,
        memory=16,
        fault_rate=0.3,
        seed=2026,
        state_dir=tmp_path_factory.mktemp("faulty"),
    ) as emu:
        yield emu


class TestConformanceUnderFaults(test_conformance.TestConformance):
    @pytest.fixture(autouse=True)
    def _use_emulator(self, faulty_emulator, tmp_path_factory):
        self.emulator = faulty_emulator
        self.storage_prefix = tmp_path_factory.mktemp("storage")

    def run_workflow(self, test_name, tmp_path, deployment_method=frozenset()):
        before = {job["id"] for job in self.emulator.jobs()}
        faults_before = self.emulator.stats()["total_faults"]
        super().run_workflow(test_name, tmp_path, deployment_method)
        ours = [job for job in self.emulator.jobs() if job["id"] not in before]
        per_job = Counter(job["labels"]["snakemakejob"] for job in ours)
        assert len(ours) == REMOTE_JOBS[test_name], per_job
        assert set(per_job.values()) == {1}  # no Snakemake job submitted twice
        assert self.emulator.stats()["total_faults"] > faults_before


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
