"""Stand-ins for Snakemake jobs, for the pure job-mapping tests.

They carry exactly the attributes ``job.description`` reads from a real ``snakemake.jobs.Job`` /
``GroupJob``; the end-to-end tests run the mapping on real jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeJob:
    name: str = "align"
    jobid: Any = 7
    threads: int = 1
    resources: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    container_img_url: str | None = None
    wildcards: dict[str, str] = field(default_factory=dict)

    def is_group(self) -> bool:
        return False


@dataclass
class FakeGroupJob:
    name: str = "grp"
    jobid: Any = "8a2b1c3d-0000-4000-8000-000000000000"
    jobs: list[FakeJob] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1

    @property
    def threads(self) -> int:
        return max(job.threads for job in self.jobs)

    def is_group(self) -> bool:
        return True
