"""Submit a job exactly once, even when the server's answer is lost.

``POST /jobs`` is not idempotent: a proxy can answer 502 or drop the connection *after* the
server created the job. Every description carries a unique submission label, so when a
submission ends without a usable answer we ask the server for that label before trying again,
and only submit again when no job carries it.

The real server also answers some failures of its own with a 400, like a refusal: after five
internal tries to queue the job in HTCondor, ``Job submission failed with an exception: ...``,
and ``Unable to create job sandbox`` / ``Unable to write ...`` when its disk fails
(``create_job.py``, ``create_htcondor_job.py``). The job may or may not exist, and a later try
can succeed, so these are unclear answers too; every other 400 (validation, an image that does
not exist) is a clear refusal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from snakemake_executor_plugin_prominence.job.labels import SUBMISSION_LABEL
from snakemake_executor_plugin_prominence.run import runinfo
from snakemake_executor_plugin_prominence.service.client import (
    AuthenticationError,
    ProminenceClient,
    ProminenceError,
    RequestRejected,
    ServerError,
)

#: How the real server's 400s for its own transient failures begin (see the module's doc).
TRANSIENT_REFUSALS = (
    "Job submission failed with an exception",
    "Unable to create job sandbox",
    "Unable to write ",
)


class SubmissionUnclear(ProminenceError):
    """We could not learn whether PROMINENCE created the job."""


def is_transient_refusal(error: ProminenceError | None) -> bool:
    """A 400 that reports the server's own failure, not a problem with the job."""
    return (
        isinstance(error, RequestRejected)
        and error.status == 400
        and str(error).startswith(TRANSIENT_REFUSALS)
    )


class RefusedAfterUnclearSubmission(AuthenticationError):
    """The token was refused while we were asking whether an unanswered submission created the
    job: it may exist, so a later try must look for it before submitting again."""


def submit_once(
    client: ProminenceClient,
    description: dict[str, Any],
    *,
    attempts: int = 8,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    look_first: bool = False,
) -> int:
    """POST ``description`` and return the id of the one job that carries its submission key.

    Raises ``RequestRejected``/``AuthenticationError`` when the server refused the job, and
    ``ProminenceError`` when it still has no answer, or still fails on its side, after
    ``attempts`` tries. With ``look_first``, an earlier try may have created the job: look for
    it before posting.
    """
    key = description["labels"][SUBMISSION_LABEL]
    constraint = f"{SUBMISSION_LABEL}={key}"
    if look_first:
        found = _ids_with(client, constraint)
        if found is not None:
            return found
    last_error: ProminenceError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(min(backoff * 2 ** (attempt - 1), 15.0))
        try:
            return client.create_job(description)
        except (RequestRejected, AuthenticationError) as e:
            if not is_transient_refusal(e):
                raise  # a clear answer: the job was not created
            last_error = e
        except ProminenceError as e:
            last_error = e
        try:
            found = _ids_with(client, constraint)
        except AuthenticationError as e:
            raise RefusedAfterUnclearSubmission(str(e), e.status) from None
        except ProminenceError as e:
            raise SubmissionUnclear(
                f"PROMINENCE gave no usable answer to the submission ({last_error}) and could "
                f"not be asked whether it created the job ({e}); look for it with "
                f"`prominence list --all --constraint {constraint}`"
            ) from None
        if found is not None:
            return found
        if isinstance(last_error, ServerError):
            break  # the server failed on this job and did not create it: do not insist
    if is_transient_refusal(last_error):
        raise ProminenceError(
            f"PROMINENCE failed on its side {attempt + 1} times in a row (last answer: 400 "
            f"{last_error}), and no job carries the submission label {constraint}: none was "
            "created. Its batch system or disk is in trouble; try again later",
            400,
        )
    raise ProminenceError(f"Submission failed after {attempt + 1} attempt(s): {last_error}")


def _ids_with(client: ProminenceClient, constraint: str) -> int | None:
    """The lowest id of a job carrying ``constraint``, or None. More than one is only possible
    if the server listed a job late: the extra ones are deleted."""
    found = client.find_jobs(constraint, include_finished=True)
    ids = sorted(job["id"] for job in found if isinstance(job.get("id"), int))
    if len(ids) > 1:
        client.delete_jobs(ids[1:])
    return ids[0] if ids else None


def delete_strays(
    client: ProminenceClient, run_constraint: str, tracked: Container[int], logger: Any
) -> None:
    """Delete the run's active jobs that are not ``tracked``: jobs whose submission ended
    without an answer, which the server may have created anyway. Never raises."""
    try:
        active = runinfo.active_job_ids(client, run_constraint)
    except ProminenceError as e:
        logger.warning(
            f"Could not look for untracked jobs of this run: {e}. List them with "
            f"`prominence list --constraint {run_constraint}`."
        )
        return
    strays = [job_id for job_id in active if job_id not in tracked]
    if strays:
        logger.warning(f"Deleting {len(strays)} untracked PROMINENCE job(s) of this run.")
        runinfo.delete_in_chunks(client, strays, logger, run_constraint)


class SubmissionCancelled(Exception):
    """A submission that had not started when submitting was stopped."""


class Submitter:
    """Runs :func:`submit_once` on a bounded pool of threads (one pooled HTTP session).

    ``created(tag, job_id)`` is called on the worker thread the moment a job exists, before
    the caller hears back, so that a Ctrl-C in the middle of a batch still knows every job
    it has to delete. After :meth:`stop`, nothing new is submitted.
    """

    def __init__(
        self,
        client: ProminenceClient,
        concurrency: int,
        created: Callable[[Any, int], None] = lambda tag, job_id: None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("submission concurrency must be at least 1")
        self._client = client
        self._created = created
        self._stopped = False
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="prominence-submit"
        )

    def submit(
        self, description: dict[str, Any], tag: Any = None, look_first: bool = False
    ) -> Future[int]:
        if self._stopped:
            future: Future[int] = Future()
            future.set_exception(SubmissionCancelled("submitting was stopped"))
            return future
        return self._pool.submit(self._run, description, tag, look_first)

    def _run(self, description: dict[str, Any], tag: Any, look_first: bool) -> int:
        if self._stopped:
            raise SubmissionCancelled("submitting was stopped")
        job_id = submit_once(self._client, description, look_first=look_first)
        self._created(tag, job_id)
        return job_id

    def stop(self) -> None:
        """Cancel what has not started and wait for submissions under way."""
        self._stopped = True
        self._pool.shutdown(wait=True, cancel_futures=True)
