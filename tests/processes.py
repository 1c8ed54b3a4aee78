"""Run the emulator and Snakemake as real subprocesses, as a user would."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
LISTENING = "PROMINENCE emulator listening on "


@contextlib.contextmanager
def emulator_process(state_dir: Path, *args: str) -> Iterator[str]:
    """Start ``prominence-emulator --port 0``; yield its base URL; stop it with SIGTERM."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "emulator.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(BIN / "prominence-emulator"), "--port", "0", "--state-dir", str(state_dir), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,  # a file, not a pipe nobody reads (which could fill and block)
            text=True,
        )
    try:
        line = process.stdout.readline()
        if not line.startswith(LISTENING):
            process.kill()
            raise RuntimeError(f"emulator did not start: {line!r} {log.read_text()}")
        yield line[len(LISTENING) :].strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_snakemake(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``snakemake <args>`` in ``cwd`` with this interpreter's environment plus ``env``."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def plugin_args(storage: Path, jobs: int = 4, *extra: str, install: bool = False) -> list[str]:
    """The snakemake arguments of a run through the plugin with the `fs` storage provider.

    Jobs run with the emulator's interpreter, which has the storage plugins already, unless
    ``install`` asks for the default path (each job pip-installs them).
    """
    args = [
        "--executor", "prominence",
        "--jobs", str(jobs),
        "--default-storage-provider", "fs",
        "--default-storage-prefix", str(storage),
        "--seconds-between-status-checks", "1",
    ]  # fmt: skip
    if not install:
        args += ["--prominence-storage-plugins", "image"]
    return [*args, *extra]


def plugin_env(url: str, token: str) -> dict[str, str]:
    """Environment for a run against the emulator at ``url``."""
    return {"PROMINENCE_URL": url, "PROMINENCE_TOKEN": token}


EXAMPLE = Path(__file__).resolve().parent.parent / "example-workflow"
#: What the example workflow produces under results/ (3 samples).
EXAMPLE_RESULTS = [
    "counts/alpha.tsv",
    "counts/beta.tsv",
    "counts/gamma.tsv",
    "reads/alpha.fa",
    "reads/beta.fa",
    "reads/gamma.fa",
    "report.txt",
    "summary.tsv",
]


def copy_example(destination: Path) -> Path:
    """A fresh copy of example-workflow/ without any earlier run's state."""
    shutil.copytree(
        EXAMPLE,
        destination,
        ignore=shutil.ignore_patterns(".snakemake", ".storage", "results", "logs"),
    )
    return destination


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> content), for comparing runs."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
