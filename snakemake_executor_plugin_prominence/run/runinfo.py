"""What identifies a run and its jobs on PROMINENCE, and what a run sets up around its jobs.

Every job carries the run's label (``snakemakerun``) and the working directory's label
(``snakemakewd``): the first lists a run's jobs, the second finds jobs a killed earlier run of
the same workflow left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.parse
import uuid
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_executor_plugin_prominence import events, jobspec, tracking
from snakemake_executor_plugin_prominence.client import (
    AuthenticationError,
    ProminenceClient,
    ProminenceError,
    WrongURL,
)

RUN_LABEL = "snakemakerun"
WORKDIR_LABEL = "snakemakewd"
#: set (to "1") on a group job, whose snakemakerule label is then the group's id
GROUP_LABEL = "snakemakegroup"
#: a rule job's wildcards ``k=v,k=v``, escaped to label characters (see encode_wildcards)
WILDCARDS_LABEL = "snakemakewildcards"
#: the wildcards label's value when they do not fit into a label
WILDCARDS_TOO_LONG = "_"
_LABEL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-/")
_ESCAPE = re.compile(r"_([0-9A-F]{2})")
#: A detached run's head job sets this so that its Snakemake uses the run id `submit` printed.
RUN_ID_ENV = "PROMINENCE_SNAKEMAKE_RUN_ID"


def run_constraint(run_id: str) -> str:
    """The label constraint that finds every job of a run (``prominence list --constraint``)."""
    return f"{RUN_LABEL}={run_id}"


@dataclass(frozen=True)
class RunLabels:
    run_id: str
    workdir_key: str

    @classmethod
    def new(cls, workdir: str) -> RunLabels:
        given = os.environ.get(RUN_ID_ENV, "").strip()
        run_id = jobspec.label_value(given) if given else uuid.uuid4().hex
        return cls(run_id, workdir_key(workdir))

    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.run_id, WORKDIR_LABEL: self.workdir_key}

    @property
    def run_constraint(self) -> str:
        return run_constraint(self.run_id)

    @property
    def workdir_constraint(self) -> str:
        return f"{WORKDIR_LABEL}={self.workdir_key}"


def workdir_key(workdir: str, host: str | None = None) -> str:
    """A short stable key for this working directory on this machine."""
    where = f"{host or socket.getfqdn()}:{workdir}"
    return hashlib.sha256(where.encode("utf-8")).hexdigest()[:20]


def job_labels(job: JobExecutorInterface) -> dict[str, str]:
    """Per-job labels: rule (or group), Snakemake job id, attempt, a unique submission key,
    and for the run report (which a rebuild reads back from PROMINENCE alone) whether it is a
    group job and the rule's wildcards."""
    labels = {
        "snakemakerule": jobspec.label_value(jobspec.rule_label(job)),
        "snakemakejob": jobspec.label_value(job.jobid),
        "snakemakeattempt": str(job.attempt),
        "snakemakekey": uuid.uuid4().hex,
    }
    identity = events.job_identity(job)
    if identity["group"] is not None:
        labels[GROUP_LABEL] = "1"
    elif identity["wildcards"]:
        text = ",".join(f"{key}={value}" for key, value in identity["wildcards"].items())
        labels[WILDCARDS_LABEL] = encode_wildcards(text)
    return labels


def encode_wildcards(text: str) -> str:
    """``sample=A,n=1`` as a label value: every byte outside ``[A-Za-z0-9./-]`` becomes
    ``_XX`` (its hex), e.g. ``sample_3DA_2Cn_3D1``; too long for a label: ``_``."""
    encoded = "".join(
        char if char in _LABEL_SAFE else "".join(f"_{byte:02X}" for byte in char.encode())
        for char in text
    )
    return encoded if len(encoded) <= jobspec.MAX_LABEL_LENGTH else WILDCARDS_TOO_LONG


def decode_wildcards(value: str) -> str | None:
    """The wildcards text of :func:`encode_wildcards`; None when they did not fit."""
    if value == WILDCARDS_TOO_LONG:
        return None
    raw = _ESCAPE.sub(lambda match: f"%{match.group(1)}", value)
    return urllib.parse.unquote(raw, errors="replace")


def handle_leftovers(
    client: ProminenceClient, run: RunLabels, cancel: bool, logger: Any
) -> list[int]:
    """Report (or delete) jobs of an earlier run of this directory that are still active.

    Returns their ids. This is also the run's first request: a refused token raises
    ``AuthenticationError``, a base URL without PROMINENCE behind it ``WrongURL``; any
    other failure to look is only a warning.
    """
    try:
        ids = active_job_ids(client, run.workdir_constraint)
    except (AuthenticationError, WrongURL):
        raise  # nothing will work: say so before submitting
    except ProminenceError as e:
        logger.warning(f"Could not check PROMINENCE for jobs left by an earlier run: {e}")
        return []
    if not ids:
        return []
    shown = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
    if not cancel:
        logger.warning(
            f"{len(ids)} PROMINENCE job(s) from an earlier run of this workflow directory are "
            f"still queued or running: {shown}. They may write the same outputs as this run. "
            "Delete them with --prominence-cancel-leftovers, or list them with "
            f"`prominence list --constraint {run.workdir_constraint}`."
        )
        return ids
    deleted = delete_in_chunks(client, ids, logger, run.workdir_constraint)
    logger.warning(
        f"Deleted {deleted} PROMINENCE job(s) left running by an earlier run of this workflow "
        f"directory: {shown}."
    )
    return ids


def active_job_ids(client: ProminenceClient, constraint: str) -> list[int]:
    """Ids of the caller's jobs with this label that are still queued or running."""
    return sorted(
        job["id"]
        for job in client.find_jobs(constraint)
        if isinstance(job.get("id"), int) and job.get("status") in tracking.ACTIVE_STATUSES
    )


def delete_in_chunks(client: ProminenceClient, ids: list[int], logger: Any, constraint: str) -> int:
    """``DELETE /jobs?id=...`` per chunk; a failed chunk is logged with the command that lists
    the jobs (by ``constraint``), never raised. Returns how many were in chunks deleted."""
    deleted = 0
    for chunk in tracking.url_chunks(ids):
        try:
            if client.delete_jobs(chunk):
                deleted += len(chunk)
        except ProminenceError as e:
            logger.error(
                f"Could not delete PROMINENCE jobs {', '.join(map(str, chunk))}: {e}. "
                f"List them with `prominence list --constraint {constraint}`."
            )
    return deleted


def default_snakemake_image() -> str:
    return f"snakemake/snakemake:v{version('snakemake')}"
