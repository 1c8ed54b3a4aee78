"""The labels every PROMINENCE job of this plugin carries, and what they say about the job.

Every job carries the run's label (``snakemakerun``) and the working directory's label
(``snakemakewd``): the first lists a run's jobs, the second finds jobs a killed earlier run of
the same workflow left behind. Each job also carries its own: rule (or group), Snakemake job
id, attempt, a unique submission key, the fingerprint of its work (``snakemakework``, which a
restarted run compares before it adopts the job), and for the run report (which a rebuild
reads back from PROMINENCE alone) whether it is a group job and its wildcards.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_executor_plugin_prominence.job.description import (
    MAX_LABEL_LENGTH,
    label_value,
    rule_label,
)
from snakemake_executor_plugin_prominence.job.identity import job_identity

#: the run's id, on every job of a run (``prominence list --constraint snakemakerun=ID``)
RUN_LABEL = "snakemakerun"
#: a key of the working directory and its host, on every job (finds an earlier run's leftovers)
WORKDIR_LABEL = "snakemakewd"
#: set (to "1") on a group job, whose snakemakerule label is then the group's id
GROUP_LABEL = "snakemakegroup"
#: a rule job's wildcards ``k=v,k=v``, escaped to label characters (see encode_wildcards)
WILDCARDS_LABEL = "snakemakewildcards"
#: the wildcards label's value when they do not fit into a label
WILDCARDS_TOO_LONG = "_"
#: a job's rule, or a group job's group id
RULE_LABEL = "snakemakerule"
#: a job's Snakemake job id
JOB_ID_LABEL = "snakemakejob"
#: a job's Snakemake attempt (1 for the first)
ATTEMPT_LABEL = "snakemakeattempt"
#: a key unique to one submission: a submission whose outcome is unclear is looked up by it
SUBMISSION_LABEL = "snakemakekey"
#: the fingerprint of the job's work (``job.fingerprint``): a restarted run adopts a killed
#: run's job only when its fingerprint is the one the restarted run would submit
WORK_LABEL = "snakemakework"
#: set (to "1") on a detached run's head job: while it is active, its run is alive
HEAD_LABEL = "snakemakehead"
_LABEL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-/")
_ESCAPE = re.compile(r"_([0-9A-F]{2})")


def job_labels(job: JobExecutorInterface) -> dict[str, str]:
    """Per-job labels: rule (or group), Snakemake job id, attempt, a unique submission key,
    and for the run report (which a rebuild reads back from PROMINENCE alone) whether it is a
    group job and the rule's wildcards."""
    labels = {
        RULE_LABEL: label_value(rule_label(job)),
        JOB_ID_LABEL: label_value(job.jobid),
        ATTEMPT_LABEL: str(job.attempt),
        SUBMISSION_LABEL: uuid.uuid4().hex,
    }
    identity = job_identity(job)
    if identity["group"] is not None:
        labels[GROUP_LABEL] = "1"
    elif identity["wildcards"]:
        text = ",".join(f"{key}={value}" for key, value in identity["wildcards"].items())
        labels[WILDCARDS_LABEL] = encode_wildcards(text)
    return labels


def encode_wildcards(text: str) -> str:
    """``sample=A,n=1`` as a label value: every byte outside ``[A-Za-z0-9./-]`` becomes
    ``_XX`` (its hex), e.g. ``sample_3DA_2Cn_3D1``; too long for a label: ``_``."""
    encoded = "".join(
        char if char in _LABEL_SAFE else "".join(f"_{byte:02X}" for byte in char.encode())
        for char in text
    )
    return encoded if len(encoded) <= MAX_LABEL_LENGTH else WILDCARDS_TOO_LONG


def decode_wildcards(value: str) -> str | None:
    """The wildcards text of :func:`encode_wildcards`; None when they did not fit."""
    if value == WILDCARDS_TOO_LONG:
        return None
    raw = _ESCAPE.sub(lambda match: f"%{match.group(1)}", value)
    return urllib.parse.unquote(raw, errors="replace")
