"""What the run report says in the run's log: the summary lines, the warnings about rules that
leave their cpus idle, and the notes about rules that ask for much more memory than they use.

Pure: from the rows and the summary :func:`writer.build` made, to text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: a rule whose highest peak memory is under this share of its request gets a note
MEMORY_NOTE_SHARE = 0.5


def _share(part: float | None, whole: float | None) -> str:
    if part is None or not whole:
        return "NA"
    return f"{part / whole:.0%}"


def summary_lines(summary: Mapping[str, Any], html: bool) -> list[str]:
    """The few lines the run ends with: jobs, core-hours, the most wasteful rules, the path."""
    kills = summary.get("memory_kills") or 0
    killed = f" ({kills} killed for using too much memory)" if kills else ""
    adopted = summary.get("adopted") or 0
    killed += f", {adopted} adopted from earlier runs" if adopted else ""
    lines = [
        f"PROMINENCE run report: {summary['jobs']} job(s), {summary['ok']} ok, "
        f"{summary['failed']} failed{killed}; core-hours used {summary['core_hours_used']:.3f} of "
        f"{summary['core_hours_requested']:.3f} requested "
        f"({_share(summary['core_hours_used'], summary['core_hours_requested'])}), "
        f"{summary['core_hours_failed']:.3f} in failed jobs; "
        f"queue wait {summary['queue_wait_total_h']:.3f} h in total."
    ]
    worst = summary["worst_rules"]
    if worst:
        lines.append(
            "Most core-hours requested but not used: "
            + ", ".join(f"{w['rule']} ({w['wasted_core_hours']:.3f})" for w in worst)
            + "."
        )
    where = Path(summary["report_dir"])
    lines.append(
        f"Report: {where / ('report.html' if html else 'jobs.tsv')} "
        f"(rules and suggestions: {where / 'rules.tsv'})."
    )
    return lines


def efficiency_warnings(rules: Sequence[Mapping[str, Any]], threshold: float) -> list[str]:
    """A warning per rule whose median CPU efficiency (a fraction) is below ``threshold``
    (a fraction too: comparing one with a percent would flag nothing or everything)."""
    warnings = []
    for rule in rules:
        median = rule["cpu_efficiency_median"]
        if median is None or median >= threshold:
            continue
        text = (
            f"Rule {rule['rule']}: median CPU efficiency {median:.2f} ({median:.0%}) is below "
            f"{threshold:g} (--prominence-low-cpu-efficiency)"
        )
        if rule["suggested_threads"] is not None:
            text += f"; {rule['suggestion']}"
        warnings.append(text + ".")
    return warnings


def memory_notes(
    rules: Sequence[Mapping[str, Any]], jobs: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Information (not a warning) for rules whose highest peak memory is under half of the
    memory they asked for, when they asked for more than PROMINENCE's 1 GiB minimum and no job
    of theirs was killed for its memory. A peak that may be the image pull's is an upper bound
    of the rule's own, so the note holds for it too, and says so."""
    asked: dict[str, float] = {}
    for job in jobs:
        gib = job["requested_memory_gib"]
        if gib is not None:
            asked[job["rule"]] = max(gib, asked.get(job["rule"], 0.0))
    notes = []
    for rule in rules:
        peak, gib = rule["peak_memory_mib_max"], asked.get(rule["rule"], 0.0)
        if peak is None or gib <= 1 or peak >= gib * 1024 * MEMORY_NOTE_SHARE:
            continue
        if rule.get("memory_kills"):
            continue
        text = (
            f"Rule {rule['rule']} asked for {gib:g} GiB of memory and peaked at {peak:.0f} MiB "
            f"({peak / (gib * 1024):.0%})"
        )
        maybe_pull = rule.get("peak_memory_maybe_pull") or 0
        if maybe_pull:
            text += f" or less ({maybe_pull} of its peaks may be the image pull's)"
        if rule["suggested_mem_mb"] is not None:
            text += f": mem_mb={rule['suggested_mem_mb']} would do"
        notes.append(text + ".")
    return notes
