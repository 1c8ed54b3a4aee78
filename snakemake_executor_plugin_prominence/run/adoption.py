"""A restarted run adopts the PROMINENCE jobs a killed earlier run left running, instead of
posting the same work again.

When the machine that runs Snakemake dies, the run's PROMINENCE jobs keep running. At start,
one detailed listing by the directory's label (``runinfo.find_leftovers``) gives the
*candidates*: the active jobs of earlier runs of this workflow directory, minus those of live
detached runs. Each time Snakemake asks to run a job, :meth:`Adoption.claim` looks for a
candidate doing the same work (``snakemakework``, ``job.fingerprint``):

1. first the PROMINENCE id Snakemake itself recorded for the job's outputs before it was
   killed (``.snakemake/incomplete``, read by :func:`recorded_ids`): that job is read by id
   when it is not a candidate, which finds one that has *completed* since;
2. else a candidate with the same fingerprint (running before queued, then the oldest).

A candidate is adopted when its fingerprint equals the job's and it is still active, or it
completed with every exit code 0 (then the job is done: nothing is submitted). One candidate
adopts at most one job. Other active candidates for the same Snakemake job (same rule and
wildcards, or group job id) would overwrite this run's outputs: each is named with what
differs and the command to delete it, or deleted at once with ``--prominence-cancel-leftovers``.
Candidates no job of this run asked for are reported (or deleted) when the run ends.

Adopted jobs keep their old labels (PROMINENCE cannot change them): listings and report
rebuilds by this run's label miss them; this run tracks them in its own registry like its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from snakemake_executor_plugin_prominence.job.fingerprint import identity_of_job, identity_of_labels
from snakemake_executor_plugin_prominence.job.labels import (
    GROUP_LABEL,
    JOB_ID_LABEL,
    RULE_LABEL,
    RUN_LABEL,
    WILDCARDS_LABEL,
    WORK_LABEL,
    decode_wildcards,
)
from snakemake_executor_plugin_prominence.job.verdict import ACTIVE_STATUSES, is_finished, verdict
from snakemake_executor_plugin_prominence.run import runinfo
from snakemake_executor_plugin_prominence.run.tracking import show_ids, url_chunks
from snakemake_executor_plugin_prominence.service.client import ProminenceClient, ProminenceError

#: Why a candidate for the same Snakemake job is not adopted, by case.
WORK_DIFFERS = "its work differs: the rule's code, inputs, params, image or resources changed"
NO_FINGERPRINT = "it carries no work fingerprint (an older version of the plugin submitted it)"
SAME_WORK_ADOPTED = "it does the same work as job {adopted}, which this run adopted"
NOT_FINGERPRINTED = "this run could not fingerprint its own job, so it cannot tell the work apart"


@dataclass
class Candidate:
    """A job of an earlier run, as its detailed listing gave it."""

    prominence_id: int
    status: str
    run_id: str | None
    work: str | None
    identity: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, detail: Mapping[str, Any]) -> Candidate:
        labels = detail.get("labels") or {}
        return cls(
            prominence_id=int(detail["id"]),
            status=str(detail.get("status")),
            run_id=labels.get(RUN_LABEL),
            work=labels.get(WORK_LABEL),
            identity=identity_of_labels(labels),
            detail=dict(detail),
        )

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def done(self) -> bool:
        """Completed with every exit code 0: its outputs are in the storage."""
        return is_finished(self.detail) and verdict(self.detail).success

    def describe(self) -> str:
        """``job 12 of run abc (rule sleep, i=3; running)``."""
        labels = self.detail.get("labels") or {}
        rule = labels.get(RULE_LABEL, "?")
        if labels.get(GROUP_LABEL):
            what = f"group {rule}, group job {labels.get(JOB_ID_LABEL, '?')}"
        else:
            encoded = labels.get(WILDCARDS_LABEL)
            wildcards = decode_wildcards(encoded) if encoded else ""
            what = f"rule {rule}" + (f", {wildcards}" if wildcards else "")
        return f"job {self.prominence_id} of run {self.run_id or '?'} ({what}; {self.status})"


def recorded_ids(workflow: Any, job: Any) -> list[int]:
    """The PROMINENCE ids Snakemake recorded for the job's outputs when an earlier run
    submitted it (``.snakemake/incomplete/``; cleared when a job ends).

    Read through ``workflow.persistence.external_jobids``, which is not part of the executor
    interface (Snakemake 9.3.5 ... 9.x have it): it is guarded, and its ``None`` entries (an
    output without a record) dropped. Under ``--rerun-incomplete`` Snakemake's own
    ``dag.incomplete_external_jobid`` says None by design, while these records still hold the
    id: that is how a job that completed after the kill is found.
    """
    reader = getattr(getattr(workflow, "persistence", None), "external_jobids", None)
    if reader is None:
        return []
    try:
        values = list(reader(job))
    except Exception:  # an unexpected record or interface: no recorded id
        return []
    return sorted({int(value) for value in values if value is not None and str(value).isdigit()})


class Adoption:
    """The candidates of one run, and which of them it adopted; thread-safe."""

    def __init__(
        self,
        client: ProminenceClient,
        run: runinfo.RunLabels,
        *,
        enabled: bool,
        cancel_leftovers: bool,
        logger: Any,
    ) -> None:
        self.enabled = enabled
        self._client = client
        self._run = run
        self._cancel = cancel_leftovers
        self._logger = logger
        self._lock = threading.Lock()
        self._candidates: dict[int, Candidate] = {}
        #: adopted candidate id -> the Snakemake job id it was adopted for
        self._adopted: dict[int, str] = {}
        #: candidates named (or deleted) as rivals of a job of this run
        self._handled: set[int] = set()
        #: runs whose detached head is active: their jobs are never adopted nor deleted
        self._live_runs: set[str] = set()
        #: recorded jobs that are no candidates, as read by id (None: the server has none)
        self._read_ahead: dict[int, Candidate | None] = {}
        self._batch: list[Candidate] = []

    @classmethod
    def at_start(
        cls, client: ProminenceClient, run: runinfo.RunLabels, settings: Any, logger: Any
    ) -> Adoption:
        """The run's first request (it raises what ``runinfo.first_look`` raises). With
        adoption off (``--prominence-no-adopt``), the leftovers are reported or deleted now,
        as before adoption existed."""
        enabled = not getattr(settings, "no_adopt", False)
        adoption = cls(
            client,
            run,
            enabled=enabled,
            cancel_leftovers=settings.cancel_leftovers,
            logger=logger,
        )
        if not enabled:
            runinfo.handle_leftovers(client, run, settings.cancel_leftovers, logger)
            return adoption
        adoption.start(runinfo.first_look(client, run, logger))
        return adoption

    def start(self, leftovers: runinfo.Leftovers) -> None:
        with self._lock:
            self._candidates = {int(job["id"]): Candidate.of(job) for job in leftovers.jobs}
            self._live_runs = set(leftovers.live_runs)
            count = len(self._candidates)
        if not count:
            return
        later = "deleted" if self._cancel else "reported"
        self._logger.info(
            f"PROMINENCE: {count} job(s) of earlier runs of this workflow directory are still "
            f"queued or running ({show_ids(sorted(self._candidates))}): each is adopted "
            "when this run asks for the same work, instead of being submitted again; those no "
            f"job of this run asks for are {later} at the end."
        )

    # --- one batch, one job ---------------------------------------------------------------

    def read_ahead(self, jobs: Iterable[Any], workflow: Any) -> None:
        """Read the jobs Snakemake recorded for this batch that are no candidates (they
        finished since the kill, typically under ``--rerun-incomplete``) in one detailed
        listing per ~500 ids, rather than one request per job in :meth:`claim`."""
        if not self.enabled:
            return
        with self._lock:
            known = set(self._candidates) | set(self._read_ahead)
        wanted = sorted({i for job in jobs for i in recorded_ids(workflow, job)} - known)
        for chunk in url_chunks(wanted):
            try:
                listed = self._client.list_jobs(chunk, detail=True)
            except ProminenceError as e:
                self._logger.warning(
                    f"PROMINENCE: could not read {len(chunk)} job(s) that an earlier run "
                    f"submitted for jobs of this run ({e}); they are read one by one."
                )
                continue
            found = {job["id"]: Candidate.of(job) for job in listed if job.get("id") in chunk}
            with self._lock:
                for prominence_id in chunk:
                    self._read_ahead[prominence_id] = found.get(prominence_id)

    def claim(self, job: Any, work: str | None, workflow: Any) -> Candidate | None:
        """The candidate this run adopts for ``job`` (whose fingerprint is ``work``), or None:
        then ``job`` is submitted. Rivals for the same Snakemake job are named or deleted.
        ``workflow``: Snakemake's, whose records may name the job an earlier run submitted."""
        if not self.enabled:
            return None
        recorded = recorded_ids(workflow, job) if work else []
        with self._lock:
            found = self._by_record(work, recorded) if work else None
            if found is None and work:
                found = self._by_work(work)
            if found is not None:
                self._adopted[found.prominence_id] = str(job.jobid)
                self._batch.append(found)
            rivals = self._rivals(identity_of_job(job), found)
        if found is not None:
            self._logger.info(self._adopted_line(found, job))
        if rivals:
            self._turn_away(job, work, found, rivals)
        return found

    def _by_record(self, work: str, recorded: Iterable[int]) -> Candidate | None:
        for prominence_id in recorded:
            if prominence_id in self._adopted or prominence_id in self._handled:
                continue
            candidate = self._candidates.get(prominence_id)
            if candidate is None:
                candidate = self._read(prominence_id)
            if candidate is None or not self._earlier(candidate):
                continue
            if candidate.work == work and (candidate.active or candidate.done):
                return candidate
        return None

    def _read(self, prominence_id: int) -> Candidate | None:
        """A recorded job that is not among the candidates: finished since, or listed under
        another directory key. An active one becomes a candidate (and may be a rival)."""
        if prominence_id in self._read_ahead:
            candidate = self._read_ahead[prominence_id]
        else:
            try:
                found = self._client.list_jobs([prominence_id], detail=True)
            except ProminenceError as e:
                self._logger.warning(
                    f"PROMINENCE: could not read job {prominence_id}, which an earlier run "
                    f"submitted for this job ({e}); submitting it again."
                )
                return None
            details = [job for job in found if job.get("id") == prominence_id]
            candidate = Candidate.of(details[0]) if details else None
        if candidate is None:
            return None
        if candidate.active and self._earlier(candidate):
            self._candidates[prominence_id] = candidate
        return candidate

    def _earlier(self, candidate: Candidate) -> bool:
        """A job of a run that is over: not this run's, nor a live detached run's."""
        return candidate.run_id != self._run.run_id and candidate.run_id not in self._live_runs

    def _by_work(self, work: str) -> Candidate | None:
        matches = [
            candidate
            for candidate in self._candidates.values()
            if candidate.work == work and candidate.active and self._free(candidate)
        ]
        if not matches:
            return None
        return min(matches, key=lambda c: (c.status != "running", c.prominence_id))

    def _free(self, candidate: Candidate) -> bool:
        key = candidate.prominence_id
        return key not in self._adopted and key not in self._handled

    def _rivals(self, identity: str | None, adopted: Candidate | None) -> list[Candidate]:
        if identity is None:
            return []
        rivals = [
            candidate
            for candidate in self._candidates.values()
            if candidate.identity == identity
            and candidate.active
            and self._free(candidate)
            and candidate is not adopted
        ]
        self._handled.update(candidate.prominence_id for candidate in rivals)
        return rivals

    def _turn_away(
        self, job: Any, work: str | None, adopted: Candidate | None, rivals: list[Candidate]
    ) -> None:
        """Rivals would overwrite this run's outputs of ``job``: delete them (under
        --prominence-cancel-leftovers) or say how to."""
        for rival in rivals:
            if rival.work is None:
                why = NO_FINGERPRINT
            elif work is None:
                why = NOT_FINGERPRINTED
            elif adopted is not None and rival.work == work:
                why = SAME_WORK_ADOPTED.format(adopted=adopted.prominence_id)
            else:
                why = WORK_DIFFERS
            if self._cancel:
                deleted = runinfo.delete_in_chunks(
                    self._client, [rival.prominence_id], self._logger, self._run.workdir_constraint
                )
                if deleted:
                    self._logger.warning(
                        f"PROMINENCE: deleted {rival.describe()}, left by an earlier run for "
                        f"Snakemake job {job.jobid}: not adopted, {why}; it would overwrite "
                        "this run's outputs."
                    )
                continue
            self._logger.warning(
                f"PROMINENCE: {rival.describe()}, left by an earlier run for Snakemake job "
                f"{job.jobid}, is not adopted: {why}. It may overwrite this run's outputs: "
                f"delete it with `prominence delete {rival.prominence_id}` (or rerun with "
                "--prominence-cancel-leftovers)."
            )

    def _adopted_line(self, candidate: Candidate, job: Any) -> str:
        if candidate.done:
            return (
                f"PROMINENCE: adopted {candidate.describe()} for Snakemake job {job.jobid}: it "
                "completed with exit code 0 after its run lost sight of it, so the job is done "
                "and nothing is submitted."
            )
        return (
            f"PROMINENCE: adopted {candidate.describe()} for Snakemake job {job.jobid} instead "
            "of submitting it again."
        )

    # --- summaries ------------------------------------------------------------------------

    def batch_done(self) -> None:
        """After a batch of jobs: how many were adopted in it (the first batch is the start)."""
        with self._lock:
            batch, self._batch = self._batch, []
            total = len(self._adopted)
        if not batch:
            return
        done = sum(1 for candidate in batch if candidate.done)
        self._logger.info(
            f"PROMINENCE: adopted {len(batch)} job(s) of earlier runs in this batch "
            f"({len(batch) - done} queued or running, {done} completed and taken as done); "
            f"{total} adopted by this run so far."
        )

    def adopted(self) -> dict[int, str]:
        """Adopted PROMINENCE id -> the Snakemake job id it was adopted for."""
        with self._lock:
            return dict(self._adopted)

    def finish(self) -> None:
        """At the end of the run: the candidates no job asked for, if still active, are
        reported with the command that deletes them (or deleted). Never raises."""
        if not self.enabled:
            return
        with self._lock:
            left = sorted(c.prominence_id for c in self._candidates.values() if self._free(c))
        if not left:
            return
        with contextlib.suppress(ProminenceError):  # else reported as they were at start
            left = runinfo.still_active(self._client, left)
        if not left:
            return
        shown = show_ids(left)
        if self._cancel:
            deleted = runinfo.delete_in_chunks(
                self._client, left, self._logger, self._run.workdir_constraint
            )
            self._logger.warning(
                f"PROMINENCE: deleted {deleted} job(s) of earlier runs of this workflow "
                f"directory that no job of this run asked for: {shown}."
            )
            return
        self._logger.warning(
            f"PROMINENCE: {len(left)} job(s) of earlier runs of this workflow directory were "
            f"not adopted, as no job of this run asked for their work, and are still queued or "
            f"running: {shown}. Delete them with `for id in {' '.join(map(str, left))}; do "
            "prominence delete $id; done`, or rerun with --prominence-cancel-leftovers."
        )
