"""The run report of real runs through the emulator: what the files say about jobs that burn
CPU, sleep, hold memory and fail; the rebuild from PROMINENCE alone; NA where a site reports
no memory; a report after Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.emulator import Emulator
from snakemake_executor_plugin_prominence.report import __main__ as rebuild_command
from snakemake_executor_plugin_prominence.report import rows as report_rows
from tests.emulator_helpers import jwt_for, wait_until
from tests.processes import BIN, emulator_process, plugin_args, plugin_env, run_snakemake
from tests.test_report_html import ARTIFACTS, check_report_in_browser

REPORT_TOKEN = jwt_for("report")

pytestmark = pytest.mark.e2e

WORKFLOWS = Path(__file__).resolve().parent / "workflows"
MIB_200 = 200.0  # the rule allocates bytearray(200 * 1024 * 1024): 200 MiB


def report_dir(workdir: Path) -> Path:
    [directory] = (workdir / ".snakemake" / "prominence_reports").iterdir()
    return directory


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_report_of_a_run_and_its_rebuild(tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "report", workdir)
    # The emulator in a process of its own, as users run it: Linux counts the pages of the
    # process that starts a task in the task's peak memory until it execs, so an emulator
    # inside this test process (hundreds of MiB late in a suite) would inflate the figures.
    with emulator_process(
        tmp_path / "emulator",
        "--cpus", "8", "--memory", "16",
        "--image-pull-seconds", "0.2", "--stage-in-seconds", "0.3", "--stage-out-seconds", "0.1",
    ) as url:  # fmt: skip
        result = run_snakemake(
            plugin_args(tmp_path / "storage", 8, "--keep-going"),
            workdir,
            plugin_env(url, REPORT_TOKEN),
        )
        assert result.returncode != 0, result.stderr[-3000:]  # rule bad fails: the run fails
        directory = report_dir(workdir)
        rebuilt_root = tmp_path / "rebuilt"
        code = rebuild_command.main(
            ["--run", directory.name, "--prominence-url", url,
             "--prominence-token", REPORT_TOKEN, "--prominence-report-dir", str(rebuilt_root)]
        )  # fmt: skip
        assert code == 0
    log = result.stderr
    # The rebuild from PROMINENCE alone writes the very same tables.
    rebuilt = rebuilt_root / directory.name
    for name in ("jobs.tsv", "jobs.jsonl", "rules.tsv"):
        assert (rebuilt / name).read_text() == (directory / name).read_text(), name

    jobs = read_jsonl(directory / "jobs.jsonl")
    assert [job["prominence_id"] for job in jobs] == sorted(job["prominence_id"] for job in jobs)
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    assert sorted(by_rule) == ["bad", "burn", "memory", "sleep"]
    assert sorted(job["wildcards"] for job in by_rule["sleep"]) == ["n=1", "n=2", "n=3"]
    [burn], [memory], [bad] = by_rule["burn"], by_rule["memory"], by_rule["bad"]
    assert burn["wildcards"] == "" and burn["attempt"] == 1 and burn["snakemake_jobid"] >= 0
    # CPU: the busy loop shows (3 s of CPU more than a sleeper's); sleeping on two cores is
    # less efficient. Efficiencies are ratios of times on a loaded machine: ordering only.
    sleeper_efficiency = max(job["cpu_efficiency"] for job in by_rule["sleep"])
    assert burn["cpu_time_s"] >= min(j["cpu_time_s"] for j in by_rule["sleep"]) + 2.5
    assert burn["cpu_efficiency"] > 1.25 * sleeper_efficiency
    assert 0 < sleeper_efficiency < 0.5
    # Memory: the 200 MB job's peak within 25 % of that, as a share of its 2 GiB request.
    assert abs(memory["peak_memory_mib"] - MIB_200) <= 0.25 * MIB_200
    assert memory["requested_memory_gib"] == 2
    assert memory["memory_share"] == pytest.approx(memory["peak_memory_mib"] / 2048, abs=1e-3)
    # the 200 MiB bytearray's process (not the remote Snakemake, which stays below) is counted
    assert memory["peak_memory_mib"] >= 200
    # the task's figure, of a job that ran its image pull step (--image-pull-seconds): marked
    assert memory["peak_memory_source"] == "maxResidentSetSizeKB"
    assert memory["image_pulled"] is True and memory["server_retries"] == 0
    # Overheads and the rest of a row.
    for job in jobs:
        assert job["stage_in_s"] >= 0.3 and job["stage_out_s"] >= 0.1
        assert job["image_pull_s"] >= 0.2
        assert job["site"] == "Emulator-Local" and job["cpu_model"]
        assert job["provisioned_cpus"] == job["requested_cpus"]
        assert job["queue_wait_s"] >= 0 and job["run_s"] > 0
    assert bad["status"] == "completed" and bad["exit_code"] == 1
    assert burn["requested_walltime_min"] is None
    assert burn["na_reasons"]["walltime_share"].startswith("no runtime requested")
    assert all(job["walltime_share"] > 0 for job in by_rule["sleep"])  # runtime=10 min

    rules = {row["rule"]: row for row in read_tsv(directory / "rules.tsv")}
    assert (rules["bad"]["ok"], rules["bad"]["failed"]) == ("0", "1")
    assert float(rules["bad"]["core_hours_failed"]) > 0
    # Three successful sleepers are enough for a suggestion; one burn job is not.
    assert rules["sleep"]["suggested_threads"] == "1"
    assert rules["sleep"]["suggested_mem_mb"] == "1024"
    # every peak may be the pull's, but even so fits the 1 GB minimum
    assert "mem_mb=1024 (the minimum" in rules["sleep"]["suggestion"]
    assert rules["sleep"]["peak_memory_maybe_pull"] == "3"
    assert rules["bad"]["memory_kills"] == "0"
    assert rules["sleep"]["suggested_runtime_min"] == "1"
    assert rules["burn"]["suggested_threads"] == "NA"
    assert "too few" in rules["burn"]["suggestion"]
    # The tables and the log.
    header = (directory / "jobs.tsv").read_text().splitlines()[0].split("\t")
    assert header == [*report_rows.JOB_COLUMNS, "notes"]
    assert "PROMINENCE run report: 6 job(s), 5 ok, 1 failed" in log
    # With the report extra (the test extra has it): the page, opened in a real browser.
    assert f"Report: {directory.relative_to(workdir) / 'report.html'}" in log
    check_report_in_browser(
        directory / "report.html",
        screenshot=ARTIFACTS / "report-of-a-real-run.png",
        expect_text=["burn", "sleep", "memory", "bad"],
    )
    assert "Rule sleep: median CPU efficiency" in log  # below 0.5: a warning
    assert "Rule memory asked for 2 GiB of memory and peaked at" in log  # information
    assert "Most core-hours requested but not used: sleep" in log


def test_report_after_ctrl_c_on_a_site_without_memory_figures(tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(WORKFLOWS / "states", workdir)
    output = tmp_path / "snakemake.out"
    with Emulator(cpus=4, memory=16, state_dir=tmp_path / "emulator", omit_memory=True) as emu:
        emu.hold_idle(match=["snakejob.stuck.*"])
        with output.open("w") as out:
            process = subprocess.Popen(
                [str(BIN / "snakemake"), *plugin_args(tmp_path / "storage", 3, "--keep-going")],
                cwd=workdir,
                env={**os.environ, **plugin_env(emu.url, jwt_for("ctrl-c"))},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:

            def finished() -> bool:
                ends = {j["name"].split(".")[1]: j["status"] for j in emu.jobs()}
                return ends.get("ok") == "completed" and ends.get("bad") == "completed"

            assert wait_until(finished, timeout=240), output.read_text()[-3000:]
            time.sleep(2)  # a status check or two: the plugin has judged both
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    text = output.read_text()
    directory = report_dir(workdir)
    jobs = {job["rule"]: job for job in read_jsonl(directory / "jobs.jsonl")}
    assert sorted(jobs) == ["bad", "ok", "stuck"], text[-3000:]
    ok, stuck = jobs["ok"], jobs["stuck"]
    assert ok["peak_memory_mib"] is None and ok["memory_share"] is None
    assert ok["na_reasons"]["peak_memory_mib"] == "the site reports no memory figures"
    assert ok["cpu_time_s"] > 0 and ok["cpu_efficiency"] > 0
    assert stuck["status"] == "deleted" and stuck["started_at"] is None
    assert stuck["na_reasons"]["queue_wait_s"] == "the job never started"
    [row] = [r for r in read_tsv(directory / "jobs.tsv") if r["rule"] == "ok"]
    assert row["peak_memory_mib"] == "NA" and row["memory_share"] == "NA"
    assert "peak_memory_mib: the site reports no memory figures" in row["notes"]
    assert "PROMINENCE run report: 3 job(s), 1 ok, 2 failed" in text
