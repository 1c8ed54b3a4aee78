"""The run report as one self-contained HTML page (`report.html`).

A pure function of the rows the report data module builds (see its jobs/rules/summary
contract): no network is needed to open the page (plots are inline SVG with text drawn as
paths, the CSS is inline, there is no script), and every string from the data is HTML-escaped.
A value that is unknown is shown as "NA" with its reason, never as 0 %.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from snakemake_executor_plugin_prominence.report import plots
from snakemake_executor_plugin_prominence.report.tables import (
    DERIVED_FROM,
    escape,
    is_number,
    jobs_table,
    na,
    percent,
    rules_table,
    show,
)

# The box plots draw at most this many rules (those with the most jobs); the table has them all.
BOXPLOT_MAX_RULES = 40

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #1a202c; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #e2e8f0; padding-bottom: 0.2em; }
.meta { color: #4a5568; font-size: 0.9em; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #e2e8f0; border-radius: 6px; padding: 0.6em 0.9em; min-width: 10em; }
.card .value { font-size: 1.35em; font-weight: 600; }
.card .label { font-size: 0.8em; color: #4a5568; }
figure { margin: 0.5em 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .note { font-size: 0.85em; color: #4a5568; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0; }
th, td { border: 1px solid #e2e8f0; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f7fafc; } td.num { text-align: right; white-space: nowrap; }
.na { color: #718096; font-style: italic; } td.text { min-width: 8em; max-width: 30em; }
td.suggestion { min-width: 20em; }
.src { display: block; white-space: normal; min-width: 8em; font-size: 0.85em; color: #4a5568; }
tr.failed td { background: #fff5f5; } tr.low td.eff { background: #fffbea; }
.scroll { overflow-x: auto; }
"""


def cards(summary: dict) -> str:
    def card(label: str, value: str) -> str:
        value_html = f'<div class="value">{value}</div>'
        return f'<div class="card">{value_html}<div class="label">{label}</div></div>'

    requested, used = summary.get("core_hours_requested"), summary.get("core_hours_used")
    used_share = ""
    if is_number(requested) and is_number(used) and requested > 0:
        used_share = f" ({percent(used / requested)})"
    return (
        '<div class="cards">'
        + "".join(
            [
                card("jobs", show(summary.get("jobs"))),
                card("ok / failed", f"{show(summary.get('ok'))} / {show(summary.get('failed'))}"),
                card("killed for using too much memory", show(summary.get("memory_kills"))),
                card("core-hours requested", show(requested, lambda v: f"{v:.2f}")),
                card("core-hours used", show(used, lambda v: f"{v:.2f}") + used_share),
                card(
                    "core-hours lost to failed attempts",
                    show(summary.get("core_hours_failed"), lambda v: f"{v:.2f}"),
                ),
                card(
                    "total queue wait",
                    show(summary.get("queue_wait_total_h"), lambda v: f"{v:.2f} h"),
                ),
                card(
                    "overall CPU efficiency", show(summary.get("cpu_efficiency_overall"), percent)
                ),
            ]
        )
        + "</div>"
    )


def worst_rules(summary: dict) -> str:
    worst = [w for w in summary.get("worst_rules") or [] if isinstance(w, dict)]
    if not worst:
        return ""
    items = ", ".join(
        f"{escape(w.get('rule'))} ({show(w.get('wasted_core_hours'), lambda v: f'{v:.2f}')} core-h)"
        for w in worst
    )
    return f"<p>Most core-hours requested but not used: {items}.</p>"


def busiest_rules(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The rules with the most jobs, at most BOXPLOT_MAX_RULES of them, in their own order."""
    if len(groups) <= BOXPLOT_MAX_RULES:
        return groups
    chosen = set(sorted(groups, key=lambda name: -len(groups[name]))[:BOXPLOT_MAX_RULES])
    return {name: own for name, own in groups.items() if name in chosen}


def boxplot_section(groups: dict[str, list[dict]], low_cpu: float | None) -> str:
    if not groups:
        return '<p class="note">No jobs, nothing to plot.</p>'
    plotted = busiest_rules(groups)
    names = list(plotted)
    svg = plots.share_boxplots(plotted, low_cpu)
    threshold = (
        f" the dotted red line is the low-CPU-efficiency threshold ({percent(low_cpu)});"
        if low_cpu is not None
        else ""
    )
    left_out = (
        f" There are {len(groups)} rules; the plot shows the {len(names)} with the most jobs,"
        " the table below has them all."
        if len(names) < len(groups)
        else ""
    )
    missing = []
    for column, title in plots.SHARE_METRICS:
        for name, own in plotted.items():
            counts = plots.na_reason_counts(own, column, DERIVED_FROM.get(column))
            for why, count in counts.items():
                missing.append(
                    f"<li>{escape(title.split(' (')[0])}, {escape(name)}: {count} of "
                    f"{len(own)} jobs {na(why)}</li>"
                )
    listed = (
        f'<p class="note">Not plotted (unknown values):</p><ul class="note">{"".join(missing)}</ul>'
        if missing
        else ""
    )
    caption = (
        "Each box spans the middle half of a rule's jobs (every attempt with a measured "
        "value), the line is the median, whiskers reach 1.5 box lengths, dots are outliers. "
        f"The dashed line is 100 % of what was requested;{threshold} "
        "far below 100 % means the rule asks for more than it uses. A job's peak memory is "
        "that of its largest process, and of a job that pulled its image in that run it may "
        "be the pull's (the tables below say which)." + left_out
    )
    figure = f'<figure class="plot" id="plot-shares">{svg}<figcaption>{caption}</figcaption>'
    return f"{figure}</figure>{listed}"


def timeline_section(jobs: Sequence[dict]) -> str:
    rows, undated = plots.timeline_rows(jobs)
    if not rows:
        return '<p class="note">No job has a creation time, so there is no timeline.</p>'
    shown, step = plots.thin(rows)
    notes = []
    if step > 1:
        notes.append(
            f"{len(rows)} jobs are more than the timeline draws "
            f"({plots.TIMELINE_MAX_JOBS}); it shows one job in every {step} in order of "
            f"creation ({len(shown)} jobs)."
        )
    if undated:
        notes.append(f"{undated} jobs without a creation time are left out.")
    caption = (
        "Each line is one job: grey while it waited in the queue (created → started), "
        "blue while it ran (started → ended), red when that attempt failed. " + " ".join(notes)
    )
    return (
        f'<figure class="plot" id="plot-timeline">{plots.timeline(shown)}'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def group_by_rule(rules: Sequence[dict], jobs: Sequence[dict]) -> dict[str, list[dict]]:
    """Each rule's job rows, rules in the rules table's order, then any rule only jobs name."""
    groups: dict[str, list[dict]] = {str(rule.get("rule")): [] for rule in rules}
    for job in jobs:
        if job.get("rule") is not None:
            groups.setdefault(str(job["rule"]), []).append(job)
    return {name: own for name, own in groups.items() if own}


def render(jobs: list[dict], rules: list[dict], summary: dict) -> str:
    """The whole page as a string."""
    low_cpu = summary.get("low_cpu_efficiency_threshold")
    low_cpu = low_cpu if is_number(low_cpu) else None
    groups = group_by_rule(rules, jobs)
    run_id = summary.get("run_id")
    meta = " · ".join(
        f"{label} {escape(summary[key])}"
        for key, label in (
            ("started_at", "started"),
            ("ended_at", "ended"),
            ("report_dir", "files in"),
        )
        if summary.get(key)
    )
    low_note = (
        f" Rows with a median CPU efficiency below {percent(low_cpu)} are shaded."
        if low_cpu is not None
        else ""
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>PROMINENCE run report {escape(run_id or '')}</title>",
            f"<style>{STYLE}</style></head><body>",
            f"<h1>PROMINENCE run report{': ' + escape(run_id) if run_id else ''}</h1>",
            f'<p class="meta">{meta}</p>',
            '<section id="summary"><h2>Summary</h2>',
            cards(summary),
            worst_rules(summary),
            "</section>",
            '<section id="shares"><h2>Use as a share of the request, per rule</h2>',
            boxplot_section(groups, low_cpu),
            "</section>",
            '<section id="timeline"><h2>Timeline</h2>',
            timeline_section(jobs),
            "</section>",
            '<section id="suggestions"><h2>Rules and suggestions</h2>',
            f'<p class="note">What to request next time, per rule.{low_note}</p>',
            rules_table(rules, groups, low_cpu),
            "</section>",
            '<section id="jobs"><h2>Jobs</h2>',
            jobs_table(jobs),
            "</section>",
            "</body></html>",
        ]
    )


def write_html(jobs: list[dict], rules: list[dict], summary: dict, path: pathlib.Path) -> None:
    """Write the report page to `path` (written whole, then moved into place)."""
    path = pathlib.Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render(jobs, rules, summary), encoding="utf-8")
    partial.replace(path)
