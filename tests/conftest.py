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


#: The longest test files, longest first (wall time on a loaded 2-core machine, from
#: `--durations`): started first, so that no worker begins one of them while the others are
#: nearly done. Only the order changes; a file missing here just runs with the other slow ones.
LONGEST_FIRST = (
    "test_wheel_install.py",
    "test_adoption_run.py",
    "test_detached.py",
    "test_token_pause.py",
    "test_s3_storage.py",
    "test_resilience.py",
    "test_queue_deadline_run.py",
    "test_report_run.py",
    "test_benchmarks.py",
    "test_detached_s3.py",
    "test_secrets.py",
    "test_failure_diagnostics.py",
    "test_bad_resources.py",
    "test_under_faults.py",
    "test_real_server_fidelity.py",
    "test_conformance.py",
    "test_example_workflow.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the other slow tests (end-to-end runs, the build), fast
    ones last, each group in its usual order: parallel workers (scripts/test.sh) then take the
    long files at the start and fill the end with short tests."""

    def rank(item: pytest.Item) -> tuple[int, bool]:
        name = item.path.name
        longest = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        slow = item.get_closest_marker("e2e") or item.get_closest_marker("slow")
        return longest, not slow

    items.sort(key=rank)
