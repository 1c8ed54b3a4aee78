"""The run report: where every core-hour, gigabyte and minute of a run went.

Owns the records kept during a run and the files written at its end (``writer``), the log's
summary lines, warnings and notes (``summary``), the rows and per-rule figures (``rows``,
``rules``, ``memory``), the HTML page (``html``, ``tables``, ``plots``; the optional
``report`` extra) and the rebuild command
(``python -m snakemake_executor_plugin_prominence.report --run ID``, in ``__main__``).
May import: ``run``, ``job``, ``service`` and ``settings``.
"""
