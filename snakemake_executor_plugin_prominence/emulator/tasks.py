"""Running one task process, as the worker runs a container: the runner's hands.

The command is what the container runtime would run (``launch``), started without a shell, in
a new session so that it leads its own process group. Its stdout/stderr are appended to the
job's ``job.0.out``/``job.0.err`` as they are written, so they can be read while it runs. The
wait uses ``os.wait4`` to get the resource usage the worker reports (CPU time, maximum RSS);
the walltime is a timer that kills the whole group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import sandbox
from .store import JobRecord

log = logging.getLogger(__name__)

#: Exit code of a task whose command cannot be started (the container runtime's own failure).
EXEC_FAILURE = 255


@dataclass
class ProcessResult:
    """What one task process did."""

    exit_code: int
    wall: float
    cpu: float
    max_rss_kb: int
    timed_out: bool = False
    aborted: bool = False


def killpg(pgid: int, sig: int) -> None:
    """Signal a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class TaskLauncher:
    """Starts and waits for task processes on behalf of the runner.

    ``register(record, pgid)`` is called as soon as a process group exists and answers whether
    the job is still alive (if not, the group is killed at once: a DELETE raced the start);
    ``release(record, pgid)`` is called when it ended and answers whether the job was aborted
    (deleted, or the emulator stopping) meanwhile. Both run under the runner's lock.
    """

    def __init__(
        self,
        register: Callable[[JobRecord, int], bool],
        release: Callable[[JobRecord, int], bool],
    ) -> None:
        self._register = register
        self._release = release

    def _popen(
        self, record: JobRecord, argv: list[str], cwd: Path, env: dict, stdout: BinaryIO | int
    ) -> subprocess.Popen:
        """Start ``argv`` in a new session (its own process group), registered with the job.

        If the job was deleted while it started, the new group is killed at once.
        """
        with open(record.job_dir / sandbox.ERR_FILE, "ab") as err:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        if not self._register(record, proc.pid):
            killpg(proc.pid, signal.SIGKILL)
        return proc

    def spawn_background(
        self, record: JobRecord, argv: list[str], cwd: Path, env: dict
    ) -> int | None:
        """Start a sidecar task; returns its process group (the runner kills it at the end)."""
        if not argv:
            return None
        try:
            cwd.mkdir(parents=True, exist_ok=True)
            with open(record.job_dir / sandbox.OUT_FILE, "ab") as out:
                proc = self._popen(record, argv, cwd, env, out)
        except OSError as exc:
            note(record, f"sidecar could not start: {exc}")
            return None
        threading.Thread(target=proc.wait, daemon=True).start()
        return proc.pid

    def run(
        self,
        record: JobRecord,
        argv: list[str],
        cwd: Path,
        env: dict,
        deadline: float,
        stdout_copy: Path | None = None,
    ) -> ProcessResult:
        """Run one task to its end, the walltime, or deletion; stream its output to the job
        (and to ``stdout_copy``, the task's ``stdout`` file, if given)."""
        started = time.monotonic()
        remaining = deadline - started
        if remaining <= 0:
            return ProcessResult(-int(signal.SIGKILL), 0.0, 0.0, 0, timed_out=True)
        if not argv:
            note(record, "no cmd: the image's default runscript is not emulated")
            return ProcessResult(0, 0.0, 0.0, 0)
        try:
            cwd.mkdir(parents=True, exist_ok=True)
            with open(record.job_dir / sandbox.OUT_FILE, "ab") as out:
                target = subprocess.PIPE if stdout_copy else out
                proc = self._popen(record, argv, cwd, env, target)
        except OSError as exc:
            note(record, f"{argv[0]}: cannot execute: {exc.strerror or exc}")
            return ProcessResult(EXEC_FAILURE, time.monotonic() - started, 0.0, 0)
        timed_out = threading.Event()

        def on_walltime() -> None:
            timed_out.set()
            killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(remaining, on_walltime)
        timer.daemon = True
        timer.start()
        copier = None
        if stdout_copy is not None:
            copier = threading.Thread(target=_tee, args=(proc, record, stdout_copy), daemon=True)
            copier.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        # Like a container whose init ends, nothing the task left in background survives it.
        killpg(proc.pid, signal.SIGKILL)
        if copier is not None:
            copier.join(5.0)
            if proc.stdout is not None:
                proc.stdout.close()
        aborted = self._release(record, proc.pid)
        return ProcessResult(
            exit_code=proc.returncode,
            wall=time.monotonic() - started,
            cpu=usage.ru_utime + usage.ru_stime,
            max_rss_kb=int(usage.ru_maxrss),
            timed_out=timed_out.is_set(),
            aborted=aborted and not timed_out.is_set(),
        )


def _tee(proc: subprocess.Popen, record: JobRecord, path: Path) -> None:
    """Copy a task's stdout to both ``job.0.out`` and the task's ``stdout`` file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(record.job_dir / sandbox.OUT_FILE, "ab") as out, open(path, "ab") as copy:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            out.write(chunk)
            out.flush()
            copy.write(chunk)
            copy.flush()


def note(record: JobRecord, text: str) -> None:
    """Append an emulator message to the job's stderr (where a container runtime writes its own)."""
    log.debug("job %d: %s", record.id, text)
    write_stderr(record, f"[prominence-emulator] {text}\n")


def write_stderr(record: JobRecord, text: str) -> None:
    """Append ``text`` to the job's stderr, as the worker or a container runtime writes it."""
    if record.job_dir is None:
        return
    with open(record.job_dir / sandbox.ERR_FILE, "ab") as err:
        err.write(text.encode())
