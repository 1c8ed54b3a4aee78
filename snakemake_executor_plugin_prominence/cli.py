"""``prominence-snakemake``: submit a detached run (Snakemake itself runs on PROMINENCE) and
follow, list or cancel it from anywhere with a valid token."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence import ExecutorSettings, detached, runinfo, startup
from snakemake_executor_plugin_prominence.client import ProminenceClient, ProminenceError

#: Settings that stay on the submitting machine: the head uses its job token and PROMINENCE_URL.
LOCAL_ONLY = {
    "url",
    "token",
    "token_file",
    "token_command",
    "token_endpoint",
    "oidc_client_id",
    "oidc_client_secret",
    "ca_bundle",
}
#: ``submit``'s own flags (the head job's resources and image).
HEAD_FLAGS = ("--prominence-head-walltime", "--prominence-head-memory", "--prominence-head-image")
TERMINAL = {"completed", "failed", "deleted", "killed"}

log = logging.getLogger("prominence-snakemake")


def _flag(name: str) -> str:
    return "--prominence-" + name.replace("_", "-")


def _add_settings(parser: argparse.ArgumentParser) -> None:
    for f in fields(ExecutorSettings):
        help_text = str(f.metadata.get("help", "")).replace("%", "%%")
        if f.type in (bool, "bool"):
            parser.add_argument(_flag(f.name), dest=f.name, action="store_true", help=help_text)
        else:
            parser.add_argument(_flag(f.name), dest=f.name, default=None, help=help_text)


def _settings(args: argparse.Namespace) -> Any:
    """An ``ExecutorSettings`` from the parsed flags (typed like Snakemake would)."""
    values: dict[str, Any] = {}
    for f in fields(ExecutorSettings):
        value = getattr(args, f.name, None)
        if value is None or value is False:
            continue
        kind = str(f.type)
        if "Path" in kind:
            value = Path(value)
        elif "int" in kind:
            value = int(value)
        elif "float" in kind:
            value = float(value)
        values[f.name] = value
    settings = ExecutorSettings(**values)
    for f in fields(ExecutorSettings):
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING:
            setattr(settings, f.name, None)
    return settings


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The ``--prominence-*`` flags the head's Snakemake gets (never a token or its sources)."""
    out: list[str] = []
    for f in fields(ExecutorSettings):
        value = getattr(args, f.name, None)
        if f.name in LOCAL_ONLY or value is None or value is False:
            continue
        out.extend([_flag(f.name)] if value is True else [_flag(f.name), str(value)])
    return out


def _client(args: argparse.Namespace) -> ProminenceClient:
    settings = _settings(args)
    return startup.make_client(settings, log)


def _run_jobs(client: ProminenceClient, run_id: str) -> list[dict[str, Any]]:
    return client.find_jobs(f"{runinfo.RUN_LABEL}={run_id}", include_finished=True)


def _head(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    # listings without detail have no labels: the head is known by its name
    heads = [j for j in jobs if str(j.get("name", "")).startswith(detached.HEAD_NAME_PREFIX)]
    return max(heads, key=lambda j: j.get("id", 0)) if heads else None


def cmd_submit(args: argparse.Namespace, snakemake_args: list[str]) -> int:
    client = _client(args)
    run_id = uuid.uuid4().hex
    workdir = Path.cwd()
    try:
        sources = detached.pack_sources(workdir)
    except detached.SourcesTooLarge as e:
        print(f"prominence-snakemake: {e}", file=sys.stderr)
        return 2
    image = args.prominence_head_image or args.container_image or runinfo.default_snakemake_image()
    description = detached.head_description(
        run_id=run_id,
        command=detached.head_command(
            run_id, snakemake_args, _forwarded(args), install=args.storage_plugins != "image"
        ),
        sources=sources,
        image=image,
        env=detached.storage_env(os.environ),
        labels=runinfo.RunLabels(run_id, runinfo.workdir_key(str(workdir))).labels(),
        cpus=1,
        memory_gb=args.prominence_head_memory,
        disk_gb=10,
        walltime_minutes=args.prominence_head_walltime,
        runtime=args.runtime or "singularity",
    )
    job_id = client.create_job(description)
    print(f"Detached run {run_id}: head job {job_id}.")
    print(f"  prominence-snakemake status {run_id}")
    print(f"  prominence-snakemake logs {run_id} --follow")
    print(f"  prominence-snakemake cancel {run_id}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    jobs = _run_jobs(client, args.run)
    head = _head(jobs)
    if head is None:
        print(f"No head job found for run {args.run}.", file=sys.stderr)
        return 1
    print(f"Head job {head['id']}: {head.get('status')}")
    counts = Counter(str(j.get("status")) for j in jobs if j is not head)
    shown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none yet"
    print(f"Jobs of the run: {shown}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    head = _head(_run_jobs(client, args.run))
    if head is None:
        print(f"No head job found for run {args.run}.", file=sys.stderr)
        return 1
    offsets = {"stdout": 0, "stderr": 0}
    while True:
        status = (client.get_job(head["id"]) or {}).get("status")
        for stream, out in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            try:
                chunk = client.read_output(head["id"], stream, offsets[stream])
            except ProminenceError:
                chunk = b""
            if chunk:
                offsets[stream] += len(chunk)
                out.write(chunk.decode("utf-8", "replace"))
                out.flush()
        if not args.follow or status in TERMINAL:
            return 0
        time.sleep(args.interval)


def cmd_cancel(args: argparse.Namespace) -> int:
    client = _client(args)
    constraint = f"{runinfo.RUN_LABEL}={args.run}"
    ids = runinfo.active_job_ids(client, constraint)
    deleted = runinfo.delete_in_chunks(client, ids, log, constraint) if ids else 0
    print(f"Deleted {deleted} job(s) of run {args.run}.")
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
    _add_settings(submit)
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
    for name, text in (
        ("status", "the head job's state and the run's jobs by state"),
        ("logs", "the head's Snakemake output"),
        ("cancel", "delete the head and every job of the run"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        _add_settings(p)
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
        return {"status": cmd_status, "logs": cmd_logs, "cancel": cmd_cancel}[args.command](args)
    except (ProminenceError, Exception) as e:
        if isinstance(e, SystemExit):
            raise
        print(f"prominence-snakemake: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
