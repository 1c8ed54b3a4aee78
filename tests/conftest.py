"""Shared fixtures: one in-process PROMINENCE emulator per test session, on a free port."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """A real HTTP server on loopback that really runs the jobs it is given."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, state_dir=tmp_path_factory.mktemp("emulator"), cpus=4, memory=16) as emu:
        yield emu
