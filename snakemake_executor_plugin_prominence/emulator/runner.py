"""Scheduling and running jobs: slots, runs, retries, walltime, memory, queue rules, deletion.

One scheduler thread starts idle jobs when their slots are free (higher ``policies.priority``
first, then submission order) and applies the server's HTCondor rules to queued jobs: a job no
site can ever take is removed at once, a job held over its memory is removed after
``remove_held_after`` seconds, and a job past ``maximumTimeInQueue`` is removed only while it is
held or waiting for resources (``04-prominence-rules``), never while it merely waits for a free
slot. Each started run gets one worker thread that does what the worker does (``_run_once``):
stage-in, each task's image and command line, the tasks in order (``tasks.TaskLauncher``),
stage-out, and its report. A run that exits with a failure goes back to the queue while
``maximumRetries`` allows (HTCondor's ``max_retries``), and waits for a slot again.

Each task runs in its own process group, so that walltime, memory and DELETE end the whole
process tree with one ``killpg`` (DELETE after a SIGTERM to the task's main process and a grace
period). All state changes happen under the store's lock.
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
from pathlib import Path

from . import images, launch, memory, plan, sandbox
from .config import DEFAULT_WALLTIME_MINUTES, EmulatorConfig
from .hold import REASON_NO_RESOURCES_NOW
from .results import WorkerReport
from .store import REASON_DELETED, REASON_MEMORY, REASON_NO_RESOURCES, JobRecord, JobStore
from .submission import Inputs
from .tasks import TaskLauncher, killpg, note, write_stderr

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """A run that exited: its report, and whether the worker exited with success (0)."""

    report: WorkerReport
    exit_ok: bool


class Runner:
    """Owns the slots, the scheduler thread and the worker threads of one emulator."""

    def __init__(
        self,
        config: EmulatorConfig,
        store: JobStore,
        shims: sandbox.Shims,
        inputs_for: Callable[[JobRecord], Inputs],
        url: Callable[[], str],
        cpu: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.shims = shims
        self._inputs_for = inputs_for
        self._url = url
        self._cpu = dict(cpu or {})
        self._cond = threading.Condition(store.lock)
        self._queue: list[JobRecord] = []
        self._held: list[JobRecord] = []
        self._free_cpus = config.total_cpus
        self._free_memory = config.total_memory
        self._workers: dict[int, threading.Thread] = {}
        self._watched: dict[int, tuple[JobRecord, memory.Watched]] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.tasks = TaskLauncher(self._register, self._release)
        self.memory = memory.MemoryWatch(self._watched_jobs, self._over_memory)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._schedule_loop, name="emulator-scheduler", daemon=True
        )
        self._thread.start()
        self.memory.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Kill every job's processes (SIGKILL to each process group) and stop all threads."""
        with self._cond:
            self._stopping = True
            groups = [pgid for record in self.store.all() for pgid in record.pgids]
            self._cond.notify_all()
        for pgid in groups:
            killpg(pgid, signal.SIGKILL)
        self.memory.stop()
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
                record.remove("deleted", REASON_DELETED)
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
        """Apply the queue rules and start the jobs that fit; lock held.

        Returns the seconds until the next rule or hold may change something (``None``: none).
        """
        now = time.time()
        deadlines: list[float] = [self._remove_held(now)]
        candidates: list[JobRecord] = []
        waiting: list[JobRecord] = []
        for record in self._queue:
            if record.status != "idle":
                continue
            need = record.demand
            if need.total_cpus > self.config.total_cpus or (
                need.total_memory > self.config.total_memory
            ):
                record.remove("failed", REASON_NO_RESOURCES, now)  # a fatal rule: at once
                continue
            if record.held_until is not None and record.held_until <= now:
                record.held_until = None  # the hold is over
            if record.held_until is not None:
                # Waiting for resources: the queue-time rule applies (and only then).
                if record.queue_deadline is not None:
                    if now >= record.queue_deadline:
                        record.remove("failed", REASON_NO_RESOURCES_NOW, now)
                        continue
                    deadlines.append(record.queue_deadline)
                deadlines.append(record.held_until)
                waiting.append(record)
                continue
            candidates.append(record)
        candidates.sort(key=lambda r: (-int(r.policies.get("priority", 0)), r.id))
        for record in candidates:
            need = record.demand
            if need.total_cpus <= self._free_cpus and need.total_memory <= self._free_memory:
                self._free_cpus -= need.total_cpus
                self._free_memory -= need.total_memory
                record.start_run(now)
                worker = threading.Thread(
                    target=self._work, args=(record,), name=f"emulator-job-{record.id}", daemon=True
                )
                self._workers[record.id] = worker
                worker.start()
        self._queue = [r for r in (*waiting, *candidates) if r.status == "idle"]
        self._queue.sort(key=lambda r: r.id)
        upcoming = min(deadlines)
        return None if math.isinf(upcoming) else max(0.0, upcoming - now)

    def _remove_held(self, now: float) -> float:
        """Remove the jobs held long enough (the server's rule for held jobs); returns when the
        next one is due (``inf``: none)."""
        due = math.inf
        still: list[JobRecord] = []
        for record in self._held:
            if record.status != "held" or record.held_at is None:
                continue  # deleted meanwhile
            removal = record.held_at + self.config.remove_held_after
            if now >= removal:
                record.remove("killed", REASON_MEMORY, now)
                continue
            due = min(due, removal)
            still.append(record)
        self._held = still
        return due

    # -- memory --------------------------------------------------------------------------------

    def _watched_jobs(self) -> list[tuple[object, memory.Watched]]:
        with self._cond:
            for watched_record, watched in self._watched.values():
                watched.sessions = set(watched_record.pgids)
            return [(record, watched) for record, watched in self._watched.values()]

    def _over_memory(self, key: object) -> None:
        """A job went over its memory: HTCondor holds it and kills its processes."""
        assert isinstance(key, JobRecord)
        record = key
        with self._cond:
            if record.status != "running" or self._stopping:
                return
            record.status = "held"
            record.held_at = time.time()
            self._watched.pop(record.id, None)
            self._held.append(record)
            groups = list(record.pgids)
            self._cond.notify_all()
        log.info(
            "job %d went over its memory (%d GB): held, its processes killed",
            record.id,
            record.demand.memory,
        )
        for pgid in groups:
            killpg(pgid, signal.SIGKILL)
        note(
            record,
            f"the job's processes used more than the {memory.MB_PER_GB * record.demand.memory}"
            " MB HTCondor gives it: it is held (listed failed without a reason) until removed",
        )

    # -- one run -----------------------------------------------------------------------------

    def _work(self, record: JobRecord) -> None:
        outcome: RunOutcome | None = None
        try:
            outcome = self._run_once(record)
        except Exception:
            log.exception("job %d: the emulator failed to run it", record.id)
            outcome = RunOutcome(WorkerReport.crashed(), exit_ok=False)
        finally:
            with self._cond:
                self._free_cpus += record.demand.total_cpus
                self._free_memory += record.demand.total_memory
                self._workers.pop(record.id, None)
                self._watched.pop(record.id, None)
                if outcome is not None:
                    self._conclude(record, outcome)
                self._cond.notify_all()

    def _conclude(self, record: JobRecord, outcome: RunOutcome) -> None:
        """The run exited (lock held): the job ends, or queues again for a retry."""
        if record.status != "running" or self._stopping:
            return  # deleted or held meanwhile: HTCondor copied nothing back
        record.report = outcome.report
        now = time.time()
        if not outcome.exit_ok and record.runs <= record.max_retries:
            record.status = "idle"
            record.went_idle = now
            self._queue.append(record)
            return
        status, reason = outcome.report.verdict()
        record.finish(status, reason, now)

    def _alive(self, record: JobRecord) -> bool:
        with self._cond:
            return record.status == "running" and not self._stopping

    def _overhead(self, record: JobRecord, seconds: float) -> float | None:
        """Spend ``seconds`` of the job's run on a simulated overhead (image pull, stage-in,
        stage-out); returns the seconds spent (0 for none), or ``None`` if the job was deleted
        or held meanwhile."""
        if seconds <= 0:
            return 0.0 if self._alive(record) else None
        started = time.monotonic()
        with self._cond:
            self._cond.wait_for(
                lambda: record.status != "running" or self._stopping, timeout=seconds
            )
            if record.status != "running" or self._stopping:
                return None
        return time.monotonic() - started

    def _run_once(self, record: JobRecord) -> RunOutcome | None:
        """One run on a fresh scratch, as the worker does it; ``None`` when it was ended from
        outside (deleted, held, the emulator stopping)."""
        assert record.job_dir is not None
        config = self.config
        watched = memory.Watched(memory.limit_bytes(record.demand.memory))
        with self._cond:
            self._watched[record.id] = (record, watched)
        home, tmp = sandbox.fresh_home(record.job_dir, self._inputs_for(record))
        staged_in = self._overhead(record, config.stage_in_seconds)
        if staged_in is None:
            return None
        walltime = record.spec["resources"].get("walltime", DEFAULT_WALLTIME_MINUTES)
        # The worker's walltime clock starts after the stage-in and excludes image pulls.
        deadline = time.monotonic() + config.minutes(walltime)
        run = _RunState()
        sidecars: list[int] = []
        try:
            for number, task in enumerate(plan.in_worker_order(record.spec["tasks"])):
                if not self._alive(record):
                    return None
                step = self._task(record, task, number, run, home, tmp, deadline, sidecars)
                if step is None:
                    return None
                if isinstance(step, RunOutcome):
                    return step  # the worker crashed
                if not step:
                    break
            staged_out = self._overhead(record, config.stage_out_seconds)
            if staged_out is None:
                return None
        finally:
            for pgid in sidecars:
                killpg(pgid, signal.SIGKILL)
            with self._cond:
                record.pgids.difference_update(sidecars)
        max_rss = max((t.get("maxResidentSetSizeKB", 0) for t in run.results), default=0)
        report = WorkerReport(
            tasks=run.results,
            stage_in=staged_in,
            stage_out=staged_out,
            cpu=self._cpu,
            runtimes=dict.fromkeys(sorted(run.runtimes), "emulated"),
            max_memory_kb=max(watched.peak, max_rss * 1024) / 1000,
            timed_out=run.timed_out,
        )
        success_anyway = bool(record.policies.get("reportJobSuccessOnTaskFailure", False))
        return RunOutcome(report, exit_ok=run.success or success_anyway)

    def _task(
        self,
        record: JobRecord,
        task: dict,
        number: int,
        run: _RunState,
        home: Path,
        tmp: Path,
        deadline: float,
        sidecars: list[int],
    ) -> bool | RunOutcome | None:
        """One task of a run: its image, its command line, its process.

        Returns whether the run goes on, a ``RunOutcome`` for a crashed worker, or ``None``
        when the job was ended from outside.
        """
        config = self.config
        ignore_failures = bool(record.policies.get("ignoreTaskFailures", False))
        runtime, image = task["runtime"], task["image"]
        run.runtimes.add(runtime)
        step = plan.image_step(task, number, record.spec, run.pulled, config.missing_images)
        entry = step.entry
        if step.pull is not None:
            pull_time = self._overhead(record, config.image_pull_seconds)
            if pull_time is None:
                return None
            run.pull_seconds += pull_time
            if pull_time:
                entry["imagePullTime"] = pull_time
        if step.failed:
            assert step.pull is not None
            note(record, f"pulling image {image} failed: {step.pull.reason}")
            log.info("job %d: image %s cannot be pulled (%s)", record.id, image, step.pull.reason)
            run.results.append(entry)
            if ignore_failures:
                return True
            run.success = False
            return False
        sidecar = task.get("type") == "sidecar"
        try:
            started = plan.launch_task(record, task, number, step.source_task, self._url())
        except launch.WorkerCrash as crash:
            # A sidecar runs in a child process of the worker: only that child dies.
            write_stderr(record, crash.traceback(child=sidecar))
            note(record, _crash_note(task, crash, sidecar))
            if sidecar:
                return True
            log.info("job %d: the worker crashed splitting a command line", record.id)
            return RunOutcome(WorkerReport.crashed(), exit_ok=False)
        env = sandbox.task_environment(
            path=self.shims.path(
                images.matches(image, config.bare_images),
                plain=images.matches(image, config.plain_images),
            ),
            home=home,
            tmp=tmp,
            variables=started.env,
            runtime=runtime,
            task_num=number,
            job_id=record.id,
            demand=record.demand,
            url=self._url(),
            token=record.job_token,
            pass_env=config.pass_env,
        )
        cwd = sandbox.resolve_in_home(home, started.workdir)
        if sidecar:
            if started.failure:
                write_stderr(record, started.failure + "\n")
            else:
                pgid = self.tasks.spawn_background(record, started.argv, cwd, env)
                if pgid is not None:
                    sidecars.append(pgid)
            return True
        result = self._run_task(record, task, started, cwd, env, deadline + run.pull_seconds)
        if result is None:
            return None
        exit_code, tries, process = result
        entry.update(
            {
                "exitCode": exit_code,
                "wallTimeUsage": round(process.wall, 4),
                "maxResidentSetSizeKB": process.max_rss_kb,
                "retries": tries,
                "cpuTimeUsage": round(process.cpu, 4),
            }
        )
        run.results.append(entry)
        if process.timed_out:
            run.timed_out = True
            run.success = False
            return False
        if exit_code != 0 and not ignore_failures:
            run.success = False
            return False
        return True

    def _run_task(
        self,
        record: JobRecord,
        task: dict,
        started: launch.Launch,
        cwd: Path,
        env: dict[str, str],
        deadline: float,
    ) -> tuple[int, int, _Process] | None:
        """Run the task, again after a non-zero exit while ``maximumTaskRetries`` allows;
        returns (exit code, retries, the last process) or ``None`` if the job was ended."""
        task_retries = int(record.policies.get("maximumTaskRetries", 0))
        stdout_copy = None
        if task.get("stdout") and record.job_dir is not None:
            stdout_copy = record.job_dir / sandbox.HOME_DIR / task["stdout"].lstrip("/")
        tries = 0
        while True:
            if started.failure:
                write_stderr(record, started.failure + "\n")
                if started.culprits:
                    note(record, _split_note(started.culprits))
                process = _Process(started.exit_code)
            else:
                result = self.tasks.run(record, started.argv, cwd, env, deadline, stdout_copy)
                if result.aborted:
                    return None
                process = _Process(
                    result.exit_code, result.wall, result.cpu, result.max_rss_kb, result.timed_out
                )
            if process.exit_code == 0 or process.timed_out:
                break
            if tries >= task_retries or not self._alive(record):
                break
            tries += 1
        return process.exit_code, tries, process

    # -- callbacks of the task launcher (see tasks.TaskLauncher) -------------------------

    def _register(self, record: JobRecord, pgid: int) -> bool:
        with self._cond:
            record.pgids.add(pgid)
            return record.status == "running" and not self._stopping

    def _release(self, record: JobRecord, pgid: int) -> bool:
        with self._cond:
            record.pgids.discard(pgid)
            return record.status != "running" or self._stopping


@dataclass
class _Process:
    exit_code: int
    wall: float = 0.0
    cpu: float = 0.0
    max_rss_kb: int = 0
    timed_out: bool = False


class _RunState:
    """What one run has done so far."""

    def __init__(self) -> None:
        self.results: list[dict] = []
        self.pulled: dict[tuple[str, str], int] = {}
        self.runtimes: set[str] = set()
        self.pull_seconds = 0.0
        self.success = True
        self.timed_out = False


def _crash_note(task: dict, crash: launch.WorkerCrash, sidecar: bool) -> str:
    where = ", ".join(crash.suspects) or "the task's cmd or workdir"
    who = "the sidecar's process" if sidecar else "the worker"
    end = "the sidecar does not run" if sidecar else "the job ends without task results"
    return (
        f"{who} crashed: the worker builds the {task['runtime']} command line from the task "
        f"without quoting and splits it with shlex, which failed ({crash}); look at quotes and "
        f"backslashes in {where}. So {end}."
    )


def _split_note(culprits: list[str]) -> str:
    return (
        "udocker got extra words from env values with spaces "
        f"({', '.join(culprits)}): the worker puts each pair unquoted into its command line"
    )
