"""One run of Snakemake on PROMINENCE: what happens between the first and the last job.

Owns start-up (``startup``: checked settings, client, job defaults), the run's identity and
leftovers (``runinfo``), adopting a killed run's jobs (``adoption``), submission
(``submission``), the status cycle (``tracking``, with ``overdue`` for held and
queued-too-long jobs), the token pause (``pause``), the run's own job list (``registry``), and
its state lines and job events (``progress``, ``events``).
May import: ``job``, ``service`` and ``settings``.
"""
