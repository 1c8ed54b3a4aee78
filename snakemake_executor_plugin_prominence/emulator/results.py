"""What the worker reports at the end of a run, and what the server makes of it.

The worker writes a JSON file (``promlet.0.json``) when it ends a run; HTCondor copies it back
when the run exits (not when the job is removed or held), and the server's ``list_jobs.py``
reads it: the task entries, the stage-in and stage-out times, the CPU, the runtime versions,
the job's peak memory, and the marker of a walltime kill. A worker that crashed leaves the
empty file it wrote at its start. The file of the last run that exited is what every later
listing shows, also while the job waits for or runs its next attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REASON_IMAGE_PULL = "Container image pull failed"
REASON_WALLTIME = "Walltime limit exceeded"


@dataclass
class WorkerReport:
    """One run's report. ``tasks`` is ``None`` for the empty file of a crashed worker."""

    tasks: list[dict] | None
    #: seconds spent staging in (artifacts) and out (outputs); reported when above 0
    stage_in: float = 0.0
    stage_out: float = 0.0
    #: the ``cpu`` block (vendor, model, clock) of the machine it ran on
    cpu: dict[str, str] = field(default_factory=dict)
    #: runtime -> version, for the runtimes the run used
    runtimes: dict[str, str] = field(default_factory=dict)
    #: the job's peak memory in KB (bytes / 1000), a float; ``None`` where not measured
    max_memory_kb: float | None = None
    #: the run ended because it reached its walltime
    timed_out: bool = False

    @classmethod
    def crashed(cls) -> WorkerReport:
        """The file a worker that died writes: ``{}``."""
        return cls(tasks=None)

    @property
    def pull_failed(self) -> bool:
        return any(task.get("imagePullStatus") == "failed" for task in self.tasks or [])

    def verdict(self) -> tuple[str, str | None]:
        """Status and reason of a job whose last run exited with this report, as the server
        derives them (a walltime kill wins over a failed pull, as it is checked last)."""
        if self.timed_out:
            return "killed", REASON_WALLTIME
        if self.pull_failed:
            return "failed", REASON_IMAGE_PULL
        return "completed", None
