"""The emulator without HTTP: accepting, deleting and describing jobs.

The Flask views only translate between HTTP and these methods, and the ``Emulator`` class uses
them for inspection, so both see exactly the same jobs.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from . import plan, render, sandbox, submit_faults
from .auth import Authenticator, Identity
from .config import EmulatorConfig
from .cpuinfo import host_cpu
from .faults import RequestStats
from .hold import HoldRule
from .oidc import IdentityProvider
from .runner import Runner
from .store import JobRecord, JobStore
from .submission import Inputs, backend_error, decode_inputs, demand, stored_description
from .validation import validate_job

log = logging.getLogger(__name__)

_JOB_DIR_RE = re.compile(r"^\d+$")


class SubmissionRejected(Exception):
    """The server answers 400 with this message."""


def _first_free_id(jobs_dir: Path) -> int:
    """Continue after the ids already used in a reused state dir, so job dirs never clash."""
    used = [int(p.name) for p in jobs_dir.iterdir() if _JOB_DIR_RE.match(p.name)]
    return max(used, default=0) + 1


class EmulatorCore:
    """Store, runner and authentication of one emulator, wired together."""

    def __init__(self, config: EmulatorConfig, state_dir: Path) -> None:
        self.config = config
        self.state_dir = state_dir
        self.jobs_dir = state_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(first_id=_first_free_id(self.jobs_dir))
        self.idp = IdentityProvider(dict(config.oidc_clients), config.token_lifetime)
        self.auth = Authenticator(config.tokens, self.idp)
        self.stats = RequestStats()
        self.base_url = ""
        #: the ``execution.cpu`` of every job: they all run on this host
        self.cpu = host_cpu()
        self._inputs: dict[int, Inputs] = {}
        shims = sandbox.Shims(state_dir / "shims")
        self.runner = Runner(
            config, self.store, shims, self._inputs_of, lambda: self.base_url, self.cpu
        )
        self.submit_faults = submit_faults.SubmitFaults(config.submit_fault_rate, config.seed)
        self.hold_rule = HoldRule(config.hold_idle, config.hold_idle_match)

    def _inputs_of(self, record: JobRecord) -> Inputs:
        return self._inputs.get(record.id, Inputs(()))

    # -- the API operations ------------------------------------------------------------------

    def submit(self, owner: Identity | str, body: object) -> JobRecord:
        """Validate and queue a job; raises ``SubmissionRejected`` (400) or crashes (500).

        With ``submit_fault_rate``, a valid job may meet a transient backend failure (a 400
        too), after which it exists only when HTCondor's part failed after queueing it.
        """
        owner = owner if isinstance(owner, Identity) else Identity(owner)
        error = validate_job(body)
        if error:
            raise SubmissionRejected(error)
        assert isinstance(body, dict)  # validate_job raises for anything that is not a job dict
        fault = self.submit_faults.draw(has_inputs=bool(body.get("inputs")))
        if fault is not None and fault.stage == submit_faults.SANDBOX:
            raise SubmissionRejected(fault.message)
        inputs = decode_inputs(body)
        if fault is not None and fault.stage == submit_faults.INPUT:
            raise SubmissionRejected(fault.message)
        error = backend_error(body)
        if error:
            raise SubmissionRejected(error)
        if fault is not None and not fault.created:
            raise SubmissionRejected(fault.message)
        record = self._create(owner, body, inputs)
        if fault is not None:
            log.debug("job %d created, but its submission is answered 400", record.id)
            raise SubmissionRejected(fault.message)
        return record

    def _create(self, owner: Identity, body: dict, inputs: Inputs) -> JobRecord:
        spec = stored_description(body)
        need = demand(spec, self.config.total_cpus)
        now = time.time()
        job_id = self.store.reserve_id()
        queue_limit = int(spec.get("policies", {}).get("maximumTimeInQueue", 0))
        record = JobRecord(
            id=job_id,
            owner=owner.name,
            spec=spec,
            demand=need,
            created=now,
            job_dir=None if self.config.instant else self.jobs_dir / str(job_id),
            job_token=self.auth.issue_job_token(
                owner, (spec.get("resources") or {}).get("walltime")
            ),
            stay_in_queue=bool(spec.get("policies", {}).get("leaveInQueue", False)),
            queue_deadline=now + self.config.minutes(queue_limit) if queue_limit > 0 else None,
        )
        record.held_until = self.hold_rule.until(record.name, now)
        if self.config.instant:
            self._start_instant(record, now)
            self.store.add(record)
            return record
        assert record.job_dir is not None
        sandbox.create_job_dir(record.job_dir)
        (record.job_dir / ".job.json").write_text(json.dumps(spec), encoding="utf-8")
        if inputs.files:
            self._inputs[job_id] = inputs
        self.store.add(record)
        self.runner.enqueue(record)
        log.debug("job %d submitted by %s", job_id, owner.name)
        return record

    def _start_instant(self, record: JobRecord, now: float) -> None:
        """An instant-mode job: what its runs report is known now; it runs once its hold is
        over (see ``JobRecord.refresh``). Instant jobs take no slots, whatever their size."""
        record.instant_run = plan.instant_run(record, self.config, self.base_url, self.cpu)
        if record.held_until is None:
            record.start_run(now)
            record.instant_until = now + self.config.job_seconds
        else:
            record.instant_until = record.held_until + self.config.job_seconds

    def delete(self, owner: str, ids: list[int]) -> int:
        """Delete the owner's unfinished jobs among ``ids``; returns how many were removed."""
        return self.runner.delete(self.store.owned(owner, ids))

    def remove_from_queue(self, record: JobRecord) -> bool:
        """``PUT /jobs/<id>/remove``: a finished ``leaveInQueue`` job leaves the queue."""
        with self.store.lock:
            if not record.in_queue:
                return False
            record.stay_in_queue = False
            if record.terminal:
                record.in_queue = False
            return True

    def hold_idle(self, rule: HoldRule) -> None:
        """From now on, hold the jobs ``rule`` names; jobs already queued that it names wait
        its time from now."""
        now = time.time()
        with self.store.lock:
            self.hold_rule = rule
            for record in self.store.all():
                if record.status == "idle":
                    self._set_hold(record, rule.until(record.name, now), now)
        self.runner.wake()

    def release_idle(self) -> None:
        """Stop holding: every held job may start now (new jobs are no longer held)."""
        now = time.time()
        with self.store.lock:
            self.hold_rule = HoldRule(0.0)
            for record in self.store.all():
                if record.status == "idle" and record.held_until is not None:
                    self._set_hold(record, now, now)
        self.runner.wake()

    def _set_hold(self, record: JobRecord, until: float | None, now: float) -> None:
        if record.instant_until is not None:  # an instant job starts when its hold ends
            until = now if until is None else until
            record.instant_until = until + self.config.job_seconds
        record.held_until = until

    # -- inspection ---------------------------------------------------------------------------

    def describe(self, record: JobRecord) -> dict:
        """The detailed job object (what ``GET /jobs/<id>`` returns)."""
        with self.store.lock:
            return render.detail(
                record,
                self.config.site,
                self.config.pending_state,
                omit_memory=self.config.omit_memory,
            )

    def summarise(self, record: JobRecord) -> dict:
        with self.store.lock:
            return render.summary(record, self.config.pending_state)

    def stats_payload(self) -> dict:
        """The ``/_emulator/stats`` document."""
        payload = self.stats.snapshot()
        payload["submit_faults"] = self.submit_faults.snapshot()
        payload["jobs"] = self.store.counts()
        payload["auth"] = {"refused": self.auth.refused, **self.idp.snapshot()}
        payload["slots"] = {"cpus": self.config.total_cpus, "memory": self.config.total_memory}
        return payload

    def stop(self) -> None:
        self.runner.stop()
