"""The process a detached run's head job runs: Snakemake as a child, with deletion made a cancel.

Deleting a PROMINENCE job sends SIGTERM to its task, then SIGKILL after a grace period. On
SIGTERM Snakemake only stops scheduling and waits for its running jobs, which the SIGKILL would
then orphan; on SIGINT it deletes them. So SIGTERM is passed on as SIGINT.

Usage (inside the head job): ``python -m snakemake_executor_plugin_prominence.head ARGS...``
runs ``python -m snakemake ARGS...`` and exits with its status.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType


def run(args: list[str]) -> int:
    child = subprocess.Popen([sys.executable, "-m", "snakemake", *args])

    def cancel(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)
    return child.wait()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
