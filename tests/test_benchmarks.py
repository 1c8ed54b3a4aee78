"""The benchmarks still run (at tiny sizes). They print figures; nothing here checks a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_quick(script: str, out: Path) -> subprocess.CompletedProcess:
    """``benchmarks/<script> --quick --out <out>``, which must succeed."""
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_quick_benchmark_produces_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    completed = run_quick("run.py", out)
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


def test_quick_events_benchmark_measures_every_variant(tmp_path):
    out = tmp_path / "events.json"
    completed = run_quick("events.py", out)
    rows = {row["variant"]: row for row in json.loads(out.read_text())}
    assert list(rows) == ["off", "lines", "file", "verbose"]
    assert all(row["jobs"] == 200 and row["cpu_ms_per_job"] > 0 for row in rows.values())
    # Counts, not times: the state picture makes no request of its own, and with events on
    # every job has its submitted and succeeded record, and a running one when a status check
    # saw it run (on a busy machine a short job may go from submitted to done between two).
    for row in rows.values():
        assert row["requests"] <= 200 + 2 * row["status_cycles"], row
    assert rows["off"]["event_records"] == rows["lines"]["event_records"] == 0
    for variant in ("file", "verbose"):
        assert 2 * 200 <= rows[variant]["event_records"] <= 3 * 200, rows[variant]
    assert "State picture and job events at 200 instant jobs" in completed.stdout


def test_quick_report_benchmark_measures_both_variants(tmp_path):
    out = tmp_path / "report.json"
    completed = run_quick("report.py", out)
    figures = json.loads(out.read_text())
    rows = {row["variant"]: row for row in figures["rows"]}
    assert list(rows) == ["off", "on"]
    assert all(row["jobs"] == 200 and row["cpu_ms_per_job"] > 0 for row in rows.values())
    # Counts, not times: every job has its record, and the files are there.
    assert (rows["off"]["records"], rows["on"]["records"]) == (0, 200)
    assert {"jobs.tsv", "jobs.jsonl", "rules.tsv"} <= set(rows["on"]["sizes"])
    assert 0 < figures["bytes_per_record"] < 2000
    assert "Run report at 200 instant jobs" in completed.stdout
