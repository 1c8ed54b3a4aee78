"""Shared fixtures: one in-process PROMINENCE emulator per test session, on a free port."""

from __future__ import annotations

import signal

import pytest

# Tests stop Snakemake runs with SIGINT, as a user's Ctrl-C does. A test session started with
# SIGINT ignored (a shell's background job: `pytest ... &`) would pass that on to every process
# it starts, and those runs would never hear it; hear it here, so children start with the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """A real HTTP server on loopback that really runs the jobs it is given."""
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, state_dir=tmp_path_factory.mktemp("emulator"), cpus=4, memory=16) as emu:
        yield emu
