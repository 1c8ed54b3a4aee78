"""Detached runs: Snakemake itself runs on PROMINENCE as a head job.

Owns the ``prominence-snakemake`` command (``cli``), the head job's sources, command and
description (``headjob``), what the head job runs (``head``, started as
``python -m snakemake_executor_plugin_prominence.detached.head``), the run's folder in the
default storage (``runstore``) and the text of ``status`` and ``list`` (``views``).
May import: ``report``, ``run``, ``job``, ``service`` and ``settings``.
"""
