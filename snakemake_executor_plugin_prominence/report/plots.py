"""The run report's plots, drawn with matplotlib and returned as inline SVG text.

Only `matplotlib.figure.Figure` is used (never pyplot), so building a report leaves no global
figure state behind and needs no display. Importing this module raises ImportError when
matplotlib (the `report` extra) is missing; the report data module relies on that to fall back
to the TSV/JSONL files alone.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# A timeline with more rows than this is thinned to every k-th job in creation order: beyond a
# few thousand rows a line per job is thinner than a pixel and only makes the file larger.
TIMELINE_MAX_JOBS = 2000

# The three per-rule box plots: (column of a job row, title).
SHARE_METRICS = (
    ("cpu_efficiency", "CPU efficiency (CPU time / (run time x requested cpus))"),
    ("memory_share", "Peak memory / requested memory"),
    ("walltime_share", "Run time / requested walltime"),
)

COLOUR_QUEUED = "#b0b7c3"
COLOUR_OK = "#2b6cb0"
COLOUR_FAILED = "#c53030"


def plain_label(text: str) -> str:
    """Keep matplotlib from reading `$...$` in a rule name as mathematics."""
    return text.replace("$", r"\$")


def figure_svg(figure: Figure, prefix: str) -> str:
    """The figure as an `<svg>` element for inlining in HTML.

    Text is drawn as paths (no font files needed). Matplotlib numbers its element ids per
    figure (`axes_1`, glyphs, clip paths), so every id and every reference to one gets `prefix`:
    several plots on one page then never share an id.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    return svg.replace('href="#', f'href="#{prefix}-').replace("url(#", f"url(#{prefix}-")


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp from a job row, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def share_values(jobs: Sequence[dict], column: str) -> list[float]:
    """The measured values of one share column in percent (unknown ones left out)."""
    values = (job.get(column) for job in jobs)
    return [100.0 * v for v in values if isinstance(v, int | float) and math.isfinite(v)]


def share_boxplots(groups: dict[str, list[dict]], low_cpu_threshold: float | None) -> str:
    """Three horizontal box plots (one row per rule) of CPU, memory and walltime use in percent
    of the request; a rule with no measured value gets an "NA" mark instead of an empty row."""
    rule_names = list(groups)
    height = 1.4 + 0.42 * max(len(rule_names), 1)
    figure = Figure(figsize=(12, height), layout="constrained")
    axes = figure.subplots(1, len(SHARE_METRICS), sharey=True)
    positions = list(range(1, len(rule_names) + 1))
    for ax, (column, title) in zip(axes, SHARE_METRICS, strict=True):
        values = [share_values(groups[name], column) for name in rule_names]
        measured = [(pos, vals) for pos, vals in zip(positions, values, strict=True) if vals]
        if measured:
            ax.boxplot(
                [vals for _, vals in measured],
                positions=[pos for pos, _ in measured],
                orientation="horizontal",
                widths=0.6,
                patch_artist=True,
                boxprops={"facecolor": "#dbe7f5", "edgecolor": COLOUR_OK},
                medianprops={"color": "#1a365d", "linewidth": 1.6},
                flierprops={"marker": ".", "markersize": 3, "markeredgecolor": "#4a5568"},
            )
        for pos, vals in zip(positions, values, strict=True):
            if not vals:
                ax.text(
                    0.02,
                    pos,
                    "NA",
                    transform=ax.get_yaxis_transform(),
                    va="center",
                    color="#718096",
                    fontstyle="italic",
                )
        ax.axvline(100, color="#4a5568", linestyle="--", linewidth=1)
        if column == "cpu_efficiency" and low_cpu_threshold is not None:
            ax.axvline(100 * low_cpu_threshold, color=COLOUR_FAILED, linestyle=":", linewidth=1)
        ax.set_xlim(left=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("% of request")
        ax.grid(axis="x", color="#e2e8f0")
    counts = [len(groups[name]) for name in rule_names]
    axes[0].set_yticks(
        positions,
        [f"{plain_label(name)} (n={n})" for name, n in zip(rule_names, counts, strict=True)],
    )
    axes[0].set_ylim(len(rule_names) + 0.5, 0.5)
    return figure_svg(figure, "boxplots")


def timeline_rows(
    jobs: Sequence[dict],
) -> tuple[list[tuple[datetime, datetime | None, datetime | None, bool]], int]:
    """(created, started, ended, ok) per job that has a creation time, in creation order, and
    the number of jobs left out for want of one."""
    rows = []
    for job in jobs:
        created = parse_time(job.get("created_at"))
        if created is None:
            continue
        ok = job.get("status") == "completed" and job.get("exit_code") in (0, None)
        rows.append(
            (created, parse_time(job.get("started_at")), parse_time(job.get("ended_at")), ok)
        )
    rows.sort(key=lambda row: row[0])
    return rows, len(jobs) - len(rows)


def thin(rows: list, limit: int = TIMELINE_MAX_JOBS) -> tuple[list, int]:
    """At most `limit` rows, evenly spaced in order, and the step used (1 = all rows)."""
    if len(rows) <= limit:
        return rows, 1
    step = math.ceil(len(rows) / limit)
    return rows[::step], step


def timeline(rows: Sequence[tuple]) -> str:
    """One line per job: queued (created → started) in grey, running (started → ended) in blue,
    or red for a failed job. Drawn as two vectorised line collections, so thousands of jobs cost
    two artists, not thousands."""
    origin = rows[0][0]
    latest = max((t for row in rows for t in row[:3] if t is not None), default=origin)
    span_s = max((latest - origin).total_seconds(), 1.0)
    unit, scale = ("hours", 3600.0) if span_s > 3 * 3600 else ("minutes", 60.0)

    def at(moment: datetime | None) -> float | None:
        return None if moment is None else (moment - origin).total_seconds() / scale

    # A job still queued or running when the data was taken reaches to the right edge.
    edge = span_s / scale
    queued: list[tuple[float, float, float]] = []
    running: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for index, (created, started, ended, ok) in enumerate(rows):
        end = at(ended) if ended is not None else edge
        queued.append((index, at(created), at(started) if started is not None else end))
        if started is not None:
            running[ok].append((index, at(started), end))

    height = min(2.5 + len(rows) * 0.008, 6.0)
    figure = Figure(figsize=(12, height), layout="constrained")
    ax = figure.subplots()
    line_width = max(0.4, min(6.0, 300.0 / len(rows)))
    for segments, colour in (
        (queued, COLOUR_QUEUED),
        (running[True], COLOUR_OK),
        (running[False], COLOUR_FAILED),
    ):
        if segments:
            ys, starts, ends = zip(*segments, strict=True)
            ax.hlines(ys, starts, ends, colors=colour, linewidth=line_width)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"{unit} since the first job was created")
    ax.set_ylabel("jobs, in order of creation")
    ax.grid(axis="x", color="#e2e8f0")
    legend = [
        Line2D([], [], color=c, linewidth=4) for c in (COLOUR_QUEUED, COLOUR_OK, COLOUR_FAILED)
    ]
    ax.legend(legend, ["queued", "running (ok)", "running (failed)"], loc="lower right", fontsize=8)
    return figure_svg(figure, "timeline")


def na_reason_counts(jobs: Sequence[dict], column: str, source: str | None) -> Counter:
    """How often each reason explains a missing value of `column` (or of the column it is
    computed from), e.g. {"site reports no memory figures": 12}."""
    reasons: Counter = Counter()
    for job in jobs:
        if job.get(column) is None:
            found = job.get("na_reasons") or {}
            reasons[found.get(column) or (source and found.get(source)) or "no reason given"] += 1
    return reasons
