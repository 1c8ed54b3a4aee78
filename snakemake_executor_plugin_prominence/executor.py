"""The Snakemake executor: thin glue between Snakemake's scheduler and PROMINENCE.

No HTTP details (``service``), no JSON building (``job.description``), no status
interpretation (``job.verdict``, ``run.tracking``) here; this module decides when to call
which, and reports to Snakemake.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from concurrent.futures import CancelledError
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_executor_plugin_prominence.job import logs
from snakemake_executor_plugin_prominence.job.deployment import prepare as prepare_deployment
from snakemake_executor_plugin_prominence.job.description import JobSpecError, build
from snakemake_executor_plugin_prominence.job.fingerprint import fingerprint
from snakemake_executor_plugin_prominence.job.labels import WORK_LABEL, job_labels
from snakemake_executor_plugin_prominence.job.verdict import verdict
from snakemake_executor_plugin_prominence.report.writer import RunReport
from snakemake_executor_plugin_prominence.run import (
    adoption,
    overdue,
    pause,
    runinfo,
    startup,
    submission,
    tracking,
)
from snakemake_executor_plugin_prominence.run.registry import JobRegistry
from snakemake_executor_plugin_prominence.service import auth
from snakemake_executor_plugin_prominence.service.client import (
    AuthenticationError,
    ProminenceError,
    WrongURL,
)


class ProminenceOutage(WorkflowError):
    """PROMINENCE has not answered for longer than the configured limit."""


class NoValidToken(WorkflowError):
    """The run was paused for a token longer than the configured limit."""


#: Seconds between token checks while the run is paused (a new token is picked up this fast).
PAUSE_CHECK_SECONDS = 5.0


class Executor(RemoteExecutor):
    def __post_init__(self) -> None:
        # The status thread is already running: check_active_jobs must not rely on anything
        # set here while it has no jobs (it returns at once then).
        settings = self.workflow.executor_settings
        startup.check_settings(settings)
        self._settings = settings
        self._client = startup.make_client(settings, self.logger)
        self._run = runinfo.RunLabels.new(os.getcwd())
        self._defaults = startup.job_defaults(
            settings, self._run, startup.default_image(settings, self.workflow)
        )
        warning = startup.retries_warning(settings, self.workflow)
        if warning:
            self.logger.warning(warning)
        self._pause = pause.TokenPause(settings.max_token_wait * 60)
        #: a submission ended without knowing whether its job exists: look for strays at the end
        self._unclear_submissions = False
        self._submitter = submission.Submitter(
            self._client, settings.submit_concurrency, created=self._created
        )
        self._unfinished: JobRegistry[SubmittedJobInfo] = JobRegistry()
        self._tracker = tracking.JobTracker(self._client, limiter=lambda: self.status_rate_limiter)
        floor = self.workflow.remote_execution_settings.seconds_between_status_checks
        self._interval = tracking.PollInterval(floor, settings.max_status_interval)
        self._progress = startup.make_progress(settings, self.logger, self._run.run_id)
        self._run_report = RunReport.for_settings(settings, self._run.run_id)
        self.logger.info(
            f"PROMINENCE: run {self._run.run_id} at {self._client.base_url}. List its jobs with "
            f"`prominence list --all --constraint {self._run.run_constraint}`."
        )
        try:  # the first request: adoption's candidates (or, with adoption off, leftovers)
            self._adoption = adoption.Adoption.at_start(
                self._client, self._run, settings, self.logger
            )
        except AuthenticationError as e:
            raise WorkflowError(f"{e}. Nothing was submitted. {auth.NEW_TOKEN_HINT}") from None
        except WrongURL as e:
            raise WorkflowError(f"{e}. Nothing was submitted.") from None
        # After the token check: a refused token must not leave the zip in the storage.
        self._deployment = prepare_deployment(self.workflow, settings.storage_plugins, self.logger)

    # --- submission ----------------------------------------------------------------

    def run_job(self, job: JobExecutorInterface) -> None:
        self._submit([job])

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        """Submit all ready jobs at once: descriptions are built here, the POSTs run on a
        bounded pool, and Snakemake hears back in the jobs' order, from this thread."""
        for job in jobs:
            self.run_job_pre(job)
        self._submit(jobs)

    def _submit(self, jobs: list[JobExecutorInterface]) -> None:
        ready = []
        self._adoption.read_ahead(jobs, self.workflow)
        for job in jobs:
            try:
                description = build(
                    job,
                    self._deployment.command(self.format_job_exec(job)),
                    {**self.envvars(), **self._deployment.env()},
                    self._defaults,
                    job_labels=job_labels(job),
                )
            except JobSpecError as e:
                self._fail(SubmittedJobInfo(job), f"{e}\nNothing was submitted. ")
                continue
            work = fingerprint(job, description)
            if work is not None:
                description["labels"][WORK_LABEL] = work
            found = self._adoption.claim(job, work, self.workflow)
            if found is not None:
                self._adopt(job, description, found)
                continue
            ready.append((job, description, False))
        self._adoption.batch_done()
        if self._pause.hold_if_paused(ready):
            self.logger.debug(f"{len(ready)} job(s) held until PROMINENCE accepts the token.")
            return
        self._send(ready)

    def _send(self, ready: list[tuple[JobExecutorInterface, dict[str, Any], bool]]) -> None:
        """POST on the pool; report each job from this thread. Jobs refused for the token are
        held (with whether an earlier try may have created them) and the run pauses."""
        pending = []
        for job, description, look_first in ready:
            future = self._submitter.submit(
                description, tag=_tag(job, description), look_first=look_first
            )
            pending.append((job, description, future))
        refused: list[tuple[JobExecutorInterface, dict[str, Any], bool]] = []
        refusal: AuthenticationError | None = None
        for job, description, future in pending:
            try:
                prominence_id = future.result()
            except AuthenticationError as e:
                may_exist = isinstance(e, submission.RefusedAfterUnclearSubmission)
                refused.append((job, description, may_exist))
                refusal = e
            except (ProminenceError, submission.SubmissionCancelled, CancelledError) as e:
                if isinstance(e, submission.SubmissionUnclear):
                    self._unclear_submissions = True
                self._fail(SubmittedJobInfo(job), f"PROMINENCE did not accept the job: {e}\n")
            else:
                info = self._unfinished.get(prominence_id)
                if info is None:  # cancelled meanwhile: already deleted
                    continue
                self.report_job_submission(info)
                self.logger.debug(f"Job {job.jobid} is PROMINENCE job {prominence_id}.")
        if refusal is not None:
            self._enter_pause(refusal, refused)

    def _adopt(
        self, job: JobExecutorInterface, description: dict[str, Any], found: adoption.Candidate
    ) -> None:
        """Track an earlier run's job as if this run had just submitted it; one that has
        completed with exit code 0 is judged at once (``run.adoption``)."""
        self._created(_tag(job, description), found.prominence_id)
        info = self._unfinished.get(found.prominence_id)
        if found.done:
            self._finish(info, found.prominence_id, found.detail)
        else:
            self.report_job_submission(info)

    def _created(self, tag: tuple[Any, str, overdue.Request], prominence_id: int) -> None:
        """Called on a submission thread the moment a job exists: register it at once, so a
        Ctrl-C in the middle of a batch still finds and deletes it (and its queue time starts)."""
        job, image, request = tag
        info = SubmittedJobInfo(job, external_jobid=str(prominence_id), aux={"image": image})
        self._unfinished.add(prominence_id, info)
        self._tracker.submitted(prominence_id, request)
        self._progress.submitted(prominence_id, job)

    def get_job_exec_prefix(self, job: JobExecutorInterface) -> str:
        return self._deployment.prefix

    # --- status --------------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        # Called from the start, also before __post_init__ has run: only act once it has.
        paused = getattr(self, "_pause", None)
        if not active_jobs and (paused is None or not paused.active):
            return
        by_id = {int(info.external_jobid): info for info in active_jobs}
        result = None
        try:
            if by_id:
                result = await self._tracker.cycle(list(by_id))
                self._progress.observe(result.entries)
                self._report(result, by_id)
                self._progress.report()
            else:  # paused with nothing to track: does the token work again?
                self._client.find_jobs(self._run.run_constraint)
            if self._pause.active:
                self._resume()
        except AuthenticationError as e:
            self._enter_pause(e)
        except Exception as e:  # an exception here would end Snakemake's status loop
            self.logger.error(f"PROMINENCE status check failed, will retry: {e!r}")
            result = None
        if self._pause.active:
            self._remind_or_give_up()
        self._check_outage()
        for info in by_id.values():
            if int(info.external_jobid) in self._unfinished:
                yield info
        if self._pause.active:
            self.next_seconds_between_status_checks = max(self._interval.floor, PAUSE_CHECK_SECONDS)
        else:
            self.next_seconds_between_status_checks = self._interval.after_cycle(
                result is not None and result.changed
            )

    # --- the token pause -------------------------------------------------------------

    def _enter_pause(
        self,
        error: AuthenticationError,
        refused: list[tuple[JobExecutorInterface, dict[str, Any], bool]] | None = None,
    ) -> None:
        """Hold ``refused`` submissions and pause (saying so once, at once)."""
        if self._pause.hold_and_begin(refused or []):
            self.logger.warning(self._paused_message(error))

    def _paused_message(self, error: Exception) -> str:
        tracked = len(self._unfinished)
        reason = str(error)
        if self._client.tokens.last_renewal_error:
            reason += f"; renewing it failed: {self._client.tokens.last_renewal_error}"
        return pause.paused_message(
            reason,
            tracked,
            self._pause.held,
            str(self._client.tokens.token_file),
            self._pause.max_wait_seconds,
        )

    def _resume(self) -> None:
        paused_for, held = self._pause.end()
        self.logger.warning(pause.resumed_message(paused_for, len(held)))
        if held:
            self._send(held)

    def _remind_or_give_up(self) -> None:
        if self._pause.gave_up():
            running = self._unfinished.ids()
            raise NoValidToken(
                pause.gave_up_message(
                    self._pause.waited(), running, self._pause.held, self._run.run_constraint
                )
            )
        if self._pause.reminder_due():
            self.logger.warning(
                f"Still paused after {pause.minutes(self._pause.waited())}. "
                + self._paused_message(Exception("PROMINENCE still refuses the token"))
            )

    def _report(self, result: tracking.CycleResult, by_id: dict[int, SubmittedJobInfo]) -> None:
        if result.errors:
            self.logger.warning(
                f"PROMINENCE status check: {len(result.errors)} request(s) failed, will retry "
                f"(last: {result.errors[-1]})"
            )
        for prominence_id, reason in result.deleting.items():
            self.logger.info(f"PROMINENCE job {prominence_id} {reason}.")
        for prominence_id, message in result.lost.items():
            self._forget(prominence_id)
            self._fail(by_id[prominence_id], message + ".\n")
        for prominence_id, detail in result.finished.items():
            because = result.deleted_because.get(prominence_id)
            self._finish(by_id[prominence_id], prominence_id, detail, because)

    def _finish(
        self,
        info: SubmittedJobInfo,
        prominence_id: int,
        detail: dict[str, Any],
        because: str | None = None,
    ) -> None:
        """``because``: why this run deleted the job (held too long, queued past its limit)."""
        outcome = verdict(detail, because)
        self._forget(prominence_id)
        self._progress.finished(prominence_id, detail, outcome.success, because)
        self._run_report.add(detail, outcome.success)
        if outcome.success and not self._settings.keep_logs:
            self.report_job_success(info)
            return
        kept = logs.keep(
            self._client,
            prominence_id,
            info.job,
            detail,
            outcome.message,
            self._secret_values(),
            image=None if outcome.success else info.aux["image"],
        )
        if kept.problem:
            self.logger.warning(kept.problem)
        if outcome.success:
            self.report_job_success(info)
            return
        message = f"PROMINENCE job {prominence_id} {outcome.message}"
        if kept.findings:
            message += ": " + "; ".join(kept.findings)
        if kept.path is None:
            self._fail(info, f"{message}.\n")
        else:
            self._fail(info, f"{message}.\nLog: {kept.path}\n", aux_logs=[str(kept.path)])

    def _secret_values(self) -> list[str]:
        """What must never be written: every token used in this run, the renewal secrets, and
        the values of the environment passed to jobs (storage credentials, --envvars, the
        presigned URL of the package zip)."""
        shipped = getattr(self, "_deployment", None)
        urls = list(shipped.env().values()) if shipped is not None else []  # presigned
        return [*self._client.tokens.secret_values(), *self.envvars().values(), *urls]

    def _fail(
        self, info: SubmittedJobInfo, message: str, aux_logs: list[str] | None = None
    ) -> None:
        """Report a failed job. Snakemake does not print the message of a group job (only
        "Error in group ..."), so for groups it is logged here first."""
        self._progress.failed(info.job, message, _prominence_id(info))
        if info.job.is_group():
            group = getattr(info.job, "groupid", info.job.name)
            self.logger.error(f"Group {group} ({info.job.jobid}) failed: {message.strip()}")
        if aux_logs:
            self.report_job_error(info, msg=message, aux_logs=aux_logs)
        else:
            self.report_job_error(info, msg=message)

    def _check_outage(self) -> None:
        down = self._tracker.unreachable_for()
        if down > self._settings.max_outage * 60:
            raise ProminenceOutage(
                tracking.outage_message(
                    self._client.base_url,
                    down,
                    self._settings.max_outage,
                    self._unfinished.ids(),
                    self._run.run_constraint,
                )
            )

    # --- cancellation --------------------------------------------------------------

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        # No new submissions; wait for those under way, so that their jobs get deleted too.
        self._submitter.stop()
        if self._pause.active:
            self._pause.end()  # held jobs were never submitted: nothing to delete
            count = len(self._unfinished)
            self.logger.warning(pause.cancel_while_paused_message(count, self._run.run_constraint))
        # Snakemake's own list misses jobs that are being polled right now; ours does not.
        ids = self._unfinished.take_all()
        ids.update(int(info.external_jobid) for info in active_jobs if info.external_jobid)
        if ids:
            self.logger.info(f"Deleting {len(ids)} unfinished PROMINENCE job(s) of this run...")
            runinfo.delete_in_chunks(
                self._client, sorted(ids), self.logger, self._run.run_constraint
            )
            self._progress.cancelled(ids)
            self._run_report.cancelled(ids)
        self._delete_strays(already_deleted=ids)

    def _delete_strays(self, already_deleted: set[int] = frozenset()) -> None:
        tracked = {*self._unfinished.ids(), *already_deleted}
        submission.delete_strays(self._client, self._run.run_constraint, tracked, self.logger)

    def shutdown(self) -> None:
        if getattr(self, "_unclear_submissions", False):
            self._unclear_submissions = False
            self._delete_strays()
        super().shutdown()
        shipped = getattr(self, "_deployment", None)
        if shipped is not None:
            shipped.cleanup()
        submitter = getattr(self, "_submitter", None)
        if submitter is not None:
            submitter.stop()
        client = getattr(self, "_client", None)
        if getattr(self, "_adoption", None) is not None:
            self._adoption.finish()
        if getattr(self, "_run_report", None) is not None:
            self._run_report.finish(client, self.logger)
        if client is not None:
            client.close()
        if getattr(self, "_progress", None) is not None:
            self._progress.close()

    # --- helpers -------------------------------------------------------------------

    def _forget(self, prominence_id: int) -> None:
        self._unfinished.discard(prominence_id)
        self._tracker.forget(prominence_id)


def _tag(
    job: JobExecutorInterface, description: dict[str, Any]
) -> tuple[JobExecutorInterface, str, overdue.Request]:
    """What :meth:`Executor._created` needs of a job once it exists on PROMINENCE: the job, its
    image (for the diagnostics of a failure) and its request (queue limit, held grace)."""
    return job, description["tasks"][0]["image"], overdue.Request.of(description, job)


def _prominence_id(info: SubmittedJobInfo) -> int | None:
    return int(info.external_jobid) if info.external_jobid else None
