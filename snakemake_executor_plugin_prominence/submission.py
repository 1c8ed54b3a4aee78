"""Submit a job exactly once, even when the server's answer is lost.

``POST /jobs`` is not idempotent: a proxy can answer 502 or drop the connection *after* the
server created the job. Every description carries a unique submission label, so when a
submission ends without a usable answer we ask the server for that label before trying again,
and only submit again when no job carries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from snakemake_executor_plugin_prominence.client import (
    AuthenticationError,
    ProminenceClient,
    ProminenceError,
    RequestRejected,
    ServerError,
)

SUBMISSION_LABEL = "snakemakekey"


class SubmissionUnclear(ProminenceError):
    """We could not learn whether PROMINENCE created the job."""


def submit_once(
    client: ProminenceClient,
    description: dict[str, Any],
    *,
    attempts: int = 8,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST ``description`` and return the id of the one job that carries its submission key.

    Raises ``RequestRejected``/``AuthenticationError`` when the server refused the job, and
    ``ProminenceError`` when it still has no answer after ``attempts`` tries.
    """
    key = description["labels"][SUBMISSION_LABEL]
    constraint = f"{SUBMISSION_LABEL}={key}"
    last_error: ProminenceError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(min(backoff * 2 ** (attempt - 1), 15.0))
        try:
            return client.create_job(description)
        except (RequestRejected, AuthenticationError):
            raise  # a clear answer: the job was not created
        except ProminenceError as e:
            last_error = e
        try:
            found = client.find_jobs(constraint, include_finished=True)
        except AuthenticationError:
            raise
        except ProminenceError as e:
            raise SubmissionUnclear(
                f"PROMINENCE gave no usable answer to the submission ({last_error}) and could "
                f"not be asked whether it created the job ({e}); look for it with "
                f"`prominence list --all --constraint {constraint}`"
            ) from None
        ids = sorted(job["id"] for job in found if isinstance(job.get("id"), int))
        if ids:
            if len(ids) > 1:  # only possible if the server listed a job late; keep one
                client.delete_jobs(ids[1:])
            return ids[0]
        if isinstance(last_error, ServerError):
            break  # the server failed on this job and did not create it: do not insist
    raise ProminenceError(f"Submission failed after {attempt + 1} attempt(s): {last_error}")
