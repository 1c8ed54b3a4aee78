"""The benchmarks still run (at tiny sizes). They print figures; nothing here checks a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_quick_benchmark_produces_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(out.read_text())
    (submission,) = figures["submission"]
    assert submission["jobs"] == 20 and submission["plugin_s"] > 0
    (polling,) = figures["polling"]
    # Counts, not times: one listing request for 50 jobs, against 50 single reads.
    assert polling["plugin_requests"] == 1 and polling["per_job_requests"] == 50
    assert figures["overhead"]["jobs"] == 200 and figures["overhead"]["cpu_ms_per_job"] > 0
    assert figures["end_to_end"]["outputs"] == 3
    assert figures["emulator"]["jobs_held"] == 300 and figures["emulator"]["ids_listed"] == 100
    assert "Polling: one status cycle vs one GET per job" in completed.stdout
