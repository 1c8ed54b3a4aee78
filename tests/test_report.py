"""The run report's numbers without a run: records from job details, NA with a reason,
suggestions, the threshold as a fraction, the identity labels, and the files."""

from __future__ import annotations

import copy
import csv
import json
import re
import sys
import types

import pytest
from snakemake_interface_common.exceptions import WorkflowError

import snakemake_executor_plugin_prominence.report
from snakemake_executor_plugin_prominence.job import description
from snakemake_executor_plugin_prominence.job.labels import job_labels
from snakemake_executor_plugin_prominence.report import rules as report_rules
from snakemake_executor_plugin_prominence.report import summary as report_summary
from snakemake_executor_plugin_prominence.report import writer as report_writer
from snakemake_executor_plugin_prominence.report.rows import JOB_COLUMNS, record_of, row_of
from snakemake_executor_plugin_prominence.run import startup
from tests.jobs import FakeGroupJob, FakeJob

#: reference §4.4: a real server's answer (no Snakemake labels)
REAL_DETAIL = {
    "events": {"createTime": 1612684304, "endTime": 1612684626, "startTime": 1612684595},
    "execution": {
        "cpu": {"clock": "3039.367", "model": "Intel(R) Xeon(R) Platinum 8276", "vendor": "Intel"},
        "maxMemoryUsageKB": 242814,
        "provisionedResources": {"cpus": 1, "disk": 10, "memory": 1, "nodes": 1},
        "runtimeVersion": {"singularity": "3.8.7-1.el7"},
        "site": "OpenStack-UNIV-LILLE",
        "stageOutTime": 0.41,
        "tasks": [
            {"cpuTimeUsage": 0.548, "exitCode": 0, "imagePullStatus": "completed",
             "imagePullTime": 26.149, "maxResidentSetSizeKB": 63044, "retries": 0,
             "wallTimeUsage": 0.6737}
        ],
    },
    "id": 1181,
    "labels": {"app": "snakemake"},
    "name": "calculate-pi",
    "resources": {"cpus": 1, "disk": 10, "memory": 1, "nodes": 1},
    "status": "completed",
    "tasks": [{"cmd": "python /calc.py", "image": "eoscprominence/testpi"}],
}  # fmt: skip


def detail(
    job_id: int = 1,
    rule: str = "align",
    *,
    cpus: int = 4,
    wall: float = 100.0,
    cpu: float = 100.0,
    rss_kb: int | None = 512 * 1024,
    memory: int = 8,
    held: int = 120,
    exit_code: int = 0,
    pulled: bool = True,
    **labels: str,
) -> dict:
    """A finished job of this plugin as the server details it (list_jobs.py, promlet.py).

    ``pulled``: the task ran its image pull step (``imagePullStatus: completed`` with an
    ``imagePullTime``, as the worker reports every first task of a job); False gives a task
    reported ``cached`` without a pull time, as the worker reports a task whose image an
    earlier task pulled, here for a job whose pull did not run at all (no server job has that
    shape: it stands for a site or emulator that finds the image cached)."""
    task = {"exitCode": exit_code, "wallTimeUsage": wall, "cpuTimeUsage": cpu, "retries": 0}
    if pulled:
        task.update(imagePullStatus="completed", imagePullTime=12.5, imageSha256="ab" * 32)
    else:
        task.update(imagePullStatus="cached")
    if rss_kb is not None:
        task["maxResidentSetSizeKB"] = rss_kb
    return {
        "id": job_id,
        "status": "completed",
        "events": {"createTime": 1000, "startTime": 1010, "endTime": 1010 + held},
        "resources": {"cpus": cpus, "memory": memory, "disk": 10, "nodes": 1, "walltime": 60},
        "labels": {
            "snakemakerule": rule,
            "snakemakejob": str(job_id),
            "snakemakeattempt": "1",
            **labels,
        },
        "execution": {
            "site": "Site-A",
            "cpu": {"vendor": "V", "model": "M", "clock": "1"},
            "provisionedResources": {"cpus": cpus, "memory": memory, "disk": 10, "nodes": 1},
            "runtimeVersion": {"singularity": "3.8.7-1.el7"},
            "stageInTime": 1.5,
            "stageOutTime": 0.5,
            "tasks": [task],
        },
    }


def assert_every_na_has_a_reason(row: dict) -> None:
    for column in JOB_COLUMNS:
        if row[column] is None:
            assert row["na_reasons"].get(column), column
        else:
            assert column not in row["na_reasons"], column


def test_a_real_servers_detail():
    row = row_of(record_of(REAL_DETAIL))
    assert row["rule"] is None and "snakemakerule" in row["na_reasons"]["rule"]
    assert row["cpu_efficiency"] == round(0.548 / 0.6737, 4)
    assert row["cpu_efficiency_provisioned"] == row["cpu_efficiency"]
    assert row["peak_memory_mib"] == round(63044 / 1024, 4)
    assert row["memory_share"] == round(63044 / 1024 / 1024, 4)
    assert row["image_pull_s"] == 26.149 and row["stage_out_s"] == 0.41
    assert row["queue_wait_s"] == 291.0
    assert row["cpu_model"] == "Intel(R) Xeon(R) Platinum 8276"
    assert row["started_at"] == "2021-02-07T07:56:35Z"
    # stageInTime is written only above 0: absent after the worker reported, it is 0
    assert row["stage_in_s"] == 0.0 and "stage_in_s" not in row["na_reasons"]
    # the task's figure, of a job that pulled its image in that run: it may be the pull's
    assert row["peak_memory_source"] == "maxResidentSetSizeKB"
    assert row["image_pulled"] is True
    assert row["server_retries"] == 0
    assert (
        row["walltime_share"] is None
        and "no runtime requested" in row["na_reasons"]["walltime_share"]
    )
    assert_every_na_has_a_reason(row)


def test_a_site_without_memory_figures_is_na_with_the_reason_never_zero():
    row = row_of(record_of(detail(rss_kb=None)))
    assert row["peak_memory_mib"] is None and row["memory_share"] is None
    assert row["na_reasons"]["peak_memory_mib"] == "the site reports no memory figures"
    assert row["cpu_efficiency"] == 0.25  # 100 s CPU over 100 s on 4 cpus
    assert_every_na_has_a_reason(row)
    assert row["peak_memory_source"] is None
    assert row["na_reasons"]["peak_memory_source"] == "the site reports no memory figures"
    # execution.maxMemoryUsageKB alone still gives the peak: a float in kB of 1000 bytes
    alone = detail(rss_kb=None)
    alone["execution"]["maxMemoryUsageKB"] = 2097152 * 1.024  # 2 GiB in bytes / 1000
    row = row_of(record_of(alone))
    assert row["peak_memory_mib"] == 2048.0
    assert row["peak_memory_source"] == "maxMemoryUsageKB"


def test_a_job_that_never_started():
    never = {
        "id": 5, "status": "failed", "statusReason": "No matching resources",
        "events": {"createTime": 1000, "endTime": 1100},
        "resources": {"cpus": 1, "memory": 1, "disk": 10, "nodes": 1},
        "labels": {"snakemakerule": "big", "snakemakejob": "3", "snakemakeattempt": "2"},
        "execution": {"runtimeVersion": {}},
    }  # fmt: skip
    row = row_of(record_of(never))
    assert (row["rule"], row["attempt"], row["reason"]) == ("big", 2, "No matching resources")
    for column in ("queue_wait_s", "run_s", "cpu_time_s", "cpu_efficiency", "site"):
        assert row[column] is None
    assert row["na_reasons"]["queue_wait_s"] == "the job never started"
    assert row["na_reasons"]["cpu_efficiency"] == "the job never started"
    assert row["exit_code"] is None
    assert_every_na_has_a_reason(row)


def test_an_instant_job_has_no_efficiency_rather_than_zero():
    row = row_of(record_of(detail(wall=0.0, cpu=0.0)))
    assert row["cpu_efficiency"] is None
    assert row["na_reasons"]["cpu_efficiency"] == "run time of 0 s"
    assert row["cpu_time_s"] == 0.0
    assert_every_na_has_a_reason(row)


def test_efficiency_is_a_fraction_against_requested_and_provisioned_cpus():
    job = detail(cpus=4, wall=100.0, cpu=150.0)
    job["execution"]["provisionedResources"]["cpus"] = 8
    row = row_of(record_of(job))
    assert row["cpu_efficiency"] == 0.375 and row["cpu_efficiency_provisioned"] == 0.1875
    assert row["walltime_share"] == round(100 / 3600, 4)


def records(*details: dict) -> list:
    return [record_of(d) for d in details]


def test_suggestions_need_three_successful_jobs_and_add_the_stated_margins():
    ok = records(
        detail(1, cpus=4, wall=100, cpu=95, rss_kb=900 * 1024, held=100, pulled=False),
        detail(2, cpus=4, wall=100, cpu=130, rss_kb=1000 * 1024, held=200, pulled=False),
        detail(3, cpus=4, wall=100, cpu=80, rss_kb=700 * 1024, held=150, pulled=False),
    )
    [row] = report_rules.rule_rows(ok)
    assert row["suggested_threads"] == 2  # at most 1.3 cores busy
    assert row["suggested_mem_mb"] == 2048  # 1000 MiB x 1.2 = 1200 MiB over 1000 -> 2 GB
    assert row["suggested_runtime_min"] == 5  # 200 s x 1.5 = 300 s
    assert row["suggestion"].startswith("request threads=2 (asked 4")
    assert "mem_mb=2048 (asked 8 GiB; peak 1000 MiB +20%)" in row["suggestion"]
    assert row["cpu_efficiency_median"] == round(95 / 400, 4)
    # A failed job does not count towards a suggestion (but is counted as failed).
    failing = records(detail(1), detail(2), detail(3, exit_code=1))
    [row] = report_rules.rule_rows(failing)
    assert (row["ok"], row["failed"]) == (2, 1)
    assert row["suggested_threads"] is None and row["suggested_mem_mb"] is None
    assert "too few" in row["suggestion"] and "(need 3)" in row["suggestion"]
    # No memory figures: threads and runtime, but no mem_mb.
    [row] = report_rules.rule_rows(records(*(detail(i, rss_kb=None) for i in (1, 2, 3))))
    assert row["suggested_mem_mb"] is None and row["suggested_threads"] == 1
    assert "peak memory from 0 successful job(s)" in row["suggestion"]


def test_a_single_threaded_busy_job_keeps_one_thread():
    [row] = report_rules.rule_rows(records(*(detail(i, cpus=1, cpu=98) for i in (1, 2, 3))))
    assert row["suggested_threads"] == 1


def test_summary_totals_and_the_worst_rules():
    recs = records(
        detail(1, "idle", cpus=8, cpu=10, wall=3600, held=3600),
        detail(2, "busy", cpus=1, cpu=3600, wall=3600, held=3600),
        detail(3, "bad", cpus=2, cpu=0, wall=1800, held=1800, exit_code=2),
    )
    _jobs, rules, summary = report_writer.build("run1", recs, "out/run1", 0.5)
    assert summary["core_hours_requested"] == 8 + 1 + 1
    assert summary["core_hours_failed"] == 1
    assert summary["core_hours_used"] == round((10 + 3600) / 3600, 4)
    assert [w["rule"] for w in summary["worst_rules"]] == ["idle", "bad"]
    assert summary["low_cpu_efficiency_threshold"] == 0.5
    assert (summary["jobs"], summary["ok"], summary["failed"]) == (3, 2, 1)
    warnings = report_summary.efficiency_warnings(rules, 0.5)
    assert [w.split(":")[0] for w in warnings] == ["Rule bad", "Rule idle"]
    assert report_summary.efficiency_warnings(rules, 0.0) == []


@pytest.mark.parametrize("value", [50, 1.5, -0.1])
def test_the_threshold_is_a_fraction_not_a_percent(value):
    with pytest.raises(WorkflowError, match="must be a fraction between 0 and 1") as error:
        startup.check_low_cpu_efficiency(value)
    if value == 50:
        assert "write 0.5" in str(error.value)


def test_identity_labels_round_trip_and_fit_the_servers_patterns():
    job = FakeJob(name="map", jobid=12, attempt=2, wildcards={"sample": "A=1,b", "p": "x/ü y"})
    labels = job_labels(job)
    for value in labels.values():
        assert description.LABEL_VALUE_PATTERN.match(value) and len(value) <= 512
    row = row_of(record_of({**detail(), "labels": labels}))
    assert (row["rule"], row["snakemake_jobid"], row["attempt"]) == ("map", 12, 2)
    assert row["wildcards"] == "sample=A=1,b,p=x/ü y"
    assert "snakemakewildcards" not in job_labels(FakeJob())
    assert row_of(record_of({**detail(), "labels": job_labels(FakeJob())}))["wildcards"] == ""
    group = job_labels(FakeGroupJob(name="grp1", jobs=[FakeJob()]))
    assert row_of(record_of({**detail(), "labels": group}))["rule"] == "group:grp1"
    long = job_labels(FakeJob(wildcards={"w": "x" * 600}))
    row = row_of(record_of({**detail(), "labels": long}))
    assert row["wildcards"] is None
    assert row["na_reasons"]["wildcards"] == "wildcards too long for a PROMINENCE label"


def test_report_dir_setting():
    assert report_writer.report_root(None) == report_writer.report_root(report_writer.DEFAULT_DIR)
    assert report_writer.report_root("none") is None and report_writer.report_root("") is None
    off = report_writer.RunReport("r", None, 0.5)
    off.add(detail())
    assert off.records() == [] and off.finish(None, Log()) is None
    assert report_writer.run_dir(report_writer.report_root("x"), "../a/b").name == "_.._a_b"


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, text: str) -> None:
        self.lines.append(("info", text))

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))


def test_files_and_the_log_without_the_html_extra(tmp_path, monkeypatch):
    # Without matplotlib (the report extra): the page's modules import afresh and fail, also
    # when another test imported them.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in ("html", "plots", "tables"):
        monkeypatch.delitem(
            sys.modules, f"snakemake_executor_plugin_prominence.report.{name}", False
        )
        monkeypatch.delattr(snakemake_executor_plugin_prominence.report, name, raising=False)
    collected = report_writer.RunReport("run7", tmp_path, 0.5)
    odd = detail(2, "map", rss_kb=None)
    odd["statusReason"] = "tab\there"
    for d in (detail(1, "map", memory=16), odd, REAL_DETAIL):
        collected.add(copy.deepcopy(d))
    log = Log()
    directory = collected.finish(None, log)
    assert directory == tmp_path / "run7"
    with (directory / "jobs.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["prominence_id"] for r in rows] == ["1", "2"]  # the non-Snakemake job left out
    assert rows[1]["peak_memory_mib"] == "NA" and rows[1]["reason"] == "tab\there"
    assert rows[1]["notes"].startswith("peak_memory_mib: the site reports no memory figures")
    lines = [json.loads(x) for x in (directory / "jobs.jsonl").read_text().splitlines()]
    assert lines[1]["peak_memory_mib"] is None and lines[0]["wildcards"] == ""
    assert (directory / "rules.tsv").read_text().startswith("rule\tjobs\tok\tfailed")
    assert not (directory / "report.html").exists()
    texts = [text for _level, text in log.lines]
    assert any(report_writer.HTML_HINT in text for text in texts)
    assert any(t.startswith("PROMINENCE run report: 2 job(s), 2 ok, 0 failed") for t in texts)
    memory = [t for level, t in log.lines if level == "info" and "asked for 16 GiB" in t]
    assert memory and "peaked at 512 MiB (3%)" in memory[0]


def test_a_broken_page_module_is_not_taken_for_the_missing_extra(tmp_path, monkeypatch):
    # Only a missing matplotlib means "install the report extra"; any other failed import is
    # a bug that must show as one (a warning with the error; the run goes on), not as a hint.
    monkeypatch.setitem(sys.modules, "snakemake_executor_plugin_prominence.report.html", None)
    monkeypatch.delattr(snakemake_executor_plugin_prominence.report, "html", raising=False)
    collected = report_writer.RunReport("run8", tmp_path, 0.5)
    collected.add(copy.deepcopy(detail(1, "map")))
    log = Log()
    collected.finish(None, log)
    texts = [text for _level, text in log.lines]
    assert not any(report_writer.HTML_HINT in text for text in texts)
    (warning,) = [text for level, text in log.lines if level == "warning"]
    assert "could not write" in warning and "ModuleNotFoundError" in warning


def test_a_failing_html_writer_leaves_the_tables(tmp_path, monkeypatch):
    broken = types.ModuleType("report_html")

    def write_html(jobs, rules, summary, path):
        assert re.match(r"\d{4}-", jobs[0]["created_at"]) and rules[0]["rule"] == "map"
        raise RuntimeError("no fonts")

    broken.write_html = write_html
    monkeypatch.setitem(sys.modules, "snakemake_executor_plugin_prominence.report.html", broken)
    monkeypatch.setattr(snakemake_executor_plugin_prominence.report, "html", broken, raising=False)
    log = Log()
    collected = report_writer.RunReport("run8", tmp_path, 0.5)
    collected.add(detail(1, "map"))
    assert collected.finish(None, log) == tmp_path / "run8"
    assert (tmp_path / "run8" / "jobs.tsv").exists()
    assert any(level == "warning" and "no fonts" in text for level, text in log.lines)
