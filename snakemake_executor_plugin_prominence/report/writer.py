"""The run report's records and files: where every core-hour, gigabyte and minute of a run
went, and what to request next time.

During the run, :class:`RunReport` keeps a compact record of each finished PROMINENCE job
(:mod:`rows`), made from the details the status cycle already read. At the end of the run
(success, failure or Ctrl-C) :meth:`RunReport.finish` writes, under ``<report dir>/<run id>/``:
``jobs.tsv`` and ``jobs.jsonl`` (one row per PROMINENCE job), ``rules.tsv`` (per rule, with the
right-sizing suggestion, :mod:`rules`) and, when the ``report`` extra is installed,
``report.html`` (:mod:`html`); and it logs a short summary (:mod:`summary`). A failure to write
is a warning, never the run's failure.

``python -m snakemake_executor_plugin_prominence.report --run <run id>`` (:mod:`__main__`)
rebuilds the same files from PROMINENCE alone (the jobs carrying the run's label), e.g. for a
run that was killed.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence.report.rows import (
    JOB_COLUMNS,
    JobRecord,
    record_of,
    row_of,
)
from snakemake_executor_plugin_prominence.report.rules import RULE_COLUMNS, rule_rows
from snakemake_executor_plugin_prominence.report.rules import summary as run_summary
from snakemake_executor_plugin_prominence.report.summary import (
    efficiency_warnings,
    memory_notes,
    summary_lines,
)
from snakemake_executor_plugin_prominence.run.tracking import url_chunks
from snakemake_executor_plugin_prominence.service.client import ProminenceClient, ProminenceError

DEFAULT_DIR = ".snakemake/prominence_reports"
DEFAULT_LOW_CPU_EFFICIENCY = 0.5
#: ``--prominence-report-dir`` values that turn the report off
OFF = ("", "none")
HTML_HINT = (
    "For report.html install the plugin's `report` extra: "
    "pip install 'snakemake-executor-plugin-prominence[report]'."
)


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
        record = record_of(detail, success, self.run_id)
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
    for chunk in url_chunks(ids):
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
    """``(jobs, rules, summary)`` as the contract with :mod:`html` describes them.

    Jobs that are not Snakemake jobs of this plugin (no rule label, e.g. a detached run's
    head job) are left out; jobs are ordered by PROMINENCE id."""
    ours = sorted((rec for rec in records if rec.rule is not None), key=lambda r: r.prominence_id)
    jobs = [row_of(rec) for rec in ours]
    rules = rule_rows(ours)
    summary = run_summary(run_id, ours, rules, report_dir, threshold)
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
        RULE_COLUMNS,
        ([rule[c] for c in RULE_COLUMNS] for rule in rules),
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
        from snakemake_executor_plugin_prominence.report import html
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "matplotlib":
            raise  # a bug of ours, not the missing extra
        logger.info(f"Run report: no report.html. {HTML_HINT}")
        return False
    try:
        html.write_html(jobs, rules, summary, path)
    except Exception as e:  # the numbers are written: a plotting failure must not end the run
        logger.warning(f"Run report: could not write {path}: {e!r}")
        return False
    return True
