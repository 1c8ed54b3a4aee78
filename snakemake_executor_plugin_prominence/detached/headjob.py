"""The head job of a detached run: its sources, its command and its description (no HTTP here).

The head is one PROMINENCE job that restores the workflow's sources and runs
``snakemake --executor prominence ...`` itself, with the job token PROMINENCE gives every job
(``PROMINENCE_URL``/``PROMINENCE_TOKEN``), so the user's laptop and token are needed only to
submit. The sources must outlive the submitting process (Snakemake's own source archive is
deleted when its ``schedule()`` returns), so they travel one of two ways:

- inline: up to ``MAX_INLINE_SOURCES_BYTES``, inside the job description as one ``inputs``
  file (no storage round trip, within PROMINENCE's 1 MiB request limit);
- stored: larger archives go into the run's folder in the default storage (``runstore``) and
  the head fetches them with the standard library from a URL in its task env (presigned for
  S3, ``file://`` for ``fs``) before anything else, plugins included, is installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shlex
import tarfile
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence.job import deployment
from snakemake_executor_plugin_prominence.job.description import (
    label_value,
    shell_command,
    task_env,
)
from snakemake_executor_plugin_prominence.job.labels import HEAD_LABEL, RUN_LABEL
from snakemake_executor_plugin_prominence.run.runinfo import RUN_ID_ENV, WORKDIR_KEY_ENV

# HEAD_LABEL (imported above, used here as headjob.HEAD_LABEL): on head jobs only; ``list``
# finds detached runs by it, and while a head is active no other run adopts or deletes the
# jobs of its run.

#: Label on head jobs: the name of the workflow directory it was submitted from.
WORKFLOW_LABEL = "snakemakeworkflow"
#: Label on every job of a detached run (``list`` counts their active jobs in one query).
DETACHED_LABEL = "snakemakedetached"
#: Start of a head job's name (plain listings carry names, not labels).
HEAD_NAME_PREFIX = "snakemake-head-"
SOURCES_NAME = "snakemake-sources.tar.gz"
#: Base64 grows the archive by 4/3; PROMINENCE refuses request bodies over 1 MiB.
MAX_INLINE_SOURCES_BYTES = 700_000
#: Task env of a head whose sources are in storage: the URL to GET them from.
SOURCES_URL_ENV = "PROMINENCE_SNAKEMAKE_SOURCES_URL"
#: Task env of every head: where its run's folder is (``status`` and ``logs`` show it).
RUN_FOLDER_ENV = "PROMINENCE_SNAKEMAKE_RUN_FOLDER"
#: Where the head's copy of this plugin is unpacked (first on the head's PYTHONPATH).
HEAD_SITE = ".prominence-head/site"
DIST_NAME = "snakemake-executor-plugin-prominence"
#: Directories never shipped: Snakemake's state, version control, virtual environments.
SKIPPED_DIRS = {".snakemake", ".git", ".venv", "venv", "__pycache__", ".pytest_cache"}
#: Storage plugin settings are env settings named like this; they travel in the task env.
STORAGE_ENV_PREFIX = "SNAKEMAKE_STORAGE_"
#: The head's disk (its image is pulled into it), unless --prominence-min-disk asks for more.
HEAD_DISK_GB = 10


class SourcesTooLarge(ValueError):
    """Too large to travel inline, and the default storage gives no URL to fetch them by."""


def fetch_sources_command(sha256: str) -> str:
    """The shell step that fetches stored sources into ``SOURCES_NAME``."""
    script = deployment.fetch_script(
        SOURCES_URL_ENV,
        sha256,
        unreachable="Could not fetch the workflow sources from the default storage",
        damaged="The workflow sources in the default storage are damaged (sha256 mismatch).",
        then=f"open({SOURCES_NAME!r},'wb').write(data)",
    )
    return "python -c " + shlex.quote(script)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_sources(workdir: Path, skip: Sequence[str] = ()) -> bytes:
    """A gzipped tar of every file under ``workdir`` except state, VCS and ``skip`` dirs,
    plus this plugin for the head (under ``HEAD_SITE``).

    Everything is shipped (not only what git tracks): inside the head the sources are not a
    git checkout, so what Snakemake deploys from there to the worker jobs is what is here.
    """
    skipped = SKIPPED_DIRS | set(skip) | {HEAD_SITE.split("/")[0]}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for root, dirs, files in os.walk(workdir):
            dirs[:] = sorted(d for d in dirs if d not in skipped)
            for name in sorted(files):
                path = Path(root) / name
                tar.add(path, arcname=str(path.relative_to(workdir)), recursive=False)
        add_plugin(tar)
    return buffer.getvalue()


def add_plugin(tar: tarfile.TarFile) -> None:
    """This plugin's package (without the emulator) and a minimal dist-info, at the local
    version, under ``HEAD_SITE``: the head runs it from there (first on its ``PYTHONPATH``),
    so any Snakemake image will do, and the head runs exactly the plugin ``submit`` ran.
    It is pure Python, about 70 kB packed."""
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if not path.is_file() or relative.parts[0] == "emulator":
            continue
        if "__pycache__" in relative.parts:
            continue
        tar.add(path, arcname=f"{HEAD_SITE}/{package.name}/{relative.as_posix()}")
    try:
        plugin_version = version(DIST_NAME)
    except PackageNotFoundError:
        plugin_version = "0+unknown"
    metadata = f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {plugin_version}\n"
    data = metadata.encode()
    info = tarfile.TarInfo(
        f"{HEAD_SITE}/{DIST_NAME.replace('-', '_')}-{plugin_version}.dist-info/METADATA"
    )
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def package_install_command() -> str:
    """How the head gets the storage plugins (Snakemake comes with its image, this plugin
    with the sources).

    One function so that it can switch to the per-run wheelhouse later.
    """
    pins = {
        deployment.pin(dist)
        for dist in distributions()
        if (dist.metadata["Name"] or "").lower().startswith(deployment.PLUGIN_PREFIX)
    }
    return deployment.pip_install_command(pins)


def head_command(
    run_id: str,
    snakemake_args: Sequence[str],
    settings_args: Sequence[str],
    install: bool = True,
    stored_sources_sha256: str | None = None,
    workdir_key: str | None = None,
) -> str:
    """The head's shell command: restore the sources, get the plugins, run Snakemake.

    ``stored_sources_sha256``: the sources are in storage (fetched from ``SOURCES_URL_ENV``),
    not inline. ``workdir_key``: the key of the directory ``submit`` ran in, which every job
    of the run carries (the head's own directory is a worker's scratch directory), so that a
    re-submitted run finds, and adopts, the jobs its dead head left. ``exec`` makes the
    ``head`` wrapper the task's main process, so a deletion's SIGTERM reaches it and Snakemake
    (told by SIGINT) deletes its jobs before the grace period ends.
    """
    steps = [fetch_sources_command(stored_sources_sha256)] if stored_sources_sha256 else []
    steps += [f"tar xzf {SOURCES_NAME}", f"rm -f {SOURCES_NAME}"]
    prefix = package_install_command() if install else ""
    if prefix:
        steps.append(prefix)
    snakemake = [
        "python",
        "-m",
        "snakemake_executor_plugin_prominence.detached.head",
        "--executor",
        "prominence",
        *settings_args,
        *snakemake_args,
    ]
    key = f"{WORKDIR_KEY_ENV}={shlex.quote(workdir_key)} " if workdir_key else ""
    steps.append(
        f"export {RUN_ID_ENV}={shlex.quote(run_id)} {key}PYTHONUNBUFFERED=1 "
        f'PYTHONPATH="$PWD/{HEAD_SITE}${{PYTHONPATH:+:$PYTHONPATH}}" && exec '
        + shlex.join(snakemake)
    )
    return " && ".join(steps)


def storage_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Storage settings given as environment variables (credentials among them)."""
    return {k: v for k, v in environ.items() if k.startswith(STORAGE_ENV_PREFIX)}


def head_description(
    *,
    run_id: str,
    command: str,
    sources: bytes | None,
    image: str,
    env: Mapping[str, str],
    labels: Mapping[str, str],
    cpus: int,
    memory_gb: int,
    disk_gb: int,
    walltime_minutes: int,
    runtime: str = "singularity",
) -> dict[str, Any]:
    """The ``POST /jobs`` body of the head job (it never holds the user's token).

    ``sources`` None: they are in storage and ``env`` holds the URL to fetch them from.
    """
    task: dict[str, Any] = {
        "image": image,
        "runtime": runtime,
        "cmd": shell_command(command),
    }
    if env:
        task["env"] = task_env(HEAD_NAME_PREFIX.rstrip("-"), env, runtime)
    description = {
        "name": HEAD_NAME_PREFIX + label_value(run_id)[:40],
        "resources": {
            "cpus": cpus,
            "memory": memory_gb,
            "disk": disk_gb,
            "nodes": 1,
            "walltime": walltime_minutes,
        },
        "tasks": [task],
        "labels": {**labels, RUN_LABEL: run_id, HEAD_LABEL: "1", DETACHED_LABEL: "1"},
    }
    if sources is not None:
        description["inputs"] = [
            {"filename": SOURCES_NAME, "content": base64.b64encode(sources).decode("ascii")}
        ]
    return description
