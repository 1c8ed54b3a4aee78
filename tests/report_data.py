"""Synthetic run-report rows that follow the report contract (jobs / rules / summary).

Deterministic (seeded) and realistic: several rules with distinct behaviour (one burns its cpus,
one sleeps, one over-asks for memory), a group job, failed attempts that were retried, a site
that reports no memory figures (None with a reason), jobs that never started, jobs killed for
their memory, a job PROMINENCE ran twice, peaks that may be the image pull's, and strings that
need escaping in wildcards, reasons and a rule name with a `$` (`tricky=False` leaves those out,
for a picture of the page: `python -m tests.report_data report.html` writes one).
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
NO_MEMORY_SITE = "cloud-b"
NO_MEMORY_REASON = "site reports no memory figures"
EVIL_REASON = 'Walltime limit exceeded <b>&</b> "killed"'
MEMORY_KILL_REASON = "Job used too much memory"
RERUN_REASON = "PROMINENCE ran the job 2 times and gives only the last run's start"
REF = {True: "<hg38&x>", False: "hg38"}

# rule: (count, cpus, memory GiB, walltime min, cpu use per requested cpu, peak MiB, run s)
RULES = {
    "bwa_map": (160, 4, 8.0, 60, 0.92, 5200, 900),
    "sleepy_download": (120, 2, 4.0, 30, 0.03, 180, 400),
    "call$variants": (60, 8, 32.0, 120, 0.55, 2600, 2400),
    "group:qc": (20, 1, 2.0, 20, 0.70, 700, 200),
}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def job_row(
    rng: random.Random, rule: str, index: int, attempt: int, fails: bool, tricky: bool = True
) -> dict:
    _count, cpus, mem_gib, wall_min, use, peak_mib, run_s = RULES[rule]
    site = NO_MEMORY_SITE if index % 5 == 0 else "cloud-a"
    created = START + timedelta(seconds=index * 25 + rng.uniform(0, 20) + (attempt - 1) * 3000)
    wait = rng.uniform(5, 900)
    started = created + timedelta(seconds=wait)
    run = run_s * rng.uniform(0.6, 1.2) * (0.3 if fails else 1)
    ended = started + timedelta(seconds=run)
    cpu_time = run * cpus * min(use * rng.uniform(0.8, 1.1), 1.0)
    na_reasons: dict[str, str] = {}
    peak = peak_mib * rng.uniform(0.7, 1.2)
    pull = rng.choice([0.0, 0.0, 12.5])
    if site == NO_MEMORY_SITE:
        peak = None
        na_reasons["peak_memory_mib"] = na_reasons["peak_memory_source"] = NO_MEMORY_REASON
    row = {
        "rule": rule,
        "wildcards": "" if rule.startswith("group:") else f"sample=S{index:04d},ref={REF[tricky]}",
        "snakemake_jobid": index,
        "attempt": attempt,
        "prominence_id": 1000 + index * 3 + attempt,
        "server_retries": 0,
        "status": "failed" if fails else "completed",
        "exit_code": 1 if fails else 0,
        "reason": (EVIL_REASON if tricky else "Walltime limit exceeded") if fails else "",
        "site": site,
        "cpu_model": "AMD EPYC 7763",
        "requested_cpus": cpus,
        "requested_memory_gib": mem_gib,
        "requested_disk_gib": 10.0,
        "requested_walltime_min": float(wall_min),
        "provisioned_cpus": cpus,
        "provisioned_memory_gib": mem_gib,
        "created_at": iso(created),
        "started_at": iso(started),
        "ended_at": iso(ended),
        "queue_wait_s": wait,
        "image_pull_s": pull,
        "stage_in_s": 2.0,
        "run_s": run,
        "stage_out_s": 1.5,
        "cpu_time_s": cpu_time,
        "cpu_efficiency": cpu_time / (run * cpus),
        "cpu_efficiency_provisioned": cpu_time / (run * cpus),
        "peak_memory_mib": peak,
        "peak_memory_source": None if peak is None else "maxResidentSetSizeKB",
        "image_pulled": pull > 0,
        "memory_share": None if peak is None else peak / (mem_gib * 1024),
        "walltime_share": run / (wall_min * 60),
        "na_reasons": na_reasons,
    }
    return row


def never_started(rng: random.Random, index: int, tricky: bool = True) -> dict:
    """A job deleted while still queued: no start, no measurements."""
    row = job_row(rng, "bwa_map", index, 1, fails=True, tricky=tricky)
    row.update(
        status="deleted",
        exit_code=None,
        reason="Job deleted by user",
        started_at=None,
        queue_wait_s=None,
        run_s=None,
        cpu_time_s=None,
        cpu_efficiency=None,
        cpu_efficiency_provisioned=None,
        peak_memory_mib=None,
        memory_share=None,
        walltime_share=None,
    )
    row["na_reasons"] = {
        "started_at": "the job never started",
        "run_s": "the job never started",
        "cpu_time_s": "the job never started",
        "peak_memory_mib": "the job never started",
    }
    return row


def memory_killed(rng: random.Random, index: int, tricky: bool = True) -> dict:
    """A job PROMINENCE held for its memory and removed: no task results."""
    row = job_row(rng, "call$variants", index, 1, fails=True, tricky=tricky)
    row.update(
        status="killed",
        exit_code=None,
        reason=MEMORY_KILL_REASON,
        run_s=None,
        cpu_time_s=None,
        cpu_efficiency=None,
        cpu_efficiency_provisioned=None,
        peak_memory_mib=None,
        peak_memory_source=None,
        memory_share=None,
        walltime_share=None,
    )
    gone = "the worker reported no task results"
    row["na_reasons"] = dict.fromkeys(
        ("exit_code", "run_s", "cpu_time_s", "peak_memory_mib", "peak_memory_source"), gone
    )
    return row


def rerun(rng: random.Random, index: int, tricky: bool = True) -> dict:
    """A job PROMINENCE ran twice: its figures are the last run's, there is no queue wait."""
    row = job_row(rng, "bwa_map", index, 1, fails=False, tricky=tricky)
    row.update(server_retries=1, queue_wait_s=None)
    row["na_reasons"]["queue_wait_s"] = RERUN_REASON
    return row


def make_jobs(seed: int = 13, tricky: bool = True) -> list[dict]:
    rng = random.Random(seed)
    jobs, index = [], 0
    for rule, (count, *_rest) in RULES.items():
        for _ in range(count):
            index += 1
            fails = index % 23 == 0
            name = name_of(rule, tricky)
            jobs.append(job_row(rng, rule, index, 1, fails, tricky) | {"rule": name})
            if fails:
                jobs.append(job_row(rng, rule, index, 2, False, tricky) | {"rule": name})
    for _ in range(3):
        index += 1
        jobs.append(never_started(rng, index, tricky))
    for _ in range(2):
        index += 1
        jobs.append(memory_killed(rng, index, tricky) | {"rule": name_of("call$variants", tricky)})
    index += 1
    jobs.append(rerun(rng, index, tricky))
    return jobs


def name_of(rule: str, tricky: bool) -> str:
    return rule if tricky else rule.replace("$", "_")


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def suggestion(rule: str, eff: list[float], mem: list[float], run: list[float]) -> str:
    """A plausible one-line suggestion (the real ones come from the report data module)."""
    parts = []
    if eff and statistics.median(eff) < 0.1:
        parts.append(f"threads=1 (median CPU efficiency {100 * statistics.median(eff):.0f} %)")
    if mem:
        parts.append(f"mem_mb={round(max(mem) * 1.2)} (peak {max(mem):.0f} MiB + 20 %)")
    else:
        parts.append("no mem_mb: no memory figures")
    parts.append(f"runtime={round(max(run) * 1.5 / 60) + 1} (longest run + 50 %)")
    return "; ".join(parts)


def make_rules(jobs: list[dict], tricky: bool = True) -> list[dict]:
    rules = []
    for rule in dict.fromkeys(j["rule"] for j in jobs):
        own = [j for j in jobs if j["rule"] == rule]
        ok = [j for j in own if j["status"] == "completed" and j["exit_code"] == 0]

        def values(key: str, own: list[dict] = own) -> list[float]:
            return [j[key] for j in own if j[key] is not None]

        def hours(job: dict) -> float:
            return job["requested_cpus"] * (job["run_s"] or 0) / 3600

        eff, mem, run = values("cpu_efficiency"), values("peak_memory_mib"), values("run_s")
        rules.append(
            {
                "rule": rule,
                "jobs": len(own),
                "ok": len(ok),
                "failed": len(own) - len(ok),
                "retried": sum(1 for j in own if j["attempt"] > 1 or j["server_retries"]),
                "memory_kills": sum(1 for j in own if j["reason"] == MEMORY_KILL_REASON),
                "core_hours_requested": sum(hours(j) for j in own),
                "core_hours_used": sum((j["cpu_time_s"] or 0) / 3600 for j in own),
                "core_hours_failed": sum(hours(j) for j in own if j not in ok),
                "cpu_efficiency_median": median(eff),
                "cpu_efficiency_max": max(eff, default=None),
                "peak_memory_mib_median": median(mem),
                "peak_memory_mib_max": max(mem, default=None),
                "peak_memory_maybe_pull": sum(
                    1 for j in own if j["peak_memory_mib"] is not None and j["image_pulled"]
                ),
                "run_s_median": median(run),
                "run_s_max": max(run, default=None),
                "queue_wait_s_mean": statistics.fmean(values("queue_wait_s")),
                "suggested_threads": 1 if rule == "sleepy_download" else None,
                "suggested_mem_mb": round(max(mem) * 1.2) if mem else None,
                "suggested_runtime_min": round(max(run) * 1.5 / 60) + 1,
                "suggestion": (
                    f"request threads=1 <for {rule}> & mem_mb from peak x 1.2"
                    if tricky
                    else suggestion(rule, eff, mem, run)
                ),
            }
        )
    return rules


def make_summary(jobs: list[dict], rules: list[dict]) -> dict:
    requested = sum(r["core_hours_requested"] for r in rules)
    used = sum(r["core_hours_used"] for r in rules)
    worst = sorted(rules, key=lambda r: r["core_hours_used"] - r["core_hours_requested"])[:3]
    return {
        "run_id": "a1b2c3d4",
        "started_at": "2026-11-28T08:00:00Z",
        "ended_at": "2026-11-28T12:10:00Z",
        "jobs": len(jobs),
        "ok": sum(r["ok"] for r in rules),
        "failed": sum(r["failed"] for r in rules),
        "memory_kills": sum(r["memory_kills"] for r in rules),
        "core_hours_requested": requested,
        "core_hours_used": used,
        "core_hours_failed": sum(r["core_hours_failed"] for r in rules),
        "queue_wait_total_h": sum(j["queue_wait_s"] or 0 for j in jobs) / 3600,
        "cpu_efficiency_overall": used / requested,
        "worst_rules": [
            {
                "rule": r["rule"],
                "wasted_core_hours": r["core_hours_requested"] - r["core_hours_used"],
            }
            for r in worst
        ],
        "report_dir": ".snakemake/prominence_reports/a1b2c3d4",
        "low_cpu_efficiency_threshold": 0.5,
    }


def make_report_data(seed: int = 13, tricky: bool = True) -> tuple[list[dict], list[dict], dict]:
    jobs = make_jobs(seed, tricky)
    rules = make_rules(jobs, tricky)
    return jobs, rules, make_summary(jobs, rules)


if __name__ == "__main__":
    import pathlib
    import sys

    from snakemake_executor_plugin_prominence.report.html import write_html

    write_html(*make_report_data(tricky=False), pathlib.Path(sys.argv[1]))
