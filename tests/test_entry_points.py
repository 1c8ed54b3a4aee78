"""Every public entry point works from the installed package, whatever folder its code lives in:
Snakemake finds the plugin and its settings, the console scripts and the report's rebuild
command start, the head job's module exists, and the documented imports resolve.

Each command runs as a real process of this environment (as a user runs it), only with
``--help``: nothing is submitted.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

from snakemake_executor_plugin_prominence import Executor, ExecutorSettings, common_settings
from snakemake_executor_plugin_prominence.detached import headjob
from tests.processes import BIN

SETTING_FLAGS = [
    "--prominence-" + field.name.replace("_", "-") for field in dataclasses.fields(ExecutorSettings)
]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_snakemake_registry_finds_the_plugin_and_its_settings():
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    plugin = ExecutorPluginRegistry().get_plugin("prominence")
    assert plugin.executor is Executor
    assert plugin.settings_cls is ExecutorSettings
    assert plugin.common_settings is common_settings
    assert plugin.common_settings.non_local_exec and plugin.common_settings.job_deploy_sources


def test_snakemake_help_lists_every_setting():
    result = run(str(BIN / "snakemake"), "--executor", "prominence", "--help")
    assert len(SETTING_FLAGS) > 20
    missing = [flag for flag in SETTING_FLAGS if flag not in result.stdout]
    assert missing == []


def test_prominence_snakemake_help_lists_its_commands():
    result = run(str(BIN / "prominence-snakemake"), "--help")
    assert result.stdout.startswith("usage: prominence-snakemake")
    for command in ("submit", "list", "status", "logs", "cancel"):
        assert command in result.stdout


def test_the_report_rebuild_command_help():
    result = run(sys.executable, "-m", "snakemake_executor_plugin_prominence.report", "--help")
    assert "usage: python -m snakemake_executor_plugin_prominence.report" in result.stdout
    for flag in ("--run", "--prominence-url", "--prominence-token-file", "--prominence-report-dir"):
        assert flag in result.stdout
    # only the connection and report settings: not those of a run
    assert "--prominence-max-outage" not in result.stdout


def test_the_head_job_runs_a_module_that_exists():
    command = headjob.head_command("r1", ["--jobs", "1"], [], install=False)
    module = command.split(" -m ", 1)[1].split()[0]
    assert module == "snakemake_executor_plugin_prominence.detached.head"
    assert importlib.util.find_spec(module) is not None


def test_the_documented_imports_resolve():
    from snakemake_executor_plugin_prominence.emulator import Emulator

    assert callable(Emulator)
