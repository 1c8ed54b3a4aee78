"""Transient 400s of ``POST /jobs``, as the real server's backend gives them under load.

After validation the server creates the job's sandbox, writes its input files and hands the
job to HTCondor, with five tries (``create_job.py``); each step can fail for reasons that have
nothing to do with the job, and the answer is then a 400 (``jobs.py`` turns every backend
failure into one): ``Unable to create job sandbox``, ``Unable to write input file to disk``
(only for a job with inputs), or ``Job submission failed with an exception: ...``. The first two
fail before HTCondor saw the job; the last can come after HTCondor queued it (the answer of the
schedd was lost), so the job may exist, run and carry its labels although the client was told
it failed. A fraction of valid submissions fails this way, drawn from a seeded generator.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

SANDBOX = "sandbox"
INPUT = "input"
SUBMIT = "exception"
MESSAGES = {
    SANDBOX: "Unable to create job sandbox",
    INPUT: "Unable to write input file to disk",
}
#: what the HTCondor bindings raise when the queue could not be changed, or its answer was lost
_EXCEPTIONS = {
    False: "Failed to create new cluster.",
    True: "Failed to commit and disconnect from queue.",
}


@dataclass(frozen=True)
class SubmitFault:
    """One injected failure: at which ``stage``, with which message, and whether the job was
    created anyway (only when HTCondor's part failed)."""

    stage: str
    created: bool

    @property
    def message(self) -> str:
        if self.stage == SUBMIT:
            return f"Job submission failed with an exception: {_EXCEPTIONS[self.created]}"
        return MESSAGES[self.stage]


class SubmitFaults:
    """Draws the faults (reproducibly with a seed) and counts them for ``/_emulator/stats``."""

    def __init__(self, rate: float = 0.0, seed: int | None = None) -> None:
        self.rate = rate
        # Its own stream: the transport faults' generator (same seed) stays as it was.
        self._random = random.Random(None if seed is None else f"submit-faults:{seed}")
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def draw(self, has_inputs: bool) -> SubmitFault | None:
        """A fault for this submission, or ``None``; a job without inputs cannot fail writing
        them. Half of the HTCondor failures leave the job created."""
        if self.rate <= 0:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            stages = [SANDBOX, INPUT, SUBMIT] if has_inputs else [SANDBOX, SUBMIT]
            stage = self._random.choice(stages)
            fault = SubmitFault(stage, created=stage == SUBMIT and self._random.random() < 0.5)
            self._counts[stage] += 1
            self._counts["created_anyway"] += fault.created
            return fault

    def snapshot(self) -> dict[str, int]:
        """Faults per stage, how many of them created the job anyway, and the total."""
        with self._lock:
            counts = {key: self._counts.get(key, 0) for key in (SANDBOX, INPUT, SUBMIT)}
            return {
                **counts,
                "created_anyway": self._counts.get("created_anyway", 0),
                "total": sum(counts.values()),
            }
