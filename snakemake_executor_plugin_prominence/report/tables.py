"""The run report's tables, and how its values are written: HTML-escaped, units readable,
and "NA: <reason>" for anything unknown (never 0 %).

Pure string building from the report rows; the page around them is in :mod:`html`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

from snakemake_executor_plugin_prominence.report import plots

# The jobs table shows at most this many rows (failed attempts first); jobs.tsv has them all.
JOBS_TABLE_MAX_ROWS = 200

# A computed column is missing because the column it is computed from is; its reason is there.
DERIVED_FROM = {
    "cpu_efficiency": "cpu_time_s",
    "cpu_efficiency_provisioned": "provisioned_cpus",
    "memory_share": "peak_memory_mib",
    "walltime_share": "run_s",
    "queue_wait_s": "started_at",
}


def escape(value: object) -> str:
    """Text from the data, safe inside HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def na(reason: str | None = None) -> str:
    """The mark for an unknown value, with its reason when there is one."""
    text = f"NA: {escape(reason)}" if reason else "NA"
    return f'<span class="na">{text}</span>'


def percent(fraction: float) -> str:
    return f"{100 * fraction:.0f} %"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def whole(value: float) -> str:
    """A value to copy into a Snakefile as it is: no thousands separator."""
    return f"{value:.0f}"


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def job_reason(job: dict, column: str) -> str | None:
    """Why a job's value in `column` is unknown, from its own or its source column's reason."""
    reasons = job.get("na_reasons") or {}
    return reasons.get(column) or reasons.get(DERIVED_FROM.get(column, ""))


def show(value: object, form: Callable[[float], str] = number, reason: str | None = None) -> str:
    """A formatted value, or NA (with `reason`) when it is unknown."""
    if value is None:
        return na(reason)
    return escape(form(value)) if is_number(value) else escape(value)


def table(headers: Sequence[str], rows: Sequence[tuple[str, str]]) -> str:
    """An HTML table; each row is (tr class, cells html). Headers are plain text."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f'<tr class="{cls}">{cells}</tr>' for cls, cells in rows)
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def td(content: str, cls: str = "num") -> str:
    return f'<td class="{cls}">{content}</td>'


def pair(values: Sequence[str]) -> str:
    """Several figures in one cell, e.g. "median / max"."""
    return " / ".join(values)


PEAK_SOURCES = {"maxResidentSetSizeKB": "task RSS", "maxMemoryUsageKB": "job cgroup"}
MAY_BE_PULL = "may be the image pull's"


def peak_note(job: dict) -> str:
    """Where a job's peak memory comes from, and whether it may be its image pull's."""
    if job.get("peak_memory_mib") is None:
        return ""
    source = job.get("peak_memory_source")
    words = [PEAK_SOURCES.get(str(source), str(source))] if source else []
    if job.get("image_pulled") is True:
        words.append(MAY_BE_PULL)
    return f'<span class="src">{escape(" · ".join(words))}</span>' if words else ""


def rule_peak_note(rule: dict, own: list[dict]) -> str:
    """How many of a rule's peaks may be the image pull's."""
    maybe = rule.get("peak_memory_maybe_pull")
    measured = sum(1 for job in own if job.get("peak_memory_mib") is not None)
    if not is_number(maybe) or not maybe:
        return ""
    of = f" of {measured}" if measured else ""
    return f'<span class="src">{escape(f"{maybe:.0f}{of} {MAY_BE_PULL}")}</span>'


def rules_table(rules: Sequence[dict], groups: dict[str, list[dict]], low_cpu: float | None) -> str:
    headers = [
        "rule",
        "jobs (ok / failed / retried / killed for memory)",
        "core-h requested / used / failed",
        "CPU eff. median / max",
        "peak mem MiB median / max",
        "run time median / max",
        "mean queue wait",
        "suggested threads / mem_mb / runtime (min)",
        "suggestion",
    ]
    hours: Callable[[float], str] = lambda v: f"{v:.2f}"  # noqa: E731
    rows = []
    for rule in rules:
        name = rule.get("rule")
        own = groups.get(str(name), [])

        def reason(column: str, own: list[dict] = own) -> str | None:
            counts = plots.na_reason_counts(own, column, DERIVED_FROM.get(column))
            return counts.most_common(1)[0][0] if counts else None

        def both(
            keys: Sequence[str], form: Callable[[float], str], why: str | None = None, row=rule
        ) -> str:
            return pair([show(row.get(k), form, why) for k in keys])

        median = rule.get("cpu_efficiency_median")
        low = is_number(median) and low_cpu is not None and median < low_cpu
        cells = "".join(
            [
                td(escape(name), "rule"),
                td(
                    f"{show(rule.get('jobs'))} "
                    f"({both(('ok', 'failed', 'retried', 'memory_kills'), number)})"
                ),
                td(both(("core_hours_requested", "core_hours_used", "core_hours_failed"), hours)),
                td(
                    both(
                        ("cpu_efficiency_median", "cpu_efficiency_max"),
                        percent,
                        reason("cpu_efficiency"),
                    ),
                    "num eff",
                ),
                td(
                    both(
                        ("peak_memory_mib_median", "peak_memory_mib_max"),
                        number,
                        reason("peak_memory_mib"),
                    )
                    + rule_peak_note(rule, own)
                ),
                td(both(("run_s_median", "run_s_max"), duration, reason("run_s"))),
                td(show(rule.get("queue_wait_s_mean"), duration, reason("queue_wait_s"))),
                td(both(("suggested_threads", "suggested_mem_mb", "suggested_runtime_min"), whole)),
                td(escape(rule.get("suggestion") or ""), "text suggestion"),
            ]
        )
        rows.append(("low" if low else "", cells))
    return table(headers, rows)


JOB_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("snakemake_jobid", "job", str),
    ("attempt", "attempt", str),
    ("prominence_id", "PROMINENCE id", str),
    ("exit_code", "exit", str),
    ("site", "site", str),
    ("queue_wait_s", "queue wait", duration),
    ("run_s", "run", duration),
    ("cpu_efficiency", "CPU eff.", percent),
    ("peak_memory_mib", "peak mem (MiB)", number),
    ("memory_share", "mem share", percent),
    ("walltime_share", "walltime share", percent),
)


def requested(job: dict) -> str:
    """The request in one cell: cpus · memory · walltime."""
    return " · ".join(
        [
            show(job.get("requested_cpus"), number) + " cpu",
            show(job.get("requested_memory_gib"), number) + " GiB",
            show(job.get("requested_walltime_min"), number) + " min",
        ]
    )


def job_cell(job: dict, column: str, form: Callable[[float], str]) -> str:
    """One figure of a job, with what qualifies it: the peak's source, PROMINENCE's re-runs,
    an adopted job's mark."""
    cell = show(job.get(column), form, job_reason(job, column))
    if column == "peak_memory_mib":
        cell += peak_note(job)
    if column == "prominence_id" and job.get("adopted") is True:
        cell += '<span class="src">adopted from an earlier run</span>'
    if column == "attempt" and is_number(job.get("server_retries")):
        runs = job["server_retries"] + 1
        if runs > 1:
            cell += f'<span class="src">PROMINENCE ran it {runs:.0f} times</span>'
    return cell


def job_failed(job: dict) -> bool:
    return not (job.get("status") == "completed" and job.get("exit_code") in (0, None))


def jobs_table(jobs: Sequence[dict]) -> str:
    ordered = [j for j in jobs if job_failed(j)] + [j for j in jobs if not job_failed(j)]
    shown = ordered[:JOBS_TABLE_MAX_ROWS]
    headers = [
        "rule",
        "wildcards",
        "status",
        "reason",
        "requested",
        *(label for _, label, _ in JOB_COLUMNS),
    ]
    rows = []
    for job in shown:
        wildcards = job.get("wildcards")
        cells = "".join(
            [
                td(escape(job.get("rule")), "rule"),
                td(
                    na(job_reason(job, "wildcards")) if wildcards is None else escape(wildcards),
                    "text",
                ),
                td(escape(job.get("status")), "text"),
                td(escape(job.get("reason") or ""), "text"),
                td(requested(job)),
                *(td(job_cell(job, k, form)) for k, _, form in JOB_COLUMNS),
            ]
        )
        rows.append(("failed" if job_failed(job) else "", cells))
    note = (
        f"All {len(jobs)} jobs."
        if len(jobs) <= len(shown)
        else f"The first {len(shown)} of {len(jobs)} jobs, failed attempts first; "
        "every job is in <code>jobs.tsv</code> (and <code>jobs.jsonl</code>) next to this file."
    )
    return f'<p class="note">{note}</p>' + table(headers, rows)
