"""The run report benchmark still runs (at a tiny size). It prints figures; nothing checks a
time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "report.py"


def test_quick_report_benchmark_measures_both_variants(tmp_path):
    out = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(out.read_text())
    rows = {row["variant"]: row for row in figures["rows"]}
    assert list(rows) == ["off", "on"]
    assert all(row["jobs"] == 200 and row["cpu_ms_per_job"] > 0 for row in rows.values())
    # Counts, not times: every job has its record, and the files are there.
    assert (rows["off"]["records"], rows["on"]["records"]) == (0, 200)
    assert {"jobs.tsv", "jobs.jsonl", "rules.tsv"} <= set(rows["on"]["sizes"])
    assert 0 < figures["bytes_per_record"] < 2000
    assert "Run report at 200 instant jobs" in completed.stdout
