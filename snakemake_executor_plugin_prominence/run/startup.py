"""What a run builds from its settings before anything is submitted: the checked settings,
the API client with its token sources and renewers, and the defaults of every job description.

Everything here fails early with a ``WorkflowError`` that names the setting, so that a mistake
costs the user seconds, not a submitted run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_prominence.job import description, images
from snakemake_executor_plugin_prominence.run import runinfo
from snakemake_executor_plugin_prominence.run.progress import RunProgress
from snakemake_executor_plugin_prominence.service import auth, renewal
from snakemake_executor_plugin_prominence.service.client import (
    ProminenceClient,
    check_base_url,
    is_loopback,
)
from snakemake_executor_plugin_prominence.settings import flag


def check_settings(settings: Any) -> None:
    """Numbers Snakemake's argument parsing lets through but that make no sense."""
    for name, minimum in (
        ("submit_concurrency", 1),
        ("max_status_interval", 0),
        ("max_outage", 0),
        ("max_token_wait", 0),
        ("token_warning", 0),
        ("idle_threshold", 0),
        ("min_disk", 1),
    ):
        value = getattr(settings, name)
        if value < minimum:
            raise WorkflowError(f"{flag(name)} {value}: must be at least {minimum}.")
    if (
        settings.max_retries is not None
        and not 0 <= settings.max_retries <= description.MAX_RETRIES
    ):
        raise WorkflowError(
            f"--prominence-max-retries {settings.max_retries}: must be from 0 to "
            f"{description.MAX_RETRIES} (PROMINENCE refuses more)."
        )
    check_low_cpu_efficiency(settings.low_cpu_efficiency)


def check_low_cpu_efficiency(value: float) -> None:
    """The threshold is a fraction: a percent (e.g. 50) would flag every rule or none."""
    if not 0 <= value <= 1:
        hint = f" (for {value:g} %, write {value / 100:g})" if 1 < value <= 100 else ""
        raise WorkflowError(
            f"--prominence-low-cpu-efficiency {value:g}: must be a fraction between 0 and 1, "
            f"e.g. 0.5 for 50 %{hint}."
        )


def make_client(settings: Any, logger: Any) -> ProminenceClient:
    url = settings.url or os.environ.get("PROMINENCE_URL", "")
    if not url.strip():
        raise WorkflowError(
            "No PROMINENCE URL: set --prominence-url (e.g. https://eosc.prominence.cloud/api/v1) "
            "or the PROMINENCE_URL environment variable."
        )
    try:
        base_url = check_base_url(url)
    except ValueError as e:
        raise WorkflowError(str(e)) from None
    try:
        tokens = token_provider(settings, logger)
        token = tokens.current()
        auth.check_not_expired(token, renewal_error=tokens.last_renewal_error)
    except (auth.TokenError, renewal.RenewalError) as e:
        raise WorkflowError(str(e)) from None
    sources = tokens.renewal_sources()
    if sources:
        logger.info(f"PROMINENCE token: renewed by itself from {' or '.join(sources)}.")
    for warning in auth.token_warnings(
        token, tokens.token_file, renewal=sources, horizon_seconds=settings.token_warning * 60
    ):
        logger.warning(warning)
    if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
        raise WorkflowError(f"--prominence-ca-bundle: {settings.ca_bundle} is not a file.")
    return ProminenceClient(
        base_url,
        tokens,
        verify=settings.ca_bundle or True,
        # one pooled connection per concurrent submission, plus the status checks
        pool_size=max(16, settings.submit_concurrency + 4),
    )


def token_provider(settings: Any, logger: Any) -> auth.TokenProvider:
    """The token sources of the settings, with whatever can renew the token."""
    token_file = (settings.token_file or auth.DEFAULT_TOKEN_FILE).expanduser()
    command = renewal.TokenCommand(settings.token_command) if settings.token_command else None
    renewers: list[renewal.Renewer] = []
    endpoint = renewal.token_endpoint(settings.token_endpoint, os.environ)
    credentials = renewal.find_client_credentials(
        settings.oidc_client_id, settings.oidc_client_secret, os.environ
    )
    if endpoint and credentials:
        renewal.check_endpoint(endpoint, is_loopback)
        renewers.append(renewal.RefreshGrant(token_file, endpoint, credentials))
    elif settings.token_endpoint and not credentials:
        logger.warning(
            "--prominence-token-endpoint is set but no OIDC client id and secret were found "
            "(--prominence-oidc-client-id/-secret, PROMINENCE_OIDC_CLIENT_ID/_SECRET or "
            "~/.prominence/client): the token will not be renewed with the refresh token."
        )
    return auth.TokenProvider(
        settings.token,
        token_file,
        command=command,
        renewers=renewers,
        warn=logger.warning,
    )


def default_image(settings: Any, workflow: Any) -> str:
    """The image of jobs whose rule names none, as the worker pulls it: a ``docker://`` is
    stripped, and one no worker can pull stops the run here, naming the setting.

    It is --prominence-container-image, else Snakemake's --container-image (which defaults to
    snakemake/snakemake:v<its version>), else that image for the local Snakemake.
    """
    setting = default_image_setting(settings)
    if settings.container_image:
        image = settings.container_image
    else:
        image = getattr(workflow.remote_execution_settings, "container_image", None)
        image = image or images.default_snakemake_image()
    try:
        return images.pullable(image, settings.runtime)
    except images.ImageRefused as e:
        raise WorkflowError(f"{setting} {image!r} {e}.") from None


def default_image_setting(settings: Any) -> str:
    """Which setting the default image comes from (messages name it)."""
    return "--prominence-container-image" if settings.container_image else "--container-image"


def retries_warning(settings: Any, workflow: Any) -> str | None:
    """PROMINENCE's ``maximumRetries`` re-runs the whole job after any non-zero exit and
    after a walltime kill, not only after a fault of the worker; Snakemake's ``--retries``
    then submits it again: with both, the runs of a failing job multiply."""
    ours = settings.max_retries or 0
    theirs = getattr(getattr(workflow, "execution_settings", None), "retries", 0) or 0
    if ours <= 0 or theirs <= 0:
        return None
    runs = (ours + 1) * (theirs + 1)
    return (
        f"--prominence-max-retries {ours} and Snakemake's --retries {theirs} multiply: "
        f"PROMINENCE runs a failing job up to {ours + 1} times (it retries after your "
        "command's own non-zero exit and after a walltime kill too, not only after a fault of "
        f"the worker), and Snakemake submits it up to {theirs + 1} times, so a job that keeps "
        f"failing can run {runs} times. Keep only one of them (--retries alone for failures "
        "of your command, or --prominence-max-retries alone)."
    )


def job_defaults(settings: Any, run: runinfo.RunLabels, image: str) -> description.JobDefaults:
    try:
        user_labels = description.parse_label_pairs(settings.labels, "--prominence-labels")
    except ValueError as e:
        raise WorkflowError(str(e)) from None
    return description.JobDefaults(
        image=image,
        runtime=settings.runtime,
        max_retries=settings.max_retries,
        max_time_in_queue=settings.max_time_in_queue,
        sites=description.split_list(settings.sites),
        regions=description.split_list(settings.regions),
        labels={**user_labels, **run.labels()},
        image_setting=default_image_setting(settings),
        min_disk_gb=settings.min_disk,
        ignore_gpu=settings.ignore_gpu,
    )


def make_progress(settings: Any, logger: Any, run_id: str) -> RunProgress:
    """State lines and job events; ``--verbose`` (a DEBUG logger) lifts the rate limit."""
    verbose = bool(getattr(logger, "isEnabledFor", lambda _level: False)(logging.DEBUG))
    try:
        return RunProgress.for_run(
            logger, run_id, settings.idle_threshold, settings.events_file, verbose
        )
    except OSError as e:
        raise WorkflowError(f"--prominence-events-file {settings.events_file}: {e}") from None
