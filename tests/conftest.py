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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests (end-to-end runs, the build) first, fast ones last, each group in its usual
    order: parallel workers (scripts/test.sh) then take the long files at the start and fill
    the end with short tests, instead of one worker starting a long file when the others are
    done."""
    items.sort(
        key=lambda item: not (item.get_closest_marker("e2e") or item.get_closest_marker("slow"))
    )
