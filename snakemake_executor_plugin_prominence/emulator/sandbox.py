"""The host-side stand-in for a PROMINENCE worker's container: directories, PATH and environment.

A real task runs in a container whose HOME and working directory are the job's scratch disk and
which sees only the variables the worker passes in. The emulator runs the task on the host, so it
rebuilds that boundary by hand: a fresh scratch directory per run, a minimal environment (never
the emulator's own), and a directory of ``python`` shims placed first on ``PATH`` so that the
remote Snakemake command finds an interpreter with Snakemake (or, for images configured as
"bare", one without it).
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import sys
from pathlib import Path
from string import Template

from .submission import Demand, Inputs

OUT_FILE = "job.0.out"
ERR_FILE = "job.0.err"
HOME_DIR = "userhome"
TMP_DIR = ".tmp"
CONTAINER_HOME = "/home/user"


def _write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


class Shims:
    """Directories of interpreter shims, created once per emulator under its state dir.

    ``full`` runs this interpreter as is (it has Snakemake); ``bare`` runs it with ``-S -I`` so
    that no site-packages are visible, which is what a plain ``busybox``/``alpine`` image with a
    Python but without Snakemake looks like to the remote command (``No module named snakemake``).
    ``plain`` (made on first use) sees only Snakemake and the distributions it requires, as in the
    official ``snakemake/snakemake`` image: no storage plugin, no boto3.
    """

    def __init__(self, root: Path, python: str | None = None) -> None:
        python = python or sys.executable
        self.full = root / "full"
        self.bare = root / "bare"
        self.plain = root / "plain"
        self._root = root
        self._python = python
        for directory in (self.full, self.bare):
            directory.mkdir(parents=True, exist_ok=True)
        quoted = shlex.quote(python)
        for name in ("python", "python3"):
            _write_script(self.full / name, f'#!/bin/sh\nexec {quoted} "$@"\n')
            _write_script(self.bare / name, f'#!/bin/sh\nexec {quoted} -S -I "$@"\n')
        _write_script(self.full / "snakemake", f'#!/bin/sh\nexec {quoted} -m snakemake "$@"\n')
        self._python_dir = str(Path(python).parent)

    def path(self, bare: bool, plain: bool = False) -> str:
        """``PATH`` for a task: the shim dir first, then the host ``PATH``.

        For bare and plain images the directory of this interpreter (a virtualenv's ``bin``,
        with its ``snakemake`` script) is left out so nothing else leaks in.
        """
        host = os.environ.get("PATH", os.defpath).split(os.pathsep)
        if bare or plain:
            host = [
                d for d in host if d and os.path.realpath(d) != os.path.realpath(self._python_dir)
            ]
        first = self.bare if bare else self._plain_shims() if plain else self.full
        return os.pathsep.join([str(first), *host])

    def _plain_shims(self) -> Path:
        if not (self.plain / "python").exists():
            view = self._root / "plain-site"
            snakemake_only_view(view)
            self.plain.mkdir(parents=True, exist_ok=True)
            quoted = shlex.quote(self._python)
            run = f"PYTHONPATH={shlex.quote(str(view))} exec {quoted} -S"
            for name in ("python", "python3"):
                _write_script(self.plain / name, f'#!/bin/sh\n{run} "$@"\n')
            _write_script(self.plain / "snakemake", f'#!/bin/sh\n{run} -m snakemake "$@"\n')
        return self.plain


def snakemake_only_view(view: Path) -> None:
    """A directory of links to the installed files of Snakemake and what it requires, and pip,
    and nothing else: on ``sys.path`` instead of site-packages, it is the official image's view."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    view.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    todo = ["snakemake", "pip"]  # the image has pip too
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            source = Path(str(dist.locate_file(top)))
            link = view / top
            if source.exists() and not link.exists():
                link.symlink_to(source)


def create_job_dir(job_dir: Path) -> None:
    """The job sandbox with empty stdout/stderr files, as the server creates them at submission."""
    job_dir.mkdir(parents=True, exist_ok=True)
    for name in (OUT_FILE, ERR_FILE):
        (job_dir / name).touch()


def fresh_home(job_dir: Path, inputs: Inputs) -> tuple[Path, Path]:
    """A new, empty scratch directory (HOME and cwd) with the job's inputs; returns (home, tmp).

    A retried job gets a new scratch, as it would on a new worker.
    """
    home = job_dir / HOME_DIR
    if home.exists():
        shutil.rmtree(home, ignore_errors=True)
    tmp = home / TMP_DIR
    tmp.mkdir(parents=True)
    for name, content, executable in inputs.files:
        target = home / name
        target.write_bytes(content)
        if executable:
            target.chmod(0o775)
    return home, tmp


def substitute(text: str, job_id: int) -> str:
    """``$PROMINENCE_JOB_ID`` substitution the worker applies to ``cmd`` and ``workdir``.

    It uses ``string.Template.safe_substitute``, so ``$$`` in a command also becomes ``$``.
    """
    return Template(text).safe_substitute({"PROMINENCE_JOB_ID": job_id})


def resolve_in_home(home: Path, path: str | None) -> Path:
    """Map a container path to the host: relative and ``/home/user/...`` paths go under HOME."""
    if not path:
        return home
    if path == CONTAINER_HOME or path.startswith(CONTAINER_HOME + "/"):
        return home / path[len(CONTAINER_HOME) :].lstrip("/")
    if path.startswith("/"):
        return Path(path)
    return home / path


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def task_environment(
    *,
    path: str,
    home: Path,
    tmp: Path,
    variables: dict[str, str],
    runtime: str,
    task_num: int,
    job_id: int,
    demand: Demand,
    url: str,
    token: str,
    pass_env: tuple[str, ...],
) -> dict[str, str]:
    """The complete environment of one task: nothing is inherited from the emulator.

    Order of precedence (later wins), as in the worker: locale defaults and explicitly passed
    host variables, then the task's ``variables`` (its ``env`` as the container runtime passes
    it, see ``launch``), then the variables the worker always sets. ``PROMINENCE_CPUS`` and
    ``PROMINENCE_MEMORY`` are what the server shows as provisioned.
    """
    env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update({name: os.environ[name] for name in pass_env if name in os.environ})
    env.update(variables)
    env.update(
        {
            "PATH": path,
            "HOME": str(home),
            "USER": user_name(),
            "TMPDIR": str(tmp),
            "TMP": str(tmp),
            "TEMP": str(tmp),
            "PROMINENCE_CONTAINER_RUNTIME": runtime,
            "PROMINENCE_CPUS": str(demand.cpus),
            "PROMINENCE_MEMORY": str(demand.provisioned_memory),
            "PROMINENCE_NODES": str(demand.nodes),
            "PROMINENCE_NODE_NUM": "0",
            "PROMINENCE_TASK_NUM": str(task_num),
            "PROMINENCE_JOB_ID": str(job_id),
            "PROMINENCE_URL": url,
            "PROMINENCE_TOKEN": token,
        }
    )
    return env
