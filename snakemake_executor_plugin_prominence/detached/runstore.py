"""A detached run's own folder in the default storage: what must outlive the head job.

``submit`` and the head both build the run's default storage provider the way Snakemake does,
from the same Snakemake arguments (profiles and ``SNAKEMAKE_STORAGE_*`` variables included),
with Snakemake's own argument parser and storage plugin registry. The folder is
``<default storage prefix>/.prominence-runs/<run id>/`` and holds:

- ``sources.tar.gz``: the workflow's sources when they are too large to travel inside the head
  job's description (the head fetches them by URL before any plugin is installed);
- ``log/``: Snakemake's log files of the run and the head's own stderr, copied when the head
  ends (done, failed or deleted);
- ``report/``: the run report directory ``.snakemake/prominence_reports/<run id>/``, if the
  run wrote one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence.job import deployment

#: The folder under the default storage prefix that holds every detached run's files.
RUNS_DIR = ".prominence-runs"
SOURCES_OBJECT = "sources.tar.gz"

log = logging.getLogger("prominence-snakemake")


class RunStoreError(ValueError):
    """The Snakemake arguments give no usable default storage for a detached run."""


@dataclass
class RunStore:
    """The default storage provider of a run and the prefix its objects go under."""

    provider: Any
    provider_name: str
    prefix: str  # the default storage prefix, ending in "/"
    _tmp: Any = None  # keeps the provider's local prefix alive as long as the store

    def folder(self, run_id: str) -> str:
        return f"{self.prefix}{RUNS_DIR}/{run_id}/"

    def put(self, local: Path, query: str) -> None:
        """Store one local file as ``query`` (a full query, as ``folder`` builds them)."""
        obj = self.provider.object(query)
        obj.set_local_path(Path(local))
        _async_run(obj.managed_store())

    def remove(self, query: str) -> None:
        _async_run(self.provider.object(query).managed_remove())

    def put_tree(self, files: Iterable[tuple[Path, str]], folder: str) -> list[str]:
        """Store each (local file, relative name) under ``folder``; return the names stored.

        A file that cannot be stored is logged and skipped: the others are still worth having.
        """
        stored = []
        for local, name in files:
            try:
                self.put(local, folder + name)
                stored.append(name)
            except Exception as e:  # the plugin's errors have no common base class
                log.warning(f"Could not copy {local} to {folder}{name}: {e}")
        return stored

    def fetch_url(self, query: str) -> str | None:
        """A URL the head can GET with the standard library alone (presigned for S3, a
        ``file://`` URL for ``fs``), or None when this provider gives none."""
        maker = deployment.fetch_url_maker(self.provider)
        if maker is None:
            return None
        return maker(self.provider.object(query))()


def from_snakemake_args(argv: Sequence[str]) -> RunStore:
    """The default storage provider the Snakemake arguments ``argv`` configure.

    Raises ``RunStoreError`` when they configure none, or no prefix (a detached run keeps
    nothing on the submitting machine, so it needs both), and ``SystemExit`` like Snakemake
    for arguments Snakemake itself would refuse.
    """
    from snakemake.cli import parse_args
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    _parser, args = parse_args(list(argv))
    name = args.default_storage_provider
    prefix = args.default_storage_prefix or ""
    if not name:
        raise RunStoreError(
            "A detached run needs a default storage provider (--default-storage-provider, "
            "e.g. s3): its jobs and its head share nothing else."
        )
    if not prefix:
        raise RunStoreError(
            f"A detached run needs --default-storage-prefix for the {name} storage provider: "
            "its results, logs and report are kept there."
        )
    plugin = StoragePluginRegistry().get_plugin(name)
    tagged = plugin.get_settings(args)
    settings = tagged.get_settings(None) if tagged is not None else None
    if settings is None and plugin.settings_cls is not None:
        settings = plugin.settings_cls()
    if settings is not None:
        plugin.validate_settings(settings)
    tmp = tempfile.TemporaryDirectory(prefix="prominence-runstore-")
    provider = plugin.storage_provider(
        logger=log,
        local_prefix=Path(tmp.name) / name,
        settings=settings,
        keep_local=False,
        retrieve=True,
        is_default=True,
    )
    return RunStore(provider, name, prefix if prefix.endswith("/") else prefix + "/", tmp)


def run_files(workdir: Path, report_dir: Path | None) -> list[tuple[Path, str]]:
    """What the head copies at its end: (local file, name in the run's folder). ``report_dir``
    is the run's report directory (relative to ``workdir``), None when the report is off."""
    files: list[tuple[Path, str]] = []
    for path in sorted((workdir / ".snakemake" / "log").glob("*.log")):
        files.append((path, f"log/{path.name}"))
    head_log = workdir / HEAD_LOG
    if head_log.is_file():
        files.append((head_log, f"log/{head_log.name}"))
    report = workdir / report_dir if report_dir is not None else None
    if report is not None and report.is_dir():
        for path in sorted(p for p in report.rglob("*") if p.is_file()):
            files.append((path, f"report/{path.relative_to(report).as_posix()}"))
    return files


#: The head's own stderr (Snakemake's output and anything before its log file exists).
HEAD_LOG = ".snakemake/prominence-head/head.stderr.log"


def _async_run(coroutine: Any) -> Any:
    from snakemake.common import async_run

    return async_run(coroutine)
