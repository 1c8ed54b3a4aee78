"""``prominence-snakemake``: submit a detached run (Snakemake itself runs on PROMINENCE) and
follow, list or cancel it from anywhere with a valid token."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence.detached import headjob, runstore, views
from snakemake_executor_plugin_prominence.job import deployment, images
from snakemake_executor_plugin_prominence.job.description import label_value
from snakemake_executor_plugin_prominence.job.verdict import TERMINAL_STATUSES
from snakemake_executor_plugin_prominence.run import runinfo, startup
from snakemake_executor_plugin_prominence.service.client import ProminenceClient, ProminenceError
from snakemake_executor_plugin_prominence.settings import (
    CONNECTION_SETTINGS,
    ExecutorSettings,
    add_settings,
    flag,
    settings_from,
)

#: ``submit``'s own flags (the head job's resources and image).
HEAD_FLAGS = ("--prominence-head-walltime", "--prominence-head-memory", "--prominence-head-image")

log = logging.getLogger("prominence-snakemake")


class CliError(Exception):
    """A mistake in what the user asked for: said in one line, exit status 2."""


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The ``--prominence-*`` flags the head's Snakemake gets (never a token or its sources).

    Its jobs also get the ``snakemakedetached`` label, so that ``list`` counts every detached
    run's active jobs in one query.
    """
    out: list[str] = []
    for f in fields(ExecutorSettings):
        value = getattr(args, f.name, None)
        if f.name == "labels":
            value = ",".join(filter(None, [value, f"{headjob.DETACHED_LABEL}=1"]))
        if f.name in CONNECTION_SETTINGS or value is None or value is False:
            continue
        out.extend([flag(f.name)] if value is True else [flag(f.name), str(value)])
    return out


def _client(args: argparse.Namespace) -> ProminenceClient:
    settings = settings_from(args)
    return startup.make_client(settings, log)


def _run_jobs(client: ProminenceClient, run_id: str) -> list[dict[str, Any]]:
    return client.find_jobs(runinfo.run_constraint(run_id), include_finished=True)


def _head(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    # listings without detail have no labels: the head is known by its name
    heads = [j for j in jobs if str(j.get("name", "")).startswith(headjob.HEAD_NAME_PREFIX)]
    return max(heads, key=lambda j: j.get("id", 0)) if heads else None


def _head_image(args: argparse.Namespace) -> str:
    """The head's image as the worker pulls it: --prominence-head-image, else
    --prominence-container-image, else the local Snakemake's image. The latter is checked
    even when the head has its own: the head's run would refuse it only once queued."""
    runtime = args.runtime or "singularity"
    chosen = None
    for option, image in (
        ("--prominence-head-image", args.prominence_head_image),
        ("--prominence-container-image", args.container_image),
    ):
        if image is None:
            continue
        try:
            pullable = images.pullable(image, runtime)
        except images.ImageRefused as e:
            raise CliError(f"{option} {image!r} {e}.") from None
        chosen = chosen or pullable
    return chosen or images.default_snakemake_image()


def cmd_submit(args: argparse.Namespace, snakemake_args: list[str]) -> int:
    image = _head_image(args)
    # check the settings and the token before anything is stored
    client = _client(args)
    run_id = uuid.uuid4().hex
    workdir = Path.cwd()
    store = _run_store(snakemake_args)
    folder = store.folder(run_id)
    sources = headjob.pack_sources(workdir)
    env = {**headjob.storage_env(os.environ), headjob.RUN_FOLDER_ENV: folder}
    stored_sha256 = None
    if len(sources) > headjob.MAX_INLINE_SOURCES_BYTES:
        env[headjob.SOURCES_URL_ENV] = _store_sources(store, folder, sources)
        stored_sha256 = headjob.sha256_of(sources)
    # The head and every job of the run carry this directory's key (not the head's scratch
    # directory's): a re-submission adopts what a dead head left, and no run of another
    # directory touches them.
    run_labels = runinfo.RunLabels(run_id, runinfo.workdir_key(str(workdir)))
    labels = {**run_labels.labels(), headjob.WORKFLOW_LABEL: label_value(workdir.name)}
    description = headjob.head_description(
        run_id=run_id,
        command=headjob.head_command(
            run_id,
            snakemake_args,
            _forwarded(args),
            install=args.storage_plugins != "image",
            stored_sources_sha256=stored_sha256,
            workdir_key=run_labels.workdir_key,
        ),
        sources=None if stored_sha256 else sources,
        image=image,
        env=env,
        labels=labels,
        cpus=1,
        memory_gb=args.prominence_head_memory,
        disk_gb=max(headjob.HEAD_DISK_GB, int(args.min_disk or 0)),
        walltime_minutes=args.prominence_head_walltime,
        runtime=args.runtime or "singularity",
    )
    try:
        job_id = client.create_job(description)
    except Exception:
        if stored_sha256:  # nothing will fetch them
            with contextlib.suppress(Exception):
                store.remove(folder + runstore.SOURCES_OBJECT)
        raise
    print(f"Detached run {run_id}: head job {job_id}.")
    where = "in the default storage" if stored_sha256 else "inline"
    print(f"  sources: {len(sources)} bytes, {where}")
    print(f"  its Snakemake log and report go to {folder} when it ends")
    print(f"  prominence-snakemake status {run_id}")
    print(f"  prominence-snakemake logs {run_id} --follow")
    print(f"  prominence-snakemake cancel {run_id}")
    print("  prominence-snakemake list")
    return 0


def _run_store(snakemake_args: list[str]) -> runstore.RunStore:
    """The run's default storage, from the Snakemake arguments as Snakemake reads them."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stderr(quiet):
            return runstore.from_snakemake_args(snakemake_args)
    except SystemExit:
        raise CliError(f"Snakemake refuses these arguments: {quiet.getvalue().strip()}") from None
    except runstore.RunStoreError as e:
        raise CliError(str(e)) from None


def _store_sources(store: runstore.RunStore, folder: str, sources: bytes) -> str:
    """Put the sources into the run's folder; return the URL the head fetches them from."""
    query = folder + runstore.SOURCES_OBJECT
    if deployment.fetch_url_maker(store.provider) is None:
        raise CliError(
            f"The workflow directory packs to {len(sources)} bytes, more than the "
            f"{headjob.MAX_INLINE_SOURCES_BYTES} a PROMINENCE job description can carry, and "
            f"the {store.provider_name} storage provider gives no URL the head could fetch "
            "them from (fs and s3 do). Move data files out of the directory and submit again."
        )
    with tempfile.TemporaryDirectory(prefix="prominence-sources-") as tmp:
        local = Path(tmp) / runstore.SOURCES_OBJECT
        local.write_bytes(sources)
        store.put(local, query)
    return store.fetch_url(query) or ""


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    jobs = _run_jobs(client, args.run)
    head = _head(jobs)
    if head is None:
        print(f"No head job found for run {args.run}.", file=sys.stderr)
        return 1
    detail = client.get_job(head["id"]) or head
    reason = f" ({detail['statusReason']})" if detail.get("statusReason") else ""
    print(f"Head job {head['id']}: {detail.get('status')}{reason}")
    for line in views.walltime_lines(detail, time.time()):
        print(line)
    print(f"Jobs of the run: {views.counts_line(j for j in jobs if j['id'] != head['id'])}")
    folder = views.run_folder(detail)
    if folder:
        ended = detail.get("status") in TERMINAL_STATUSES
        print(f"Log and report: {folder}" + ("" if ended else " (copied when the head ends)"))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    head = _head(_run_jobs(client, args.run))
    if head is None:
        print(f"No head job found for run {args.run}.", file=sys.stderr)
        return 1
    offsets = {"stdout": 0, "stderr": 0}
    while True:
        detail = client.get_job(head["id"]) or {}
        status = detail.get("status")
        for stream, out in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            try:
                chunk = client.read_output(head["id"], stream, offsets[stream])
            except ProminenceError:
                chunk = b""
            if chunk:
                offsets[stream] += len(chunk)
                out.write(chunk.decode("utf-8", "replace"))
                out.flush()
        if not args.follow or status in TERMINAL_STATUSES:
            folder = views.run_folder(detail)
            if status in TERMINAL_STATUSES and folder:
                print(f"Head job {head['id']} {status}; log and report: {folder}", file=sys.stderr)
            return 0
        time.sleep(args.interval)


def cmd_cancel(args: argparse.Namespace) -> int:
    client = _client(args)
    constraint = runinfo.run_constraint(args.run)
    ids = runinfo.active_job_ids(client, constraint)
    deleted = runinfo.delete_in_chunks(client, ids, log, constraint) if ids else 0
    print(f"Deleted {deleted} job(s) of run {args.run}.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    heads = client.find_jobs(f"{headjob.HEAD_LABEL}=1", include_finished=True, detail=True)
    active = client.find_jobs(f"{headjob.DETACHED_LABEL}=1", detail=True)
    rows = views.run_rows(heads, active)
    if not rows:
        print("No detached runs.")
        return 0
    print(views.format_rows(rows))
    return 0


def cli_only_flags() -> set[str]:
    """The ``--prominence-*`` flags of ``submit`` that are not executor settings (for the docs)."""
    return set(HEAD_FLAGS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prominence-snakemake",
        description="Detached Snakemake runs on PROMINENCE: submit, then walk away.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    submit = sub.add_parser(
        "submit",
        help="submit a head job that runs Snakemake on PROMINENCE",
        description="Every argument that is not a --prominence-* flag goes to the head's "
        "Snakemake unchanged.",
    )
    add_settings(submit)
    submit.add_argument(
        "--prominence-head-walltime",
        type=int,
        default=7 * 24 * 60,
        metavar="MINUTES",
        help="walltime of the head job (PROMINENCE SIGKILLs it then): longer than the run",
    )
    submit.add_argument(
        "--prominence-head-memory", type=int, default=2, metavar="GB", help="head job memory"
    )
    submit.add_argument(
        "--prominence-head-image",
        default=None,
        metavar="IMAGE",
        help="image of the head job (needs Snakemake and this plugin)",
    )
    listing = sub.add_parser(
        "list",
        help="this user's detached runs, newest first",
        description="this user's detached runs, newest first, with their active jobs",
    )
    add_settings(listing, only=CONNECTION_SETTINGS)
    for name, text in (
        ("status", "the head job's state and the run's jobs by state"),
        ("logs", "the head's Snakemake output"),
        ("cancel", "delete the head and every job of the run"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        add_settings(p, only=CONNECTION_SETTINGS)
        p.add_argument("run", help="the run id submit printed")
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the head ends")
            p.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "submit":
            return cmd_submit(args, rest)
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        commands = {"status": cmd_status, "logs": cmd_logs, "cancel": cmd_cancel, "list": cmd_list}
        return commands[args.command](args)
    except CliError as e:
        print(f"prominence-snakemake: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"prominence-snakemake: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
