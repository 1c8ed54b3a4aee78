"""Snakemake executor plugin for PROMINENCE: every Snakemake job becomes a PROMINENCE job.

This module holds only what Snakemake's plugin registry looks for: the settings dataclass,
the common settings and the executor class. Everything else lives in its sub-packages, from
the bottom up (a module imports only from its own sub-package, the ones below it and
``settings``):

- ``settings``: the ``--prominence-*`` settings and how the standalone commands read them;
- ``service/``: talking to PROMINENCE (REST client, tokens and their renewal);
- ``job/``: one Snakemake job -> one PROMINENCE job, and what a finished job says;
- ``run/``: one run: submission, the status cycle, progress and events, start-up;
- ``report/``: the run report (files, page, log summary, rebuild command);
- ``detached/``: detached runs (``prominence-snakemake`` and its head job);
- ``executor``: the Executor, the top.

``emulator/`` (the local PROMINENCE service the tests use) stands apart: it imports nothing of
the plugin, and the plugin imports nothing of it.
"""

from typing import Any

from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor

from snakemake_executor_plugin_prominence.settings import ExecutorSettings, common_settings

__all__ = ["Executor", "ExecutorSettings", "common_settings"]


class Executor(RemoteExecutor):
    """What Snakemake's registry finds: a handle that makes the real executor
    (``executor.Executor``) when a run uses this plugin.

    Snakemake imports every installed executor plugin each time it starts, for its command
    line options: every ``snakemake`` command on the machine, and inside every job both of the
    job's Snakemake starts. The real executor brings the HTTP client and the rest of the
    package (about 0.15 s of CPU per start); only a run on PROMINENCE needs them.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> RemoteExecutor:
        from snakemake_executor_plugin_prominence.executor import Executor as RealExecutor

        # Not an instance of this class: Python does not call __init__ again on it.
        return RealExecutor(*args, **kwargs)
