"""The run report over the job shapes the real server renders (``backend/list_jobs.py``
~300-560 for which keys exist when, ``promlet.py`` ~2110-2170 for the task entries): pulled
images, jobs PROMINENCE re-ran, jobs queued again, deleted before they started, killed for
their memory, failed pulls, and what each does to peak memory, stage times, queue waits, run
times and the suggestions."""

from __future__ import annotations

import copy

from snakemake_executor_plugin_prominence.report import memory as report_memory
from snakemake_executor_plugin_prominence.report import rules as report_rules
from snakemake_executor_plugin_prominence.report import summary as report_summary
from snakemake_executor_plugin_prominence.report import writer as report_writer
from snakemake_executor_plugin_prominence.report.rows import JOB_COLUMNS, record_of, row_of

SHA = "c694b456f242e484753a83107e47ca29d5a08e784c45f4225b1758713ad2e236"
LABELS = {"snakemakerule": "align", "snakemakejob": "7", "snakemakeattempt": "1"}
RESOURCES = {"cpus": 2, "memory": 2, "disk": 10, "nodes": 1, "walltime": 60}
TASKS = [{"cmd": "snakemake ...", "image": "snakemake/snakemake:v9.3.5", "runtime": "singularity"}]


def pulled_task(rss_kb: int = 700_000, **changes) -> dict:
    """A task entry as promlet writes it after pulling the image and running the task."""
    task = {"imagePullStatus": "completed", "imageSha256": SHA, "imagePullTime": 48.2,
            "exitCode": 0, "wallTimeUsage": 300.0, "cpuTimeUsage": 280.0,
            "maxResidentSetSizeKB": rss_kb, "retries": 0}  # fmt: skip
    task.update(changes)
    return task


def cached_task(rss_kb: int) -> dict:
    """A task entry for an image that was already there: ``cached``, no pull time or sha."""
    task = pulled_task(rss_kb, imagePullStatus="cached")
    del task["imagePullTime"], task["imageSha256"]
    return task


def ran(job_id: int = 1, tasks: list | None = None, **execution) -> dict:
    """A completed job whose worker reported: no stageInTime/stageOutTime keys (the server
    writes them only above 0), provisioned memory int(MemoryProvisioned / 1024) of the
    1000 x 2 MB HTCondor was asked for: 1 of 2."""
    return {
        "id": job_id,
        "name": f"snakejob.align.{job_id}",
        "status": "completed",
        "events": {"createTime": 1000, "startTime": 1060, "endTime": 1420},
        "resources": dict(RESOURCES),
        "labels": {**LABELS, "snakemakejob": str(job_id)},
        "tasks": TASKS,
        "execution": {
            "site": "OpenStack-UNIV-LILLE",
            "cpu": {"vendor": "GenuineIntel", "model": "Intel Xeon", "clock": "3039.367"},
            "provisionedResources": {"cpus": 2, "memory": 1, "disk": 10, "nodes": 1},
            "runtimeVersion": {"singularity": "3.8.7-1.el7"},
            "tasks": [pulled_task()] if tasks is None else tasks,
            **execution,
        },
    }


def assert_every_na_has_a_reason(row: dict) -> None:
    for column in JOB_COLUMNS:
        assert (row[column] is None) == bool(row["na_reasons"].get(column)), column


def test_a_pulled_image_marks_the_peak_and_absent_stage_times_are_zero():
    job = ran(maxMemoryUsageKB=1_234_567.8)  # the cgroup's bytes / 1000, a float
    row = row_of(record_of(job))
    assert row["peak_memory_mib"] == round(700_000 / 1024, 4)  # the task's figure first
    assert row["peak_memory_source"] == report_memory.TASK_PEAK
    assert row["image_pulled"] is True and row["image_pull_s"] == 48.2
    assert (row["stage_in_s"], row["stage_out_s"]) == (0.0, 0.0)
    assert row["queue_wait_s"] == 60.0 and row["run_s"] == 300.0
    assert row["cpu_efficiency"] == round(280 / (300 * 2), 4)
    # provisioned 1 of the 2 GB asked is how the server rounds, not a shortfall: shares and
    # suggestions go by the request
    assert (row["requested_memory_gib"], row["provisioned_memory_gib"]) == (2.0, 1.0)
    assert row["memory_share"] == round(700_000 / 1024 / 2048, 4)
    assert_every_na_has_a_reason(row)
    one_gb = ran()
    one_gb["resources"]["memory"] = 1
    one_gb["execution"]["provisionedResources"]["memory"] = 0  # int(1000 / 1024)
    row = row_of(record_of(one_gb))
    assert (
        row["provisioned_memory_gib"] == 0.0 and "provisioned_memory_gib" not in row["na_reasons"]
    )


def test_the_jobs_cgroup_peak_is_used_only_without_a_task_figure_and_says_so():
    job = ran(maxMemoryUsageKB=1_048_576.0)  # 1 GiB in kB of 1000 bytes
    del job["execution"]["tasks"][0]["maxResidentSetSizeKB"]
    row = row_of(record_of(job))
    assert row["peak_memory_mib"] == 1000.0
    assert row["peak_memory_source"] == report_memory.JOB_PEAK


def test_a_later_task_reusing_the_image_is_cached_without_a_pull_time():
    second = {**cached_task(900_000), "wallTimeUsage": 50.0}
    row = row_of(record_of(ran(tasks=[pulled_task(), second])))
    assert row["image_pull_s"] == 48.2  # the cached task adds 0, not NA
    assert row["image_pulled"] is True  # the job pulled it: its worker's peak may be the pull's
    assert row["peak_memory_mib"] == round(900_000 / 1024, 4) and row["run_s"] == 350.0


def test_a_job_prominence_ran_three_times_has_no_queue_wait():
    job = ran(retries=2)  # JobRunCount - 1
    job["events"] = {"createTime": 1000, "startTime": 4000, "endTime": 4400}  # the last run's
    rec = record_of(job)
    row = row_of(rec)
    assert row["server_retries"] == 2
    assert row["queue_wait_s"] is None
    assert "ran the job 3 times" in row["na_reasons"]["queue_wait_s"]
    assert row["run_s"] == 300.0 and rec.held_s == 400.0  # the last run's figures
    plain = record_of(ran(2))
    [rule] = report_rules.rule_rows([rec, plain])
    assert rule["retried"] == 1 and rule["queue_wait_s_mean"] == 60.0
    _jobs, _rules, summary = report_writer.build("r", [rec, plain], "out", 0.5)
    assert summary["queue_wait_total_h"] == round(60 / 3600, 4)


def test_a_job_queued_again_after_a_run_keeps_that_runs_times_but_no_queue_wait():
    # JobStatus 1 after 2: idle, with the endTime list_jobs.py gives an evicted job
    job = {
        "id": 3, "name": "snakejob.align.3", "status": "idle",
        "events": {"createTime": 1000, "startTime": 1100, "endTime": 1500},
        "resources": dict(RESOURCES), "labels": LABELS, "tasks": TASKS,
        "execution": {"site": "OpenStack-UNIV-LILLE", "runtimeVersion": {},
                      "provisionedResources": {"cpus": 2, "memory": 1, "disk": 10, "nodes": 1}},
    }  # fmt: skip
    row = row_of(record_of(job))
    assert row["queue_wait_s"] is None and "queued again" in row["na_reasons"]["queue_wait_s"]
    assert row["ended_at"] is not None
    assert row["run_s"] is None and row["na_reasons"]["run_s"] == "not finished when read"
    assert_every_na_has_a_reason(row)


def test_a_job_deleted_before_it_started_has_no_end_and_no_run_time():
    job = {
        "id": 4, "name": "snakejob.align.4", "status": "deleted",
        "statusReason": "Job deleted by user", "events": {"createTime": 1000},
        "resources": dict(RESOURCES), "labels": LABELS, "tasks": TASKS,
        "execution": {"runtimeVersion": {}},
    }  # fmt: skip
    rec = record_of(job)
    row = row_of(rec)
    assert row["ended_at"] is None
    assert (
        row["na_reasons"]["ended_at"] == "PROMINENCE gives no end time to a job that never started"
    )
    for column in ("run_s", "cpu_time_s", "stage_in_s", "image_pull_s", "queue_wait_s"):
        assert row[column] is None and row["na_reasons"][column] == "the job never started"
    assert_every_na_has_a_reason(row)
    [rule] = report_rules.rule_rows([rec])
    assert rule["core_hours_requested"] == 0 and rule["run_s_max"] is None


def memory_kill(job_id: int = 5, memory: int = 2) -> dict:
    """Held for its memory, then removed: ``killed``, with the end HTCondor entered the removal
    and no task results (the worker was stopped before it wrote any)."""
    return {
        "id": job_id, "name": f"snakejob.align.{job_id}", "status": "killed",
        "statusReason": "Job used too much memory",
        "events": {"createTime": 1000, "startTime": 1060, "endTime": 1300},
        "resources": {**RESOURCES, "memory": memory},
        "labels": {**LABELS, "snakemakejob": str(job_id)}, "tasks": TASKS,
        "execution": {"site": "OpenStack-UNIV-LILLE", "runtimeVersion": {},
                      "provisionedResources": {"cpus": 2, "memory": 1, "disk": 10, "nodes": 1}},
    }  # fmt: skip


def test_a_memory_kill_is_counted_and_asks_for_more_than_the_request():
    killed = record_of(memory_kill())
    row = row_of(killed)
    assert row["run_s"] is None
    assert row["na_reasons"]["run_s"] == "the worker reported no task results"
    assert row["na_reasons"]["stage_in_s"] == "the worker reported no task results"
    assert_every_na_has_a_reason(row)
    ok = [record_of(ran(i, tasks=[pulled_task(300_000)])) for i in (1, 2)]
    jobs, rules, summary = report_writer.build("r", [killed, *ok], "out", 0.5)
    [rule] = rules
    assert (rule["memory_kills"], rule["failed"], summary["memory_kills"]) == (1, 1, 1)
    assert rule["suggested_mem_mb"] == 4096
    assert "mem_mb=4096 at least (1 job(s) killed by PROMINENCE" in rule["suggestion"]
    assert "more than the 2 GiB they asked" in rule["suggestion"]
    assert "(1 killed for using too much memory)" in report_summary.summary_lines(summary, False)[0]
    # a small successful peak does not turn into "asked too much" next to the kill
    assert report_summary.memory_notes(rules, jobs) == []


def test_a_memory_kill_keeps_a_larger_suggestion_from_the_rules_own_peaks():
    own = [record_of(ran(i, tasks=[cached_task(4_000_000)])) for i in (1, 2, 3)]
    for rec in own:
        assert rec.image_pulled is False
    [rule] = report_rules.rule_rows([*own, record_of(memory_kill(9, memory=2))])
    assert rule["suggested_mem_mb"] == 5 * 1024  # 3906 MiB x 1.2 over 1000 MiB per GB
    assert "1 job(s) killed by PROMINENCE" in rule["suggestion"]


def test_a_failed_pull_shows_its_time_but_no_usage():
    job = ran(tasks=[{"imagePullStatus": "failed", "imagePullTime": 3.2}])
    job.update(status="failed", statusReason="Container image pull failed")
    row = row_of(record_of(job))
    assert row["image_pull_s"] == 3.2 and row["image_pulled"] is True
    assert row["run_s"] is None and row["na_reasons"]["run_s"] == "no task ran"
    assert row["peak_memory_source"] is None
    assert_every_na_has_a_reason(row)


def rule_of(*details: dict) -> dict:
    [rule] = report_rules.rule_rows([record_of(copy.deepcopy(d)) for d in details])
    return rule


def test_no_mem_mb_from_peaks_that_may_be_the_image_pulls():
    rule = rule_of(
        *(ran(i, tasks=[pulled_task(kb)]) for i, kb in enumerate((900_000, 1_000_000, 700_000)))
    )
    assert rule["suggested_mem_mb"] is None
    assert rule["peak_memory_maybe_pull"] == 3
    assert "no mem_mb: 3 of 3 peaks may be the image pull's" in rule["suggestion"]
    assert "the rule's own peak is at most 977 MiB" in rule["suggestion"]
    assert rule["suggested_threads"] == 1  # the other suggestions stand


def test_the_minimum_when_even_a_peak_that_may_be_the_pulls_fits_it():
    rule = rule_of(
        *(ran(i, tasks=[pulled_task(kb)]) for i, kb in enumerate((500_000, 800_000, 850_000)))
    )
    # 850,000 KiB = 830 MiB, x 1.2 = 996 MiB: within the 1000 MiB of 1 GB
    assert rule["suggested_mem_mb"] == 1024
    assert "mem_mb=1024 (the minimum; asked 2 GiB" in rule["suggestion"]
    rule = rule_of(
        *(ran(i, tasks=[pulled_task(kb)]) for i, kb in enumerate((500_000, 800_000, 860_000)))
    )
    assert rule["suggested_mem_mb"] is None  # 840 MiB x 1.2 is over 1000 MiB


def test_the_rules_own_peaks_with_higher_ones_that_may_be_the_pulls():
    cached = [ran(i, tasks=[cached_task(600_000)]) for i in (1, 2, 3)]
    rule = rule_of(*cached, ran(4, tasks=[pulled_task(2_000_000)]))
    assert rule["suggested_mem_mb"] == 1024  # 586 MiB x 1.2
    assert "peak of the 3 jobs that did not pull their image 586 MiB" in rule["suggestion"]
    assert "1 job(s) that pulled their image peaked higher, at up to 1953 MiB" in rule["suggestion"]
