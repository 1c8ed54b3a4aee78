"""``python -m snakemake_executor_plugin_prominence.report --run <run id>``: rebuild the run report
of an earlier run from PROMINENCE alone (the jobs carrying the run's label), e.g. for a run
that was killed before it could write its own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from snakemake_executor_plugin_prominence.report.rows import record_of
from snakemake_executor_plugin_prominence.report.writer import (
    DEFAULT_DIR,
    DEFAULT_LOW_CPU_EFFICIENCY,
    read_details,
    report_root,
    run_dir,
    write,
)
from snakemake_executor_plugin_prominence.run import startup
from snakemake_executor_plugin_prominence.run.runinfo import run_constraint
from snakemake_executor_plugin_prominence.service.client import ProminenceError
from snakemake_executor_plugin_prominence.settings import (
    CONNECTION_SETTINGS,
    add_settings,
    settings_from,
)

log = logging.getLogger("prominence-report")


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the report of a run from PROMINENCE alone."""
    parser = argparse.ArgumentParser(
        prog="python -m snakemake_executor_plugin_prominence.report",
        description="Rebuild the run report of an earlier run from the PROMINENCE jobs that "
        "carry its label; the URL and token settings are the plugin's.",
    )
    parser.add_argument("--run", required=True, metavar="RUN_ID", help="the run id")
    add_settings(parser, only=(*CONNECTION_SETTINGS, "report_dir", "low_cpu_efficiency"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    settings = settings_from(args)
    try:
        root = report_root(settings.report_dir) or Path(DEFAULT_DIR)
        threshold = (
            DEFAULT_LOW_CPU_EFFICIENCY
            if settings.low_cpu_efficiency is None
            else settings.low_cpu_efficiency
        )
        startup.check_low_cpu_efficiency(threshold)
        client = startup.make_client(settings, log)
    except Exception as e:  # WorkflowError: a clear message, not a traceback
        log.error(f"prominence report: {e}")
        return 2
    constraint = run_constraint(args.run)
    try:
        ids = sorted(
            job["id"]
            for job in client.find_jobs(constraint, include_finished=True)
            if isinstance(job.get("id"), int)
        )
        details = read_details(client, ids)
    except ProminenceError as e:
        log.error(f"prominence report: cannot list the jobs of run {args.run}: {e}")
        return 1
    finally:
        client.close()
    if not details:
        log.error(f"prominence report: PROMINENCE lists no job with the label {constraint}.")
        return 1
    directory = run_dir(root, args.run)
    write(args.run, map(record_of, details), directory, threshold, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
