"""What Snakemake calls a job, in the words every record of it uses.

Job events, state lines and the job's labels name a job the same way: its Snakemake job id,
its rule (a group job: its group), its wildcards and its attempt.
"""

from __future__ import annotations

from typing import Any


def job_identity(job: Any) -> dict[str, Any]:
    """What Snakemake calls the job: job id, rule (a group job: its group), wildcards, attempt."""
    group = job.is_group()
    wildcards = {} if group else dict(getattr(job, "wildcards", None) or {})
    return {
        "jobid": int(job.jobid) if str(job.jobid).isdigit() else str(job.jobid),
        "rule": str(job.name),
        "group": str(getattr(job, "groupid", job.name)) if group else None,
        "wildcards": {str(key): str(value) for key, value in wildcards.items()},
        "attempt": int(getattr(job, "attempt", 1)),
    }
