"""Fetch a finished job's stdout/stderr into ``.snakemake/prominence_logs/``.

The file is what ``--show-failed-logs`` prints (it is passed to Snakemake as ``aux_logs``), so
a failure can be read in one place without the PROMINENCE CLI. Known secret values (the
token, environment values sent to the job) are redacted before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_executor_plugin_prominence.job.diagnostics import explain
from snakemake_executor_plugin_prominence.service.client import ProminenceClient, ProminenceError

LOG_ROOT = Path(".snakemake") / "prominence_logs"
REDACTED = "<redacted>"
#: Enough to show what went wrong without filling the disk with a chatty job's output.
MAX_STREAM_BYTES = 2 * 1024 * 1024
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.=+-]")


def log_path(job: JobExecutorInterface, prominence_id: int, root: Path = LOG_ROOT) -> Path:
    """``<root>/<rule>/<wildcard>_<value>/.../<id>.log``; group jobs under ``groups/<name>``."""
    if job.is_group():
        parts = ["groups", getattr(job, "groupid", job.name)]
    else:
        parts = [job.name]
        wildcards = getattr(job, "wildcards", None) or {}
        parts += [f"{key}_{value}" for key, value in dict(wildcards).items()]
    safe = [(_UNSAFE_PATH_CHARS.sub("_", str(part)) or "_")[:120] for part in parts]
    return root.joinpath(*safe, f"{prominence_id}.log")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (longer ones first) with a marker."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def fetch_stream(client: ProminenceClient, prominence_id: int, stream: str) -> str:
    """The tail of one output stream as text; a note instead of it when it cannot be read."""
    try:
        data = client.read_output(prominence_id, stream)
    except ProminenceError as e:
        return f"(could not read {stream} from PROMINENCE: {e})\n"
    if len(data) > MAX_STREAM_BYTES:
        skipped = len(data) - MAX_STREAM_BYTES
        data = data[-MAX_STREAM_BYTES:]
        return f"(first {skipped} bytes left out)\n" + data.decode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def save_job_log(
    path: Path,
    header: str,
    streams: dict[str, str],
    secrets: Iterable[str],
) -> Path:
    """Write ``header`` and each stream under its own heading; returns ``path``."""
    secrets = list(secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write(redact(header.rstrip("\n"), secrets) + "\n")
        for name, text in streams.items():
            out.write(f"\n===== {name} =====\n")
            out.write(redact(text, secrets))
            if text and not text.endswith("\n"):
                out.write("\n")
    return path


def job_log_header(prominence_id: int, description: dict[str, Any] | None, outcome: str) -> str:
    name = (description or {}).get("name", "")
    return f"# PROMINENCE job {prominence_id} ({name}): {outcome}"


@dataclass(frozen=True)
class KeptLog:
    """A finished job's log on disk, and what its output says went wrong."""

    #: where it was saved; None when it could not be (``problem`` says why)
    path: Path | None
    problem: str | None
    #: known failures its stderr/stdout show (``diagnostics.explain``), for a failed job
    findings: list[str]


def keep(
    client: ProminenceClient,
    prominence_id: int,
    job: JobExecutorInterface,
    detail: dict[str, Any],
    outcome: str,
    secrets: Iterable[str],
    image: str | None = None,
) -> KeptLog:
    """Fetch the job's stdout and stderr, save them under :func:`log_path` (secrets redacted)
    and, when ``image`` is given (a failure), read them for known causes. Never raises for a
    file that cannot be written: the job must still be reported, or Snakemake waits for ever."""
    streams = {name: fetch_stream(client, prominence_id, name) for name in ("stdout", "stderr")}
    path: Path | None = None
    problem = None
    try:
        path = save_job_log(
            log_path(job, prominence_id),
            job_log_header(prominence_id, detail, outcome),
            streams,
            secrets,
        )
    except OSError as e:
        problem = f"Could not save the log of PROMINENCE job {prominence_id}: {e}"
    findings = [] if image is None else explain(streams["stderr"] + "\n" + streams["stdout"], image)
    return KeptLog(path, problem, findings)
