"""The docs tell the truth: every --prominence-* flag and prominence_* resource the code accepts
is in docs/further.md and the README, and nothing they document is missing from the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence import ExecutorSettings
from snakemake_executor_plugin_prominence.detached import cli
from snakemake_executor_plugin_prominence.job import description

ROOT = Path(__file__).resolve().parent.parent
FLAG = re.compile(r"--prominence-[a-z][a-z-]*[a-z]")
RESOURCE = re.compile(r"\bprominence_[a-z][a-z_]*[a-z]\b")
# the log and report directories (.snakemake/prominence_logs/, prominence_reports/), a job
# event field and the events' log key
NOT_RESOURCES = {"prominence_logs", "prominence_id", "prominence_job_state", "prominence_reports"}

CODE_FLAGS = {
    "--prominence-" + f.name.replace("_", "-") for f in dataclasses.fields(ExecutorSettings)
}
CODE_FLAGS |= cli.cli_only_flags()  # prominence-snakemake submit's own flags
CODE_RESOURCES = set(description.PROMINENCE_RESOURCES)


@pytest.mark.parametrize("doc", ["docs/further.md", "README.md"])
def test_every_flag_is_documented_and_every_documented_flag_exists(doc):
    text = (ROOT / doc).read_text()
    documented = set(FLAG.findall(text))
    assert CODE_FLAGS - documented == set(), f"undocumented in {doc}"
    assert documented - CODE_FLAGS == set(), f"documented in {doc} but not in the code"


@pytest.mark.parametrize("doc", ["docs/further.md", "README.md"])
def test_every_resource_is_documented_and_every_documented_resource_exists(doc):
    text = (ROOT / doc).read_text()
    documented = set(RESOURCE.findall(text)) - NOT_RESOURCES
    # prominence_<x> in the troubleshooting table is a placeholder, not a resource name
    documented.discard("prominence_")
    assert CODE_RESOURCES - documented == set(), f"undocumented in {doc}"
    assert documented - CODE_RESOURCES == set(), f"documented in {doc} but not in the code"


def test_settings_help_is_there():
    for field in dataclasses.fields(ExecutorSettings):
        assert len(field.metadata["help"]) > 20, field.name
        assert field.default is not dataclasses.MISSING
        if field.type is bool:
            # a True default would become an unprefixed --no-<name> flag
            assert field.default is False, field.name
