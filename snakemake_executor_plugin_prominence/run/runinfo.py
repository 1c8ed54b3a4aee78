"""What identifies a run on PROMINENCE, and what a run sets up around its jobs.

A run is its id and its working directory's key, carried by every job as labels (the label
vocabulary is ``job.labels``'s): the run's label lists a run's jobs, the directory's finds
the jobs a killed earlier run of the same workflow left behind (``find_leftovers``), which a
run adopts (``run.adoption``), or reports or deletes at start when adoption is off. A
detached run's jobs carry the key of the directory it was submitted from, which ``submit``
hands to the head (``WORKDIR_KEY_ENV``): the head runs in a scratch directory of some worker.
Jobs of a run whose head job is still active belong to a live run: no other run touches them.
Deleting a run's jobs goes in chunks of ids.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from snakemake_executor_plugin_prominence.job.description import label_value
from snakemake_executor_plugin_prominence.job.labels import HEAD_LABEL, RUN_LABEL, WORKDIR_LABEL
from snakemake_executor_plugin_prominence.job.verdict import ACTIVE_STATUSES
from snakemake_executor_plugin_prominence.run.tracking import show_ids, url_chunks
from snakemake_executor_plugin_prominence.service.client import (
    AuthenticationError,
    ProminenceClient,
    ProminenceError,
    WrongURL,
)

#: A detached run's head job sets this so that its Snakemake uses the run id `submit` printed.
RUN_ID_ENV = "PROMINENCE_SNAKEMAKE_RUN_ID"
#: ... and this, so that its jobs carry the key of the directory `submit` ran in (the head
#: itself runs in a scratch directory that differs per worker and is shared between runs).
WORKDIR_KEY_ENV = "PROMINENCE_SNAKEMAKE_WORKDIR_KEY"


def run_constraint(run_id: str) -> str:
    """The label constraint that finds every job of a run (``prominence list --constraint``)."""
    return f"{RUN_LABEL}={run_id}"


@dataclass(frozen=True)
class RunLabels:
    run_id: str
    workdir_key: str

    @classmethod
    def new(cls, workdir: str) -> RunLabels:
        """This run's labels: the run id and directory key a detached run's head was given
        (``RUN_ID_ENV``, ``WORKDIR_KEY_ENV``), else a new id and the key of ``workdir``."""
        given = os.environ.get(RUN_ID_ENV, "").strip()
        run_id = label_value(given) if given else uuid.uuid4().hex
        key = os.environ.get(WORKDIR_KEY_ENV, "").strip()
        return cls(run_id, label_value(key) if key else workdir_key(workdir))

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


@dataclass(frozen=True)
class Leftovers:
    """The active jobs of earlier runs of this directory, as one detailed listing gave them."""

    #: jobs of runs that are over (detailed: labels included), by PROMINENCE id
    jobs: list[dict[str, Any]] = field(default_factory=list)
    #: live detached runs (their head job is active) -> how many active jobs they have here
    live_runs: dict[str, int] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        return [job["id"] for job in self.jobs]


def find_leftovers(client: ProminenceClient, run: RunLabels) -> Leftovers:
    """One ``GET /jobs?constraint=snakemakewd=KEY&detail``: the active jobs of other runs of
    this directory, minus those of live detached runs (whose head job is active)."""
    listed = [
        job
        for job in client.find_jobs(run.workdir_constraint, detail=True)
        if isinstance(job.get("id"), int) and job.get("status") in ACTIVE_STATUSES
    ]
    run_of = {job["id"]: (job.get("labels") or {}).get(RUN_LABEL) for job in listed}
    heads = [job for job in listed if (job.get("labels") or {}).get(HEAD_LABEL)]
    live = {run_of[job["id"]] for job in heads} - {None}
    others = [job for job in listed if run_of[job["id"]] != run.run_id]
    return Leftovers(
        jobs=sorted((job for job in others if run_of[job["id"]] not in live), key=_job_id),
        live_runs=dict(
            Counter(str(run_of[job["id"]]) for job in others if run_of[job["id"]] in live)
        ),
    )


def _job_id(job: dict[str, Any]) -> int:
    return int(job["id"])


def first_look(client: ProminenceClient, run: RunLabels, logger: Any) -> Leftovers:
    """:func:`find_leftovers` as the run's first request: a refused token raises
    ``AuthenticationError``, a base URL without PROMINENCE behind it ``WrongURL``; any other
    failure to look is only a warning (and no leftovers)."""
    try:
        found = find_leftovers(client, run)
    except (AuthenticationError, WrongURL):
        raise  # nothing will work: say so before submitting
    except ProminenceError as e:
        logger.warning(f"Could not check PROMINENCE for jobs left by an earlier run: {e}")
        return Leftovers()
    for live_run, count in sorted(found.live_runs.items()):
        logger.info(
            f"PROMINENCE: {count} active job(s) of detached run {live_run}, whose head job is "
            "still active, share this workflow directory; this run leaves them alone."
        )
    return found


def handle_leftovers(
    client: ProminenceClient, run: RunLabels, cancel: bool, logger: Any
) -> list[int]:
    """Without adoption: report (or delete) the jobs of earlier runs of this directory that
    are still active (see :func:`first_look` for what it raises). Returns their ids."""
    ids = first_look(client, run, logger).ids
    if not ids:
        return []
    shown = show_ids(ids)
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


def still_active(client: ProminenceClient, ids: list[int]) -> list[int]:
    """Those of ``ids`` still queued or running (one ``GET /jobs?id=...`` per chunk)."""
    active: set[int] = set()
    for chunk in url_chunks(ids):
        active.update(
            job["id"] for job in client.list_jobs(chunk) if job.get("status") in ACTIVE_STATUSES
        )
    return [job_id for job_id in ids if job_id in active]


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
