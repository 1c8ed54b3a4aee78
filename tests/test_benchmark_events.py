"""The events benchmark still runs (at a tiny size). It prints figures; nothing checks a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "events.py"


def test_quick_events_benchmark_measures_every_variant(tmp_path):
    out = tmp_path / "events.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {row["variant"]: row for row in json.loads(out.read_text())}
    assert list(rows) == ["off", "lines", "file", "verbose"]
    assert all(row["jobs"] == 200 and row["cpu_ms_per_job"] > 0 for row in rows.values())
    # Counts, not times: the state picture makes no request of its own, and with events on
    # every job has its submitted, running and succeeded record.
    for row in rows.values():
        assert row["requests"] <= 200 + 2 * row["status_cycles"], row
    assert rows["off"]["event_records"] == rows["lines"]["event_records"] == 0
    assert rows["file"]["event_records"] == rows["verbose"]["event_records"] == 600
    assert "State picture and job events at 200 instant jobs" in completed.stdout
