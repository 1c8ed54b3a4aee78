"""Machine-readable job events: one versioned record per state change of a job.

Dashboards and logger plugins read the records from Snakemake's logger (the ``extra`` payload
of a DEBUG record, under :data:`EXTRA_KEY`); tools outside Snakemake read the same records as
JSON lines from the file ``--prominence-events-file`` names. The record's fields are fixed by
``job_event.schema.json`` (shipped with the package) and documented in ``docs/further.md``:
adding an optional field keeps :data:`SCHEMA_VERSION`; renaming, removing or changing the
meaning of one bumps it.

This module builds records and delivers them; :mod:`progress` decides when a job changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, TextIO

from snakemake_executor_plugin_prominence.job.identity import job_identity
from snakemake_executor_plugin_prominence.job.verdict import TERMINAL_STATUSES, exit_codes

SCHEMA_VERSION = 1
#: the key of the payload in a log record's ``extra``
EXTRA_KEY = "prominence_job_state"
SCHEMA_FILE = Path(__file__).with_name("job_event.schema.json")

PHASES = ("submitted", "queued", "running", "succeeded", "failed", "cancelled")


def phase_of(status: str | None) -> str:
    """The phase of a job PROMINENCE lists as ``status`` and that has not been judged yet.

    Statuses this plugin does not know count as queued, as the status cycle treats them as
    not finished."""
    if status is None:
        return "submitted"
    if status == "running":
        return "running"
    if status in TERMINAL_STATUSES:  # judged by final_phase once the details are read
        return "running"
    return "queued"


def final_phase(status: str | None, success: bool) -> str:
    """The phase of a finished job: ``deleted`` means cancelled, whoever deleted it."""
    if success:
        return "succeeded"
    return "cancelled" if status == "deleted" else "failed"


def subject(run_id: str, job: Any) -> str:
    """The members every record of ``job`` shares (run id and the job's identity), as JSON
    text: built once per job, so a record costs only the formatting of what changed."""
    return json.dumps({"run_id": run_id, **job_identity(job)}, separators=(",", ":"))[1:-1]


def _json(value: str | int | None) -> str:
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    return encode_basestring_ascii(str(value))


def _epoch(events: Mapping[str, Any], key: str) -> int | None:
    value = events.get(key)
    return value if type(value) is int else None


#: the last second formatted by iso_time, and its text (a run writes many records a second)
_second: tuple[int, str] = (-1, "")


def iso_time(epoch: float) -> str:
    """``2026-11-28T07:01:02.345Z`` for Unix time ``epoch``."""
    global _second
    whole = int(epoch)
    cached, text = _second
    if whole != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{int((epoch - whole) * 1000):03d}Z"


def json_line(
    shared: str,
    phase: str,
    *,
    prominence_id: int | None = None,
    entry: Mapping[str, Any] | None = None,
    reason: str | None = None,
    when: float | None = None,
) -> str:
    """One event record as a JSON line (with its newline), the form the events file keeps
    and the one every record is made from. ``shared`` is ``subject(run_id, job)``; ``entry``
    is the job as PROMINENCE last described it (a listing entry or, for a finished job, its
    details); ``reason`` replaces its ``statusReason``; ``when`` is the Unix time of the
    change (default: now).

    Formatted field by field rather than through ``json.dumps`` of a dict: a run writes a few
    records per job, and this is half the CPU time (see ``benchmarks/events.py``).
    ``tests/test_progress.py`` checks every line against ``job_event.schema.json``."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    entry = entry or {}
    events = entry.get("events") or {}
    execution = entry.get("execution")
    site, exit_code = None, None
    if execution:
        site = execution.get("site") or None
        codes = [code for code in exit_codes(entry) if code is not None]
        exit_code = next((code for code in codes if code != 0), codes[0] if codes else None)
    if reason is None:
        reason = entry.get("statusReason") or None
    stamp = iso_time(time.time() if when is None else when)
    return (
        f'{{"schema_version":{SCHEMA_VERSION},"time":"{stamp}",{shared},'
        f'"prominence_id":{_json(prominence_id)},"phase":"{phase}",'
        f'"status":{_json(entry.get("status"))},"reason":{_json(reason)},"site":{_json(site)},'
        f'"created":{_json(_epoch(events, "createTime"))},'
        f'"started":{_json(_epoch(events, "startTime"))},'
        f'"ended":{_json(_epoch(events, "endTime"))},"exit_code":{_json(exit_code)}}}\n'
    )


def describe(event: Mapping[str, Any]) -> str:
    """The record as one line for people (what ``--verbose`` prints)."""
    pid = event["prominence_id"]
    where = f"PROMINENCE job {pid}" if pid else "unsubmitted job"
    text = f"{where} (rule {event['rule']}, job {event['jobid']}): {event['phase']}"
    details = [
        value
        for value in (
            event["status"] if event["status"] != event["phase"] else None,
            event["reason"],
            f"at {event['site']}" if event["site"] else None,
            f"exit code {event['exit_code']}" if event["exit_code"] else None,
        )
        if value
    ]
    return text + (f" ({', '.join(details)})" if details else "")


class EventSink:
    """Delivers records to Snakemake's logger and, optionally, to a JSON-lines file.

    The file is opened for appending (several runs can share it; ``run_id`` tells them apart)
    and written one line per record; :meth:`flush` (after every status check) and
    :meth:`close` hand the lines to the system, so a tool tailing the file sees the changes of
    a check when it ends, at the cost of one write per check rather than one per record. A
    write that fails is reported once and the file is given up, never the run.
    """

    def __init__(self, logger: Any, path: Path | None = None) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    @property
    def active(self) -> bool:
        """Whether anyone receives records (else they are not even built)."""
        return self._file is not None or self._to_logger()

    def _to_logger(self) -> bool:
        is_enabled = getattr(self._logger, "isEnabledFor", None)
        return bool(is_enabled and is_enabled(logging.DEBUG))

    def emit(self, line: str) -> None:
        """Deliver one record, given as :func:`json_line` made it."""
        if self._to_logger():
            event = json.loads(line)
            self._logger.debug(describe(event), extra={EXTRA_KEY: event})
        if self._file is None:
            return
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(line)
            except OSError as e:
                self._give_up(e)

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                except OSError as e:
                    self._give_up(e)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _give_up(self, error: OSError) -> None:
        """Lock held: stop writing the file, say so once."""
        file, self._file = self._file, None
        with contextlib.suppress(OSError):
            file.close()  # type: ignore[union-attr]
        self._logger.warning(f"Stopped writing job events to {self.path}: {error}")
