"""Snakemake's own executor-plugin test harness, run against the emulator.

``TestWorkflowsBase`` runs its ``simple`` and ``groups`` workflows through the plugin with no
shared file system: sources and files travel through the ``fs`` storage provider, and every
job is a real PROMINENCE job that the emulator executes with ``python -m snakemake``. The
harness itself only checks that the run does not raise; we also check the outputs arrived.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from snakemake.common.tests import TestWorkflowsBase
from snakemake.settings import types as settings

from snakemake_executor_plugin_prominence import ExecutorSettings
from tests.emulator_helpers import jwt_for

pytestmark = pytest.mark.e2e

EXPECTED_OUTPUTS = {
    "simple": [
        "test1.out",
        "test2.out",
        "test3.out",
        "res/somedir1.out",
        "res/somedir2/subdir.out",
    ],
    "groups": [f"test{n}.{i}.out" for n in (1, 2) for i in (1, 2, 3)] + ["test3.out"],
}


class TestConformance(TestWorkflowsBase):
    __test__ = True

    @pytest.fixture(autouse=True)
    def _use_emulator(self, emulator, tmp_path_factory):
        self.emulator = emulator
        self.storage_prefix = tmp_path_factory.mktemp("storage")

    def get_executor(self) -> str:
        return "prominence"

    def get_executor_settings(self) -> ExecutorSettings:
        # Jobs run with the emulator's interpreter, which has the storage plugins already.
        return ExecutorSettings(
            url=self.emulator.url, token=jwt_for("conformance"), storage_plugins="image"
        )

    def get_assume_shared_fs(self) -> bool:
        return False

    def get_default_storage_provider(self) -> str:
        return "fs"

    def get_default_storage_prefix(self) -> str:
        return str(self.storage_prefix)

    def get_default_storage_provider_settings(self):
        return None

    def get_remote_execution_settings(self) -> settings.RemoteExecutionSettings:
        return settings.RemoteExecutionSettings(
            seconds_between_status_checks=1, envvars=self.get_envvars()
        )

    def run_workflow(self, test_name, tmp_path, deployment_method=frozenset()):
        before = {job["id"] for job in self.emulator.jobs()}
        super().run_workflow(test_name, tmp_path, deployment_method)
        for output in EXPECTED_OUTPUTS[test_name]:
            assert (Path(self.storage_prefix) / output).exists(), output
        ours = [job for job in self.emulator.jobs() if job["id"] not in before]
        assert ours, "no job reached the emulator"
        assert all(job["status"] == "completed" for job in ours), [j["status"] for j in ours]
