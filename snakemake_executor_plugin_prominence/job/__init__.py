"""One Snakemake job -> one PROMINENCE job, and what one finished job says.

Owns the job description (``description``: resources, images, env, labels, policies, checked
as the real server would), the per-job label vocabulary (``labels``) and naming (``identity``),
the fingerprint of a job's work that adoption compares (``fingerprint``), the verdict on a
finished job (``verdict``), the storage plugins shipped to jobs (``deployment``), and a failed
job's log and diagnosis (``logs``, ``diagnostics``). Mostly pure functions of one job; nothing
here knows about a run or its other jobs.
May import: ``service`` and ``settings``.
"""
