"""The run report: where every core-hour, gigabyte and minute of a run went, and what to
request next time.

During the run, :class:`RunReport` keeps a compact record of each finished PROMINENCE job
(:mod:`report_rows`), made from the details the status cycle already read. At the end of the
run (success, failure or Ctrl-C) :meth:`RunReport.finish` writes, under
``<report dir>/<run id>/``: ``jobs.tsv`` and ``jobs.jsonl`` (one row per PROMINENCE job),
``rules.tsv`` (per rule, with the right-sizing suggestion, :mod:`report_rules`) and, when the
``report`` extra is installed, ``report.html`` (:mod:`report_html`); and it logs a short
summary. A failure to write is a warning, never the run's failure.

``python -m snakemake_executor_plugin_prominence.report --run <run id>`` rebuilds the same files
from PROMINENCE alone (the jobs carrying the run's label), e.g. for a run that was killed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence import report_rules, runinfo, tracking
from snakemake_executor_plugin_prominence.client import ProminenceClient, ProminenceError
from snakemake_executor_plugin_prominence.report_rows import (
    JOB_COLUMNS,
    JobRecord,
    record_of,
    row_of,
)

DEFAULT_DIR = ".snakemake/prominence_reports"
DEFAULT_LOW_CPU_EFFICIENCY = 0.5
#: a rule whose highest peak memory is under this share of its request gets a note
MEMORY_NOTE_SHARE = 0.5
#: ``--prominence-report-dir`` values that turn the report off
OFF = ("", "none")
HTML_HINT = (
    "For report.html install the plugin's `report` extra: "
    "pip install 'snakemake-executor-plugin-prominence[report]'."
)

log = logging.getLogger("prominence-report")


def report_root(setting: str | None) -> Path | None:
    """The directory of all run reports, or None when the setting turns the report off."""
    if setting is None:
        return Path(DEFAULT_DIR)
    return None if setting.strip().lower() in OFF else Path(setting)


def run_dir(root: Path, run_id: str) -> Path:
    """``root/<run id>`` (a run id holds label characters: no ``/`` or leading dot kept)."""
    name = run_id.replace("/", "_")
    return root / ("_" + name if name.startswith(".") else name)


class RunReport:
    """The records of one run's finished jobs; thread-safe, a few hundred bytes per job."""

    def __init__(self, run_id: str, root: Path | None, threshold: float) -> None:
        self.run_id = run_id
        self.root = root
        self.threshold = threshold
        self._lock = threading.Lock()
        self._records: dict[int, tuple[Any, ...]] = {}
        self._cancelled: set[int] = set()

    @classmethod
    def for_settings(cls, settings: Any, run_id: str) -> RunReport:
        return cls(run_id, report_root(settings.report_dir), settings.low_cpu_efficiency)

    def add(self, detail: Mapping[str, Any], success: bool | None = None) -> None:
        """A finished job's details (as the status cycle read them) and the verdict on them
        (None: judge them here)."""
        if self.root is None:
            return
        record = record_of(detail, success)
        with self._lock:
            # a plain tuple of plain values: untracked by the garbage collector
            self._records[record.prominence_id] = tuple(record)

    def cancelled(self, prominence_ids: Iterable[int]) -> None:
        """Jobs deleted at Ctrl-C: their details are read once, when the report is written."""
        if self.root is not None:
            with self._lock:
                self._cancelled.update(prominence_ids)

    def records(self) -> list[JobRecord]:
        with self._lock:
            return [JobRecord._make(values) for values in self._records.values()]

    def finish(self, client: ProminenceClient | None, logger: Any) -> Path | None:
        """Read the cancelled jobs' details, write the files and log the summary; returns the
        report's directory (None: turned off or not written). Never raises."""
        if self.root is None:
            return None
        with self._lock:
            missing = sorted(self._cancelled - set(self._records))
            self._cancelled.clear()
        if missing and client is not None:
            try:
                for detail in read_details(client, missing):
                    self.add(detail)
            except ProminenceError as e:
                logger.warning(
                    f"Run report: could not read the details of {len(missing)} cancelled "
                    f"job(s) ({e}); they are left out. Rebuild the report later with "
                    f"`{rebuild_command(self.run_id)}`."
                )
        records = self.records()
        if not records:
            logger.info("Run report: no PROMINENCE job of this run finished; nothing to report.")
            return None
        directory = run_dir(self.root, self.run_id)
        try:
            write(self.run_id, records, directory, self.threshold, logger)
        except Exception as e:  # the run's own outcome must not be replaced by the report's
            logger.warning(
                f"Run report: could not write {directory}: {e!r}. Rebuild it with "
                f"`{rebuild_command(self.run_id)}`."
            )
            return None
        return directory


def read_details(client: ProminenceClient, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The detailed form of these jobs, one ``GET /jobs?id=...&detail`` per chunk."""
    details: list[dict[str, Any]] = []
    for chunk in tracking.url_chunks(ids):
        details.extend(client.list_jobs(chunk, detail=True))
    return details


def rebuild_command(run_id: str) -> str:
    return f"python -m snakemake_executor_plugin_prominence.report --run {run_id}"


# --- the files ------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "NA" if value is None else str(value)


def _write_tsv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(value) for value in row] for row in rows)


def _notes(na_reasons: Mapping[str, str]) -> str:
    return "; ".join(f"{column}: {reason}" for column, reason in na_reasons.items())


def build(
    run_id: str, records: Iterable[JobRecord], report_dir: str, threshold: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """``(jobs, rules, summary)`` as the contract with :mod:`report_html` describes them.

    Jobs that are not Snakemake jobs of this plugin (no rule label, e.g. a detached run's
    head job) are left out; jobs are ordered by PROMINENCE id."""
    ours = sorted((rec for rec in records if rec.rule is not None), key=lambda r: r.prominence_id)
    jobs = [row_of(rec) for rec in ours]
    rules = report_rules.rule_rows(ours)
    summary = report_rules.summary(run_id, ours, rules, report_dir, threshold)
    return jobs, rules, summary


def write(
    run_id: str, records: Iterable[JobRecord], directory: Path, threshold: float, logger: Any
) -> dict[str, Any]:
    """Write every file of the report into ``directory`` and log its summary."""
    jobs, rules, summary = build(run_id, records, str(directory), threshold)
    directory.mkdir(parents=True, exist_ok=True)
    _write_tsv(
        directory / "jobs.tsv",
        [*JOB_COLUMNS, "notes"],
        ([*(job[c] for c in JOB_COLUMNS), _notes(job["na_reasons"])] for job in jobs),
    )
    with (directory / "jobs.jsonl").open("w", encoding="utf-8") as out:
        for job in jobs:
            out.write(json.dumps(job, separators=(",", ":")) + "\n")
    _write_tsv(
        directory / "rules.tsv",
        report_rules.RULE_COLUMNS,
        ([rule[c] for c in report_rules.RULE_COLUMNS] for rule in rules),
    )
    html = _write_html(jobs, rules, summary, directory / "report.html", logger)
    for line in summary_lines(summary, html):
        logger.info(line)
    for text in efficiency_warnings(rules, threshold):
        logger.warning(text)
    for text in memory_notes(rules, jobs):
        logger.info(text)
    return summary


def _write_html(
    jobs: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    summary: dict[str, Any],
    path: Path,
    logger: Any,
) -> bool:
    try:
        from snakemake_executor_plugin_prominence import report_html
    except ImportError:
        logger.info(f"Run report: no report.html. {HTML_HINT}")
        return False
    try:
        report_html.write_html(jobs, rules, summary, path)
    except Exception as e:  # the numbers are written: a plotting failure must not end the run
        logger.warning(f"Run report: could not write {path}: {e!r}")
        return False
    return True


# --- what the log says ----------------------------------------------------------------------


def _share(part: float | None, whole: float | None) -> str:
    if part is None or not whole:
        return "NA"
    return f"{part / whole:.0%}"


def summary_lines(summary: Mapping[str, Any], html: bool) -> list[str]:
    """The few lines the run ends with: jobs, core-hours, the most wasteful rules, the path."""
    kills = summary.get("memory_kills") or 0
    killed = f" ({kills} killed for using too much memory)" if kills else ""
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


# --- the rebuild command --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the report of a run from PROMINENCE alone."""
    from snakemake_executor_plugin_prominence import cli, startup

    parser = argparse.ArgumentParser(
        prog="python -m snakemake_executor_plugin_prominence.report",
        description="Rebuild the run report of an earlier run from the PROMINENCE jobs that "
        "carry its label; the URL and token settings are the plugin's.",
    )
    parser.add_argument("--run", required=True, metavar="RUN_ID", help="the run id")
    cli.add_settings(parser, only=(*cli.CONNECTION_SETTINGS, "report_dir", "low_cpu_efficiency"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    settings = cli.settings_from(args)
    try:
        root = report_root(settings.report_dir) or Path(DEFAULT_DIR)
        threshold = (
            DEFAULT_LOW_CPU_EFFICIENCY
            if settings.low_cpu_efficiency is None
            else settings.low_cpu_efficiency
        )
        startup.check_low_cpu_efficiency(threshold)
        client = startup.make_client(settings, log)
    except Exception as e:  # WorkflowError: a clear message, not a traceback
        log.error(f"prominence report: {e}")
        return 2
    constraint = runinfo.run_constraint(args.run)
    try:
        ids = sorted(
            job["id"]
            for job in client.find_jobs(constraint, include_finished=True)
            if isinstance(job.get("id"), int)
        )
        details = read_details(client, ids)
    except ProminenceError as e:
        log.error(f"prominence report: cannot list the jobs of run {args.run}: {e}")
        return 1
    finally:
        client.close()
    if not details:
        log.error(f"prominence report: PROMINENCE lists no job with the label {constraint}.")
        return 1
    directory = run_dir(root, args.run)
    write(args.run, map(record_of, details), directory, threshold, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
