"""The Snakemake executor: thin glue between Snakemake's scheduler and PROMINENCE.

No HTTP details (``client``), no JSON building (``jobspec``), no status interpretation
(``tracking``) here; this module decides when to call which, and reports to Snakemake.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncGenerator
from importlib.metadata import distributions, version
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_executor_plugin_prominence import jobspec, logs, tracking
from snakemake_executor_plugin_prominence.auth import TokenError, TokenProvider, check_not_expired
from snakemake_executor_plugin_prominence.client import (
    ProminenceClient,
    ProminenceError,
    check_base_url,
)
from snakemake_executor_plugin_prominence.diagnostics import explain

#: Status cycles a just-submitted job may be missing from the listing before it is looked up
#: directly (the server's queue and history queries are not instantaneous).
MISSING_GRACE_CYCLES = 3
PIP_TARGET = ".snakemake/pip-deployments"  # Snakemake puts this directory on sys.path


class Executor(RemoteExecutor):
    def __post_init__(self) -> None:
        # The status thread is already running: check_active_jobs must not rely on anything
        # set here while it has no jobs (it returns at once then).
        settings = self.workflow.executor_settings
        self._client = _make_client(settings)
        self._run_id = uuid.uuid4().hex
        self._defaults = _job_defaults(settings, self._run_id, self._default_image())
        self._install_prefix = (
            _storage_plugin_install_command() if settings.storage_plugins == "install" else ""
        )
        self._secrets = [self._client.tokens.current().value]
        self._unfinished: dict[int, SubmittedJobInfo] = {}
        self._unfinished_lock = threading.Lock()
        self.logger.info(
            f"PROMINENCE: run {self._run_id} at {self._client.base_url}; list its jobs with "
            f"`prominence list --all --constraint snakemakerun={self._run_id}`."
        )

    # --- submission ----------------------------------------------------------------

    def run_job(self, job: JobExecutorInterface) -> None:
        env = self.envvars()
        try:
            description = jobspec.build(
                job,
                self.format_job_exec(job),
                env,
                self._defaults,
                job_labels={
                    "snakemakerule": jobspec.label_value(jobspec.rule_label(job)),
                    "snakemakejob": jobspec.label_value(job.jobid),
                    "snakemakeattempt": str(job.attempt),
                    "snakemakekey": uuid.uuid4().hex,
                },
            )
        except jobspec.JobSpecError as e:
            self.report_job_error(SubmittedJobInfo(job), msg=f"{e}\nNothing was submitted. ")
            return
        try:
            prominence_id = self._client.create_job(description)
        except ProminenceError as e:
            self.report_job_error(
                SubmittedJobInfo(job), msg=f"PROMINENCE did not accept the job: {e}\n"
            )
            return
        info = SubmittedJobInfo(
            job,
            external_jobid=str(prominence_id),
            aux={"missing": 0, "image": description["tasks"][0]["image"]},
        )
        with self._unfinished_lock:
            self._unfinished[prominence_id] = info
        self.report_job_submission(info)
        self.logger.debug(f"Job {job.jobid} is PROMINENCE job {prominence_id}.")

    def get_job_exec_prefix(self, job: JobExecutorInterface) -> str:
        return self._install_prefix

    # --- status --------------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        try:
            still_active = await self._poll(active_jobs)
        except Exception as e:  # an exception here would end Snakemake's status loop
            self.logger.error(f"PROMINENCE status check failed, will retry: {e!r}")
            still_active = [info for info in active_jobs if self._is_unfinished(info)]
        for info in still_active:
            yield info

    async def _poll(self, active_jobs: list[SubmittedJobInfo]) -> list[SubmittedJobInfo]:
        by_id = {int(info.external_jobid): info for info in active_jobs}
        listed: dict[int, dict[str, Any]] = {}
        unreachable: set[int] = set()
        for chunk in tracking.chunks(list(by_id)):
            async with self.status_rate_limiter:
                try:
                    listing = self._client.list_jobs(chunk)
                except ProminenceError as e:
                    self.logger.warning(f"PROMINENCE status query failed, will retry: {e}")
                    unreachable.update(chunk)
                    continue
            for entry in listing:
                if isinstance(entry.get("id"), int) and entry["id"] in by_id:
                    listed[entry["id"]] = entry

        still_active = []
        for prominence_id, info in by_id.items():
            if prominence_id in unreachable:
                still_active.append(info)
                continue
            entry = listed.get(prominence_id)
            if entry is None:
                entry = await self._look_up_missing(prominence_id, info)
                if entry is None:
                    if self._is_unfinished(info):
                        still_active.append(info)
                    continue
            info.aux["missing"] = 0
            if not tracking.is_finished(entry):
                still_active.append(info)
                continue
            async with self.status_rate_limiter:
                try:
                    detail = self._client.get_job(prominence_id)
                except ProminenceError as e:
                    self.logger.warning(
                        f"Reading PROMINENCE job {prominence_id} failed, will retry: {e}"
                    )
                    detail = None
            if detail is None:
                still_active.append(info)
                continue
            self._finish(info, prominence_id, detail)
        return still_active

    async def _look_up_missing(self, prominence_id: int, info: SubmittedJobInfo) -> dict | None:
        """A job absent from the listing: wait a few cycles, then ask for it directly."""
        info.aux["missing"] += 1
        if info.aux["missing"] < MISSING_GRACE_CYCLES:
            return None
        async with self.status_rate_limiter:
            try:
                detail = self._client.get_job(prominence_id)
            except ProminenceError as e:
                self.logger.warning(
                    f"Reading PROMINENCE job {prominence_id} failed, will retry: {e}"
                )
                return None
        if detail is None:
            self._forget(prominence_id)
            self.report_job_error(
                info,
                msg=(
                    f"PROMINENCE job {prominence_id} is unknown to the server: it was listed "
                    f"neither as active nor as finished for {info.aux['missing']} status checks "
                    "(its history may have expired, or it was removed by an administrator).\n"
                ),
            )
        return detail

    def _finish(self, info: SubmittedJobInfo, prominence_id: int, detail: dict[str, Any]) -> None:
        outcome = tracking.verdict(detail)
        self._forget(prominence_id)
        if outcome.success:
            self.report_job_success(info)
            return
        streams = {
            name: logs.fetch_stream(self._client, prominence_id, name)
            for name in ("stdout", "stderr")
        }
        path = logs.save_job_log(
            logs.log_path(info.job, prominence_id),
            logs.job_log_header(prominence_id, detail, outcome.message),
            streams,
            self._secrets + list(self.envvars().values()),
        )
        findings = explain(streams["stderr"] + "\n" + streams["stdout"], info.aux.get("image"))
        message = f"PROMINENCE job {prominence_id} {outcome.message}"
        if findings:
            message += ": " + "; ".join(findings)
        self.report_job_error(info, msg=f"{message}.\nLog: {path}\n", aux_logs=[str(path)])

    # --- cancellation --------------------------------------------------------------

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        # Snakemake's own list misses jobs that are being polled right now; ours does not.
        with self._unfinished_lock:
            ids = set(self._unfinished)
        ids.update(int(info.external_jobid) for info in active_jobs if info.external_jobid)
        if not ids:
            return
        self.logger.info(f"Deleting {len(ids)} unfinished PROMINENCE job(s) of this run...")
        for chunk in tracking.chunks(sorted(ids)):
            try:
                self._client.delete_jobs(chunk)
            except ProminenceError as e:
                self.logger.error(
                    f"Could not delete PROMINENCE jobs {', '.join(map(str, chunk))}: {e}. "
                    f"List them with `prominence list --constraint snakemakerun={self._run_id}`."
                )
        with self._unfinished_lock:
            self._unfinished.clear()

    def shutdown(self) -> None:
        super().shutdown()
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    # --- helpers -------------------------------------------------------------------

    def _is_unfinished(self, info: SubmittedJobInfo) -> bool:
        with self._unfinished_lock:
            return int(info.external_jobid) in self._unfinished

    def _forget(self, prominence_id: int) -> None:
        with self._unfinished_lock:
            self._unfinished.pop(prominence_id, None)

    def _default_image(self) -> str:
        configured = self.workflow.executor_settings.container_image
        if configured:
            return configured
        # Snakemake's --container-image defaults to snakemake/snakemake:v<its version>.
        image = getattr(self.workflow.remote_execution_settings, "container_image", None)
        return image or f"snakemake/snakemake:v{version('snakemake')}"


def _make_client(settings: Any) -> ProminenceClient:
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
    tokens = TokenProvider(settings.token, settings.token_file)
    try:
        check_not_expired(tokens.current())
    except TokenError as e:
        raise WorkflowError(str(e)) from None
    if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
        raise WorkflowError(f"--prominence-ca-bundle: {settings.ca_bundle} is not a file.")
    return ProminenceClient(base_url, tokens, verify=settings.ca_bundle or True)


def _job_defaults(settings: Any, run_id: str, image: str) -> jobspec.JobDefaults:
    try:
        user_labels = jobspec.parse_label_pairs(settings.labels, "--prominence-labels")
    except ValueError as e:
        raise WorkflowError(str(e)) from None
    return jobspec.JobDefaults(
        image=image,
        runtime=settings.runtime,
        max_retries=settings.max_retries,
        max_time_in_queue=settings.max_time_in_queue,
        sites=jobspec.split_list(settings.sites),
        regions=jobspec.split_list(settings.regions),
        labels={**user_labels, "snakemakerun": run_id},
    )


def _storage_plugin_install_command() -> str:
    """pip-install the storage plugins installed here, at the same versions, into the job.

    Snakemake passes the settings of every installed storage plugin to the job's command
    line, so the job needs all of them, and the same versions avoid interface skew.
    """
    pins = sorted(
        {
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in distributions()
            if (dist.metadata["Name"] or "").lower().startswith("snakemake-storage-plugin-")
        }
    )
    if not pins:
        return ""
    return (
        "python -m pip install --quiet --disable-pip-version-check --no-warn-script-location "
        f"--target {PIP_TARGET} " + " ".join(pins)
    )
