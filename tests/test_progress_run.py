"""State lines and job events on a real run: one job succeeds, one fails, one cannot start
(the emulator holds it, as when no site has room) and is cancelled by Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.run import events
from tests.emulator_helpers import jwt_for
from tests.processes import BIN, plugin_args, plugin_env

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "states"
REASON = "No matching resources currently available"


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def phases(records: list[dict], rule: str) -> list[str]:
    return [r["phase"] for r in records if r["rule"] == rule]


def test_state_lines_and_events_of_a_run_with_a_job_that_cannot_start(tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    events_file = tmp_path / "events.jsonl"
    output_file = tmp_path / "snakemake.out"
    with Emulator(port=0, cpus=4, memory=16, state_dir=tmp_path / "emulator") as emu:
        emu.hold_idle(match=["snakejob.stuck.*"])
        with output_file.open("w") as output:
            process = subprocess.Popen(
                [
                    str(BIN / "snakemake"),
                    *plugin_args(
                        tmp_path / "storage", 3,
                        "--keep-going", "--verbose",
                        "--prominence-idle-threshold", "0",
                        "--prominence-events-file", str(events_file),
                    ),
                ],
                cwd=workdir,
                env={**os.environ, **plugin_env(emu.url, jwt_for("state"))},
                stdout=output,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.time() + 240
            while time.time() < deadline:
                records = read_events(events_file)
                done = {r["rule"] for r in records if r["phase"] in ("succeeded", "failed")}
                if done == {"ok", "bad"} and "queued" in phases(records, "stuck"):
                    break
                assert process.poll() is None, output_file.read_text()[-3000:]
                time.sleep(0.2)
            else:
                raise AssertionError(output_file.read_text()[-3000:])
            time.sleep(2)  # a state line or two after the last change
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        stats = emu.stats()
        (stuck_job,) = [j for j in emu.jobs() if j["name"].startswith("snakejob.stuck.")]
    text = output_file.read_text()
    records = read_events(events_file)

    # Job events: the sequence of each job, and every record valid against the schema.
    schema = json.loads(events.SCHEMA_FILE.read_text())
    for record in records:
        jsonschema.validate(record, schema, format_checker=jsonschema.FormatChecker())
    assert phases(records, "ok")[0] == "submitted" and phases(records, "ok")[-1] == "succeeded"
    assert "running" in phases(records, "ok")
    assert phases(records, "bad")[0] == "submitted" and phases(records, "bad")[-1] == "failed"
    assert phases(records, "stuck") == ["submitted", "queued", "cancelled"], text[-3000:]
    for rule in ("ok", "bad", "stuck"):
        seen = phases(records, rule)
        order = [events.PHASES.index(phase) for phase in seen]
        assert order == sorted(order), (rule, seen)
    by_phase = {(r["rule"], r["phase"]): r for r in records}
    succeeded, failed = by_phase["ok", "succeeded"], by_phase["bad", "failed"]
    assert (succeeded["status"], succeeded["exit_code"], succeeded["site"]) == (
        "completed", 0, "Emulator-Local",
    )  # fmt: skip
    assert (failed["status"], failed["exit_code"], failed["site"]) == (
        "completed", 1, "Emulator-Local",
    )  # fmt: skip
    assert succeeded["started"] >= succeeded["created"] and succeeded["ended"] is not None
    queued, cancelled = by_phase["stuck", "queued"], by_phase["stuck", "cancelled"]
    assert (queued["status"], queued["reason"]) == ("waiting", REASON)
    assert (cancelled["status"], cancelled["reason"]) == ("waiting", REASON)
    assert cancelled["prominence_id"] == stuck_job["id"]
    assert stuck_job["status"] == "deleted"
    assert {r["run_id"] for r in records} == {records[0]["run_id"]}
    assert {r["attempt"] for r in records} == {1}
    # --verbose: the same records on Snakemake's log, one line each.
    assert f"PROMINENCE job {stuck_job['id']} (rule stuck, job " in text
    assert f"): queued (waiting, {REASON})" in text

    # State lines: counts, sites, the waiting job and its reason.
    lines = re.findall(r"^PROMINENCE: .*$", text, re.MULTILINE)
    lines = [line for line in lines if not line.startswith("PROMINENCE: run ")]
    stuck_jobid = by_phase["stuck", "submitted"]["jobid"]
    waiting = (
        f"1 queued longer than 0 min: PROMINENCE job {stuck_job['id']} (rule stuck, "
        f"job {stuck_jobid}) waiting for "
    )
    named = [line for line in lines if waiting in line and line.endswith(f": {REASON}.")]
    assert named, lines
    assert any(line.startswith("PROMINENCE: 1 waiting;") for line in named), lines
    finished = [line for line in lines if "finished since the last report" in line]
    assert sum(int(re.search(r"(\d+) finished", line).group(1)) for line in finished) == 2
    assert all(" at Emulator-Local " in line for line in finished), finished
    assert any("1 succeeded" in line for line in finished)
    assert any("1 failed" in line for line in finished)

    # No request of its own: the status checks list jobs in batches; no job is read singly,
    # and only the failed job's logs are fetched.
    requests = stats["requests"]
    assert requests.get("GET /jobs/<id>", 0) == 0
    assert requests.get("GET /jobs/<id>/stdout", 0) == requests.get("GET /jobs/<id>/stderr") == 1
