"""What identifies a run on PROMINENCE, and what a run sets up around its jobs.

A run is its id and its working directory's key, carried by every job as labels (the label
vocabulary is ``job.labels``'s): the run's label lists a run's jobs, the directory's
finds jobs a killed earlier run of the same workflow left behind, which a run reports (or
deletes) at start. Deleting a run's jobs goes in chunks of ids.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from snakemake_executor_plugin_prominence.job.description import label_value
from snakemake_executor_plugin_prominence.job.labels import RUN_LABEL, WORKDIR_LABEL
from snakemake_executor_plugin_prominence.job.verdict import ACTIVE_STATUSES
from snakemake_executor_plugin_prominence.run.tracking import url_chunks
from snakemake_executor_plugin_prominence.service.client import (
    AuthenticationError,
    ProminenceClient,
    ProminenceError,
    WrongURL,
)

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
        run_id = label_value(given) if given else uuid.uuid4().hex
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
        if isinstance(job.get("id"), int) and job.get("status") in ACTIVE_STATUSES
    )


def delete_in_chunks(client: ProminenceClient, ids: list[int], logger: Any, constraint: str) -> int:
    """``DELETE /jobs?id=...`` per chunk; a failed chunk is logged with the command that lists
    the jobs (by ``constraint``), never raised. Returns how many were in chunks deleted."""
    deleted = 0
    for chunk in url_chunks(ids):
        try:
            if client.delete_jobs(chunk):
                deleted += len(chunk)
        except ProminenceError as e:
            logger.error(
                f"Could not delete PROMINENCE jobs {', '.join(map(str, chunk))}: {e}. "
                f"List them with `prominence list --constraint {constraint}`."
            )
    return deleted
