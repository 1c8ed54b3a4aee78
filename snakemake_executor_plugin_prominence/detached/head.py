"""The process a detached run's head job runs: Snakemake as a child, with deletion made a cancel,
and the run's log and report copied to the default storage when it ends.

Deleting a PROMINENCE job sends SIGTERM to its task, then SIGKILL after a grace period. On
SIGTERM Snakemake only stops scheduling and waits for its running jobs, which the SIGKILL would
then orphan; on SIGINT it deletes them. So SIGTERM is passed on as SIGINT, and once Snakemake
has ended (done, failed or cancelled) its log files, the head's own stderr and the run report
go to the run's folder in the default storage (``runstore``), before the head's scratch disk
goes. On SIGTERM a first copy starts at once, so that a short grace period still leaves the log
up to the deletion in storage; only a SIGKILL without warning (the walltime) prevents any copy.

The restored sources are not a git checkout, so Snakemake, which ships its registered sources
plus what ``git ls-files`` lists to the worker jobs, would miss files the user's checkout only
tracked (a script a shell command runs, a data table). The head stages every restored file in
a fresh git index first, so the worker jobs get everything the workflow had.

Usage (inside the head job):
``python -m snakemake_executor_plugin_prominence.detached.head ARGS...``
runs ``python -m snakemake ARGS...`` and exits with its status.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from snakemake_executor_plugin_prominence.detached import headjob, runstore
from snakemake_executor_plugin_prominence.job import deployment
from snakemake_executor_plugin_prominence.report.writer import report_root, run_dir
from snakemake_executor_plugin_prominence.run.runinfo import RUN_ID_ENV


def say(message: str) -> None:
    print(f"prominence-snakemake head: {message}", file=sys.stderr, flush=True)


def stage_everything(workdir: Path) -> None:
    """Put every restored file into a fresh git index (nothing of Snakemake's state)."""
    if (workdir / ".git").exists():
        return
    try:
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True, capture_output=True)
        exclude = workdir / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as f:
            f.write(f"\n/.snakemake/\n/{headjob.HEAD_SITE.split('/')[0]}/\n")
        subprocess.run(["git", "add", "-A"], cwd=workdir, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        say(
            f"could not stage the sources with git ({e} {detail.decode(errors='replace')}): "
            "the worker jobs get only what Snakemake registers (Snakefile, rule scripts, "
            "config files)."
        )


def open_store(args: list[str]) -> runstore.RunStore | None:
    """The run's default storage, built like Snakemake builds it from ``args``; None (with a
    warning) when that fails: the run goes on, only the final copy is lost."""
    pip_target = Path(deployment.PIP_TARGET).resolve()
    if pip_target.is_dir() and str(pip_target) not in sys.path:
        sys.path.append(str(pip_target))  # where the head's storage plugins were installed
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
            return runstore.from_snakemake_args(args)
    except (Exception, SystemExit) as e:
        say(f"the run's log and report will not be copied to storage: {e} {quiet.getvalue()}")
        return None


def tee(source: IO[bytes], *sinks: IO[bytes]) -> None:
    for line in iter(source.readline, b""):
        for sink in sinks:
            sink.write(line)
            sink.flush()


def report_dir_of(snakemake_args: Sequence[str], run_id: str) -> Path | None:
    """Where this run's report is written, as the forwarded --prominence-report-dir says."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--prominence-report-dir", default=None)
    known, _rest = parser.parse_known_args(list(snakemake_args))
    root = report_root(known.prominence_report_dir)
    return None if root is None else run_dir(root, run_id)


def copy_run_files(
    store: runstore.RunStore, workdir: Path, run_id: str, snakemake_args: Sequence[str] = ()
) -> None:
    folder = store.folder(run_id)
    files = runstore.run_files(workdir, report_dir_of(snakemake_args, run_id))
    stored = store.put_tree(files, folder)
    say(f"copied {len(stored)} of {len(files)} log/report file(s) to {folder}")


def _hear_sigint() -> None:
    """In the child, before Snakemake starts: SIGINT at its default, so that Snakemake installs
    its own handler. A process started with SIGINT ignored (by a shell that ran it in the
    background, say) passes that on to its children, and the head's way to cancel the run is to
    send its Snakemake a SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(args: list[str]) -> int:
    workdir = Path.cwd()
    run_id = os.environ.get(RUN_ID_ENV, "")
    stage_everything(workdir)
    store = open_store(args) if run_id else None
    head_log = workdir / runstore.HEAD_LOG
    head_log.parent.mkdir(parents=True, exist_ok=True)
    snapshot: list[threading.Thread] = []
    with head_log.open("wb") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *args],
            stderr=subprocess.PIPE,
            preexec_fn=_hear_sigint,
        )

        def cancel(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signal.SIGINT)
            if signum == signal.SIGTERM and store is not None and not snapshot:
                # A deletion: the SIGKILL may come before Snakemake has deleted its jobs and
                # ended, so copy what the log says so far at once; the full copy follows.
                copier = threading.Thread(
                    target=copy_run_files, args=(store, workdir, run_id, args), daemon=True
                )
                snapshot.append(copier)
                copier.start()

        signal.signal(signal.SIGTERM, cancel)
        signal.signal(signal.SIGINT, cancel)
        copier = threading.Thread(
            target=tee, args=(child.stderr, sys.stderr.buffer, log_file), daemon=True
        )
        copier.start()
        code = child.wait()
        copier.join(timeout=10)
    if store is not None:
        for early in snapshot:
            early.join(timeout=60)
        copy_run_files(store, workdir, run_id, args)
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
