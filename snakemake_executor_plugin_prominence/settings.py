"""The plugin's settings: what ``--prominence-*`` flags exist, and how the standalone commands
read them.

``ExecutorSettings`` and ``common_settings`` are what Snakemake's plugin registry looks for
(the package's ``__init__`` re-exports them). The commands that run without Snakemake's own
argument parsing (``prominence-snakemake`` and the report's rebuild command) get the same
flags from :func:`add_settings` and build the same dataclass with :func:`settings_from`, so a
flag means the same everywhere.

The bottom of the package: it imports nothing of it, and every sub-package may import it.
"""

import argparse
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from snakemake_interface_executor_plugins.settings import (
    CommonSettings,
    ExecutorSettingsBase,
)

# Field annotations stay real types (no `from __future__ import annotations`): Snakemake's
# settings machinery inspects them to build the command-line flags.


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    url: Optional[str] = field(
        default=None,
        metadata={
            "help": "Base URL of the PROMINENCE REST API, e.g. "
            "https://eosc.prominence.cloud/api/v1. Default: the PROMINENCE_URL "
            "environment variable. Plain http:// is only allowed to a loopback address.",
            "metavar": "URL",
        },
    )
    token: Optional[str] = field(
        default=None,
        repr=False,
        metadata={
            "help": "PROMINENCE access token. Prefer the environment variable or the token "
            "file: a value given on the command line ends up in shell history. Default: "
            "the PROMINENCE_TOKEN environment variable, then the token file.",
            "env_var": True,
            "metavar": "TOKEN",
        },
    )
    token_file: Optional[Path] = field(
        default=None,
        metadata={
            "help": "File holding the access token: the JSON written by `prominence login` "
            "(its access_token is used) or the bare token. Default: ~/.prominence/token.",
            "metavar": "PATH",
        },
    )
    token_command: Optional[str] = field(
        default=None,
        metadata={
            "help": "Command that prints a fresh access token, e.g. 'oidc-token egi' "
            "(oidc-agent). When set, it is the token source: it runs at start, again a few "
            "minutes before the token expires, and when PROMINENCE refuses the token.",
            "metavar": "CMD",
        },
    )
    token_endpoint: Optional[str] = field(
        default=None,
        metadata={
            "help": "OIDC token endpoint for renewing the token with the refresh token of the "
            "token file. Default: $PROMINENCE_OIDC_URL/token (as the prominence CLI builds "
            "it). The renewed token is written back to the token file.",
            "metavar": "URL",
        },
    )
    oidc_client_id: Optional[str] = field(
        default=None,
        metadata={
            "help": "OIDC client id the refresh token was issued to. Default: "
            "PROMINENCE_OIDC_CLIENT_ID, then ~/.prominence/client.",
            "metavar": "ID",
        },
    )
    oidc_client_secret: Optional[str] = field(
        default=None,
        repr=False,
        metadata={
            "help": "Secret of that OIDC client (prefer the environment variable). Default: "
            "PROMINENCE_OIDC_CLIENT_SECRET, then ~/.prominence/client.",
            "env_var": True,
            "metavar": "SECRET",
        },
    )
    max_token_wait: float = field(
        default=1440,
        metadata={
            "help": "Minutes the run waits, paused, for a valid token once PROMINENCE refuses "
            "it and renewing fails. Its jobs keep running meanwhile; new jobs wait. After "
            "that the run stops (its jobs may still be running).",
            "metavar": "MINUTES",
            "type": float,
        },
    )
    token_warning: float = field(
        default=60,
        metadata={
            "help": "At start, warn when the token expires within this many minutes and "
            "nothing can renew it.",
            "metavar": "MINUTES",
            "type": float,
        },
    )
    ca_bundle: Optional[Path] = field(
        default=None,
        metadata={
            "help": "CA bundle (PEM) to verify the PROMINENCE server's TLS certificate "
            "with, for sites with a private CA. TLS verification is always on.",
            "metavar": "PATH",
        },
    )
    container_image: Optional[str] = field(
        default=None,
        metadata={
            "help": "Container image for jobs whose rule sets neither the "
            "prominence_image resource nor container:. It must contain Python and "
            "Snakemake. A registry name, with or without docker:// (stripped); also shub://, "
            "an http(s) URL of a .sif or of a docker-save .tar, or an uploaded image's name. "
            "Default: Snakemake's --container-image, i.e. "
            "snakemake/snakemake:v<installed Snakemake version>.",
            "metavar": "IMAGE",
        },
    )
    runtime: str = field(
        default="singularity",
        metadata={
            "help": "Container runtime PROMINENCE uses for the jobs "
            "(per rule: the prominence_runtime resource).",
            "choices": ["singularity", "udocker"],
            "metavar": "RUNTIME",
        },
    )
    storage_plugins: str = field(
        default="ship",
        metadata={
            "help": "How the Snakemake storage plugins the run needs get into a job: 'ship' "
            "packs them (with their dependencies, at the versions installed here) once per "
            "run into the default storage, and each job unpacks them without any package "
            "index; 'install' makes each job pip-install them from the index; 'image' "
            "assumes the image already has them.",
            "choices": ["ship", "install", "image"],
            "metavar": "MODE",
        },
    )
    max_retries: Optional[int] = field(
        default=None,
        metadata={
            "help": "PROMINENCE policy maximumRetries (0-6): how often PROMINENCE itself "
            "re-runs a job that failed, whatever the cause: also after the command's own "
            "non-zero exit and after a walltime kill. Snakemake's --retries submits a failed "
            "job again on top of that, so with both a failing job runs (N+1) x (retries+1) "
            "times. Per rule: the prominence_max_retries resource.",
            "metavar": "N",
            "type": int,
        },
    )
    min_disk: int = field(
        default=10,
        metadata={
            "help": "Least disk in GB a job asks for (the worker pulls the image into the "
            "job's disk, and Snakemake's default disk_mb is 1 GB). A rule that sets disk_mb "
            "or disk_mib itself (resources: or --set-resources) gets exactly that.",
            "metavar": "GB",
            "type": int,
        },
    )
    ignore_gpu: bool = field(
        default=False,
        metadata={
            "help": "Submit rules that ask for a GPU (gpu, nvidia_gpu, gpu_model, ...) "
            "without the GPU request, instead of failing them: PROMINENCE jobs cannot ask "
            "for a GPU. For rules placed (prominence_sites) on sites that offer GPUs.",
        },
    )
    max_time_in_queue: Optional[int] = field(
        default=None,
        metadata={
            "help": "Minutes a job may wait in the queue without starting (1-44640; 0: no "
            "limit). The plugin deletes a job that has not started this long after it "
            "submitted it, and fails it with the limit and PROMINENCE's last status and "
            "reason. Also sent as PROMINENCE's maximumTimeInQueue policy, which alone only "
            "removes jobs that are held or wait for resources to be deployed. Per rule: "
            "prominence_max_time_in_queue.",
            "metavar": "MINUTES",
            "type": int,
        },
    )
    sites: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated PROMINENCE sites a job may run at "
            "(policies.placement.requirements.sites). Per rule: prominence_sites.",
            "metavar": "SITE[,SITE...]",
        },
    )
    regions: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated regions a job may run in "
            "(policies.placement.requirements.regions). Per rule: prominence_regions.",
            "metavar": "REGION[,REGION...]",
        },
    )
    submit_concurrency: int = field(
        default=8,
        metadata={
            "help": "How many jobs are submitted to PROMINENCE at the same time (the API is "
            "slow: each submission waits for the server).",
            "metavar": "N",
            "type": int,
        },
    )
    keep_logs: bool = field(
        default=False,
        metadata={
            "help": "Also save stdout/stderr of successful jobs to .snakemake/prominence_logs/ "
            "(failed jobs' logs are always saved). Costs two requests per job.",
        },
    )
    cancel_leftovers: bool = field(
        default=False,
        metadata={
            "help": "Delete the jobs still queued or running on PROMINENCE from an earlier "
            "run of this workflow directory (e.g. one killed with SIGKILL) that this run does "
            "not adopt: one for a job of this run whose work differs at once (it would "
            "overwrite this run's outputs), the others at the end of the run (at start with "
            "--prominence-no-adopt). Without it they are only reported.",
        },
    )
    no_adopt: bool = field(
        default=False,
        metadata={
            "help": "Do not adopt the jobs an earlier, killed run of this workflow directory "
            "left queued or running. By default, a job Snakemake asks for whose work (rule, "
            "wildcards, inputs, params, code, image, resources) an earlier run's job is "
            "still doing, or has completed since, is tracked (or taken as done) instead of "
            "submitted again. With this flag, such jobs are only reported at start (deleted "
            "with --prominence-cancel-leftovers).",
        },
    )
    max_status_interval: int = field(
        default=120,
        metadata={
            "help": "Longest wait in seconds between status checks: the interval starts at "
            "--seconds-between-status-checks and grows up to this while no job changes.",
            "metavar": "SECONDS",
            "type": int,
        },
    )
    max_outage: int = field(
        default=60,
        metadata={
            "help": "Minutes without any answer from PROMINENCE after which the run stops "
            "(its jobs may still be running). Shorter outages are ridden out; 0 stops at "
            "the first status check nobody answers.",
            "metavar": "MINUTES",
            "type": int,
        },
    )
    labels: Optional[str] = field(
        default=None,
        metadata={
            "help": "Extra labels for every job, comma-separated key=value pairs "
            "(keys: letters and digits; values: letters, digits, _ - . /).",
            "metavar": "KEY=VALUE[,KEY=VALUE...]",
        },
    )
    idle_threshold: int = field(
        default=30,
        metadata={
            "help": "Minutes after which a job still queued on PROMINENCE is named in the "
            "run's state lines, with PROMINENCE's status reason.",
            "metavar": "MINUTES",
            "type": int,
        },
    )
    events_file: Optional[Path] = field(
        default=None,
        metadata={
            "help": "Append a JSON record for every job state change to this file (JSON "
            "lines, schema in the plugin's docs). The same records are on Snakemake's logger "
            "with --verbose.",
            "metavar": "PATH",
        },
    )
    report_dir: Optional[str] = field(
        default=".snakemake/prominence_reports",
        metadata={
            "help": "Where the run report is written at the end of every run: "
            "<DIR>/<run id>/ gets jobs.tsv, jobs.jsonl, rules.tsv (with right-sizing "
            "suggestions) and report.html (with the `report` extra). 'none' or an empty "
            "value turns the report off.",
            "metavar": "DIR",
        },
    )
    low_cpu_efficiency: float = field(
        default=0.5,
        metadata={
            "help": "Warn at the end of the run about each rule whose median CPU efficiency "
            "(CPU time / (run time x requested cpus)) is below this FRACTION between 0 and 1 "
            "(0.5: half of the requested cpus busy; 0 turns the warning off).",
            "metavar": "FRACTION",
        },
    )


common_settings = CommonSettings(
    non_local_exec=True,
    implies_no_shared_fs=True,
    job_deploy_sources=True,
    # Environment values (which may be secrets) travel in the task env, never in cmd.
    pass_envvar_declarations_to_cmd=False,
    # Snakemake's own auto-deploy pip-installs every storage plugin unpinned in every job; we
    # ship the locally installed versions of the ones the run needs (see ``job.deployment``).
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,
)


def flag(name: str) -> str:
    """The command-line flag of a setting: ``max_outage`` -> ``--prominence-max-outage``."""
    return "--prominence-" + name.replace("_", "-")


#: the settings a command that only talks to PROMINENCE needs: where, and as whom. They stay
#: on the submitting machine: the head uses its job token and PROMINENCE_URL.
CONNECTION_SETTINGS = (
    "url",
    "token",
    "token_file",
    "token_command",
    "token_endpoint",
    "oidc_client_id",
    "oidc_client_secret",
    "ca_bundle",
)


def add_settings(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    """The plugin's settings as ``--prominence-*`` flags (``only``: just these names)."""
    for f in fields(ExecutorSettings):
        if only is not None and f.name not in only:
            continue
        help_text = str(f.metadata.get("help", "")).replace("%", "%%")
        if f.type in (bool, "bool"):
            parser.add_argument(flag(f.name), dest=f.name, action="store_true", help=help_text)
        else:
            parser.add_argument(flag(f.name), dest=f.name, default=None, help=help_text)


def settings_from(args: argparse.Namespace) -> Any:
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
