"""The queue limit on a real run: a job the emulator keeps waiting is deleted by the plugin
when its limit passes and fails with the limit and PROMINENCE's reason; a job that started
under the same limit is left alone; the run report still has the deleted job's details.

The limit is in whole minutes, so this run takes a little over one. The emulator's own
``maximumTimeInQueue`` is stretched tenfold (``time_scale``): only the plugin acts here, as on
the real server for a job queued for a slot (which its rule never removes).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from tests.emulator_helpers import jwt_for
from tests.processes import plugin_args, plugin_env, run_snakemake

pytestmark = pytest.mark.e2e

WORKFLOW = Path(__file__).resolve().parent / "workflows" / "states"
REASON = "No matching resources currently available"


def test_a_job_waiting_past_its_limit_is_deleted_and_fails_with_the_reason(tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOW, workdir)
    events_file = tmp_path / "events.jsonl"
    with Emulator(port=0, cpus=4, memory=16, time_scale=10, state_dir=tmp_path / "emulator") as emu:
        emu.hold_idle(match=["snakejob.stuck.*"])
        result = run_snakemake(
            plugin_args(
                tmp_path / "storage", 2, "ok.txt", "stuck.txt", "--keep-going",
                "--prominence-max-time-in-queue", "1",
                "--prominence-events-file", str(events_file),
            ),
            workdir,
            plugin_env(emu.url, jwt_for("deadline")),
            timeout=400,
        )  # fmt: skip
        jobs = {job["name"].split(".")[1]: job for job in emu.jobs()}
    log = result.stderr
    assert result.returncode != 0, log[-3000:]
    stuck, ok = jobs["stuck"], jobs["ok"]
    assert stuck["status"] == "deleted" and ok["status"] == "completed"
    assert stuck["policies"]["maximumTimeInQueue"] == 1  # the policy is still sent

    pattern = (
        rf"PROMINENCE job {stuck['id']} waited 1\.\d min in the queue without starting, over "
        r"its limit of 1 min \(--prominence-max-time-in-queue\), and was deleted by this run; "
        rf"PROMINENCE last listed it as waiting: {REASON}"
    )
    assert re.search(pattern, log), log[-3000:]

    records = [json.loads(line) for line in events_file.read_text().splitlines()]
    stuck_records = [r for r in records if r["rule"] == "stuck"]
    assert [r["phase"] for r in stuck_records] == ["submitted", "queued", "failed"]
    assert stuck_records[-1]["status"] == "deleted"
    assert stuck_records[-1]["reason"].startswith("waited 1.")

    # The run report has the deleted job, from PROMINENCE's own details.
    [report_dir] = (workdir / ".snakemake" / "prominence_reports").iterdir()
    rows = {
        row["rule"]: row
        for row in map(json.loads, (report_dir / "jobs.jsonl").read_text().splitlines())
    }
    assert rows["stuck"]["prominence_id"] == stuck["id"]
    assert rows["stuck"]["status"] == "deleted"
    assert rows["ok"]["status"] == "completed"
