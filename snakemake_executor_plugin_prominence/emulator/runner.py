"""Scheduling and running jobs: CPU/memory slots, walltime, queue time, deletion.

One scheduler thread starts idle jobs when their slots are free (higher ``policies.priority``
first, then submission order) and fails the ones that waited longer than
``maximumTimeInQueue`` or can never fit. Each started job gets one worker thread that runs its
tasks in order (``tasks.TaskLauncher``), each in its own process group, so that walltime and
DELETE kill the whole process tree with one ``killpg`` (DELETE after a SIGTERM to the task's
main process and a grace period).

All state changes happen under the store's lock, so DELETE and the worker never disagree on
whether a job is still running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import sandbox
from .config import DEFAULT_WALLTIME_MINUTES, EmulatorConfig
from .store import (
    REASON_DELETED,
    REASON_IMAGE_PULL,
    REASON_NO_RESOURCES,
    REASON_QUEUE_TIME,
    REASON_WALLTIME,
    JobRecord,
    JobStore,
)
from .submission import Inputs
from .tasks import TaskLauncher, killpg

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """Result of one run of a job: ``retry`` says whether HTCondor would run it again."""

    status: str | None  # None: the job was deleted / the emulator stopped
    reason: str | None = None
    retry: bool = False


class Runner:
    """Owns the slots, the scheduler thread and the worker threads of one emulator."""

    def __init__(
        self,
        config: EmulatorConfig,
        store: JobStore,
        shims: sandbox.Shims,
        inputs_for: Callable[[JobRecord], Inputs],
        url: Callable[[], str],
    ) -> None:
        self.config = config
        self.store = store
        self.shims = shims
        self._inputs_for = inputs_for
        self._url = url
        self._cond = threading.Condition(store.lock)
        self._queue: list[JobRecord] = []
        self._free_cpus = config.total_cpus
        self._free_memory = config.total_memory
        self._workers: dict[int, threading.Thread] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.tasks = TaskLauncher(self._register, self._release)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._schedule_loop, name="emulator-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Kill every job's processes (SIGKILL to each process group) and stop all threads."""
        with self._cond:
            self._stopping = True
            groups = [pgid for record in self.store.all() for pgid in record.pgids]
            self._cond.notify_all()
        for pgid in groups:
            killpg(pgid, signal.SIGKILL)
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        for worker in list(self._workers.values()):
            worker.join(max(0.0, deadline - time.monotonic()))

    # -- requests from the API -------------------------------------------------------------

    def enqueue(self, record: JobRecord) -> None:
        """Queue a new (idle) job for the scheduler."""
        with self._cond:
            self._queue.append(record)
            self._cond.notify_all()

    def wake(self) -> None:
        """Run a scheduling pass now (a hold changed)."""
        with self._cond:
            self._cond.notify_all()

    def delete(self, records: Iterable[JobRecord]) -> int:
        """Delete the jobs still in the queue and unfinished; returns how many were removed.

        Each task's main process gets SIGTERM now (as the worker's promlet passes the signal to
        its direct subprocess only: what the task started must be told by the task itself) and
        the whole process group SIGKILL after ``kill_grace`` seconds, as HTCondor removes a
        running job.
        """
        groups: list[int] = []
        removed = 0
        with self._cond:
            for record in records:
                if record.terminal or not record.in_queue:
                    continue
                record.finish("deleted", REASON_DELETED)
                groups.extend(record.pgids)
                removed += 1
            if removed:
                self._cond.notify_all()
        for pgid in groups:  # a task's group id is its main process's id (a new session)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pgid, signal.SIGTERM)
        if groups:
            timer = threading.Timer(self.config.kill_grace, self._kill_all, [groups])
            timer.daemon = True
            timer.start()
        return removed

    @staticmethod
    def _kill_all(groups: list[int]) -> None:
        for pgid in groups:
            killpg(pgid, signal.SIGKILL)

    # -- scheduler ---------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        with self._cond:
            while not self._stopping:
                timeout = self._schedule_pass()
                self._cond.wait(timeout)

    def _schedule_pass(self) -> float | None:
        """Fail expired or impossible jobs, start the ones that fit; lock held.

        Returns the seconds until the next queue-time deadline or end of a hold (``None``: none).
        """
        now = time.time()
        waiting: list[JobRecord] = []
        next_deadline: float | None = None
        for record in self._queue:
            if record.status != "idle":
                continue
            need = record.demand
            if need.total_cpus > self.config.total_cpus or (
                need.total_memory > self.config.total_memory
            ):
                record.finish("failed", REASON_NO_RESOURCES, now)
                continue
            limit = record.policies.get("maximumTimeInQueue", 0)
            if limit > 0:
                deadline = record.created + self.config.minutes(limit)
                if now >= deadline:
                    record.finish("failed", REASON_QUEUE_TIME, now)
                    continue
                next_deadline = deadline if next_deadline is None else min(next_deadline, deadline)
            if record.held_until is not None:
                if record.held_until > now:  # held (see hold.py): not a candidate yet
                    if record.held_until != math.inf:
                        next_deadline = min(next_deadline or math.inf, record.held_until)
                    waiting.append(record)
                    continue
                record.held_until = None
            waiting.append(record)
        waiting.sort(key=lambda r: (-int(r.policies.get("priority", 0)), r.id))
        for record in waiting:
            if record.held_until is not None:
                continue
            need = record.demand
            if need.total_cpus <= self._free_cpus and need.total_memory <= self._free_memory:
                self._free_cpus -= need.total_cpus
                self._free_memory -= need.total_memory
                record.status = "running"
                record.started = now
                worker = threading.Thread(
                    target=self._work, args=(record,), name=f"emulator-job-{record.id}", daemon=True
                )
                self._workers[record.id] = worker
                worker.start()
        self._queue = [r for r in waiting if r.status == "idle"]
        return None if next_deadline is None else max(0.0, next_deadline - now)

    # -- one job -----------------------------------------------------------------------------

    def _work(self, record: JobRecord) -> None:
        try:
            self._run_job(record)
        except Exception:
            log.exception("job %d: the emulator failed to run it", record.id)
            with self._cond:
                if not record.terminal:
                    record.finish("failed", "Unable to execute task(s)")
        finally:
            with self._cond:
                self._free_cpus += record.demand.total_cpus
                self._free_memory += record.demand.total_memory
                self._workers.pop(record.id, None)
                self._cond.notify_all()

    def _run_job(self, record: JobRecord) -> None:
        """Run the job, again up to ``maximumRetries`` times if a run fails (HTCondor retries)."""
        retries = int(record.policies.get("maximumRetries", 0))
        attempt = 0
        while True:
            outcome = self._run_once(record)
            with self._cond:
                if outcome.status is None or record.terminal:
                    return
                if outcome.retry and attempt < retries and not self._stopping:
                    attempt += 1
                    record.retries = attempt
                    continue
                record.finish(outcome.status, outcome.reason)
                return

    def _alive(self, record: JobRecord) -> bool:
        with self._cond:
            return record.status == "running" and not self._stopping

    def _overhead(self, record: JobRecord, seconds: float) -> float | None:
        """Spend ``seconds`` of the job's run on a simulated overhead (image pull, stage-in,
        stage-out); returns the seconds spent, or ``None`` if the job was deleted meanwhile."""
        started = time.monotonic()
        with self._cond:
            if seconds > 0:
                self._cond.wait_for(
                    lambda: record.status != "running" or self._stopping,
                    timeout=seconds,
                )
            if record.status != "running" or self._stopping:
                return None
        return time.monotonic() - started

    def _run_once(self, record: JobRecord) -> RunOutcome:
        """One run on a fresh scratch: tasks in order, sidecars first and in the background."""
        config = self.config
        home, tmp = sandbox.fresh_home(record.job_dir, self._inputs_for(record))
        results: list[dict] = []
        with self._cond:
            record.task_results = results
        walltime = record.spec["resources"].get("walltime", DEFAULT_WALLTIME_MINUTES)
        deadline = time.monotonic() + config.minutes(walltime)
        ignore_failures = bool(record.policies.get("ignoreTaskFailures", False))
        task_retries = int(record.policies.get("maximumTaskRetries", 0))
        success_anyway = bool(record.policies.get("reportJobSuccessOnTaskFailure", False))
        tasks = sorted(record.spec["tasks"], key=lambda t: t.get("type") != "sidecar")
        pulled: set[tuple[str, str]] = set()
        sidecars: list[int] = []
        runtimes: set[str] = set()
        outcome = RunOutcome("completed")
        with self._cond:
            record.stage_in_time = record.stage_out_time = None
        staged_in = self._overhead(record, config.stage_in_seconds)
        if staged_in is None:
            return RunOutcome(None)
        with self._cond:
            record.stage_in_time = staged_in
        try:
            for number, task in enumerate(tasks):
                if not self._alive(record):
                    return RunOutcome(None)
                runtime = task["runtime"]
                runtimes.add(runtime)
                key = (sandbox.image_name(task["image"]), runtime)
                pull_status = "cached" if key in pulled else "completed"
                if sandbox.image_matches(task["image"], config.missing_images):
                    results.append({"imagePullStatus": "failed"})
                    log.info("job %d: image %s matches --missing-image", record.id, task["image"])
                    return RunOutcome("failed", REASON_IMAGE_PULL, retry=True)
                pulled.add(key)
                pull_time: float | None = -1
                if pull_status == "completed":
                    pull_time = self._overhead(record, config.image_pull_seconds)
                    if pull_time is None:
                        return RunOutcome(None)
                env = sandbox.task_environment(
                    path=self.shims.path(
                        sandbox.image_matches(task["image"], config.bare_images),
                        plain=sandbox.image_matches(task["image"], config.plain_images),
                    ),
                    home=home,
                    tmp=tmp,
                    task=task,
                    task_num=number,
                    job_id=record.id,
                    demand=record.demand,
                    url=self._url(),
                    token=record.job_token,
                    pass_env=config.pass_env,
                )
                if task.get("type") == "sidecar":
                    pgid = self.tasks.spawn_background(record, task, home, env)
                    if pgid is not None:
                        sidecars.append(pgid)
                    continue
                tries = 0
                while True:
                    result = self.tasks.run(record, task, home, env, deadline)
                    if result.exit_code == 0 or result.timed_out or result.aborted:
                        break
                    if tries >= task_retries or not self._alive(record):
                        break
                    tries += 1
                results.append(
                    {
                        "imagePullStatus": pull_status,
                        "imagePullTime": pull_time if pull_time == -1 else round(pull_time, 3),
                        "exitCode": result.exit_code,
                        "wallTimeUsage": round(result.wall, 4),
                        "cpuTimeUsage": round(result.cpu, 4),
                        "maxResidentSetSizeKB": result.max_rss_kb,
                        "retries": tries,
                    }
                )
                if result.timed_out:
                    return RunOutcome("killed", REASON_WALLTIME, retry=True)
                if result.aborted:
                    return RunOutcome(None)
                if result.exit_code != 0 and not ignore_failures:
                    outcome = RunOutcome("completed", retry=not success_anyway)
                    break
            staged_out = self._overhead(record, config.stage_out_seconds)
            if staged_out is None:
                return RunOutcome(None)
            with self._cond:
                record.stage_out_time = staged_out
            return outcome
        finally:
            for pgid in sidecars:
                killpg(pgid, signal.SIGKILL)
            with self._cond:
                record.pgids.difference_update(sidecars)
                # Like the worker's report, written when the run ends.
                record.runtime_versions = dict.fromkeys(sorted(runtimes), "emulated")

    # -- callbacks of the task launcher (see tasks.TaskLauncher) -------------------------

    def _register(self, record: JobRecord, pgid: int) -> bool:
        with self._cond:
            record.pgids.add(pgid)
            return record.status == "running" and not self._stopping

    def _release(self, record: JobRecord, pgid: int) -> bool:
        with self._cond:
            record.pgids.discard(pgid)
            return record.status != "running" or self._stopping
