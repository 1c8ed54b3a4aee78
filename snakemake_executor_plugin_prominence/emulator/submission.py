"""What the real server's backend does to a validated job before it is queued.

Validation (``validation.py``) is only the first gate: the backend then writes the inputs, checks
that uploaded images and artifacts exist, reads ``resources.disk`` unconditionally and adds the
default ``nodes``. Those steps produce their own 400 messages and crashes; this module reproduces
them and works out how many CPU and memory slots the job needs on the emulator's "cluster".
"""

from __future__ import annotations

import base64
import copy
import math
import os
from dataclasses import dataclass
from typing import Any

#: HTCondor's RequestMemory per GB of ``resources.memory`` (create_htcondor_job.py)
MB_PER_GB = 1000

# An image name containing one of these (and no "http", not an absolute path) is the name of an
# object uploaded with /data/upload. The emulator has no object store, so it never exists.
_UPLOADED_IMAGE_MARKERS = (".tar", ".tgz", ".simg", ".sif")


@dataclass(frozen=True)
class Demand:
    """Slots a job occupies while it runs, and what it is told it got."""

    cpus: int  # per node
    memory: int  # GB per node
    nodes: int
    disk: int

    @property
    def total_cpus(self) -> int:
        return self.cpus * self.nodes

    @property
    def total_memory(self) -> int:
        return self.memory * self.nodes

    @property
    def provisioned_memory(self) -> int:
        """The memory the server shows as provisioned, in GB: HTCondor gives a slot of 1000 MB
        per GB asked, which the server reads back as ``int(MemoryProvisioned / 1024)``: one GB
        less than asked up to 42 GB (0 for 1 GB). The worker's ``PROMINENCE_MEMORY`` too."""
        return int(MB_PER_GB * self.memory / 1024)

    @property
    def provisioned_disk(self) -> int:
        """The disk the server shows as provisioned, in GB: HTCondor's RequestDisk of
        ``disk x 1024 x 1024`` KB read back as ``ceil(DiskProvisioned / 1000 / 1000)``."""
        return math.ceil(self.disk * 1024 * 1024 / 1000 / 1000)


@dataclass(frozen=True)
class Inputs:
    """Decoded ``inputs`` entries: file name (basename), content, executable bit."""

    files: tuple[tuple[str, bytes, bool], ...]


def _number(value: Any) -> int:
    """An integer for a ``%d`` conversion on the server: numbers pass, anything else crashes."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"%d format: a real number is required, not {type(value).__name__}")
    return int(value)


def decode_inputs(job: dict) -> Inputs:
    """Decode every input like the backend does (bad base64 or a non-string name crash it)."""
    files = []
    for entry in job.get("inputs", []):
        name = os.path.basename(entry["filename"])
        content = base64.b64decode(entry["content"])
        files.append((name, content, bool(entry.get("executable", False))))
    return Inputs(tuple(files))


def backend_error(job: dict) -> str | None:
    """The backend's 400 message for an accepted job, or ``None``; raises where it crashes."""
    for task in job["tasks"]:
        image = task["image"]
        if (
            "http" not in image
            and not image.startswith("/")
            and any(marker in image for marker in _UPLOADED_IMAGE_MARKERS)
        ):
            return f"Image {image} does not exist"
    # The backend multiplies resources["disk"] without checking that it exists: a KeyError there
    # is the real server's HTTP 500 for a job without disk.
    _number(job["resources"]["disk"])
    own_storage = bool(job.get("storage", {}).get("default", False))
    for artifact in job.get("artifacts", []):
        url = artifact["url"]
        if "http" not in url and not own_storage:
            return f"Artifact {url} does not exist"
    return None


def stored_description(job: dict) -> dict:
    """The description as the server stores and echoes it: a copy with default ``nodes``."""
    stored = copy.deepcopy(job)
    resources = stored["resources"]
    if "nodes" not in resources and "totalCpusRange" not in resources:
        resources["nodes"] = 1
    return stored


def demand(job: dict, host_cpus: int) -> Demand:
    """CPU/memory slots for ``job`` on a host with ``host_cpus`` cores.

    ``cpusRange`` takes as many cores as the host offers up to its maximum (at least its minimum),
    ``cpusOptions`` the larger option if the host has it, else the smaller one, as the HTCondor
    expressions the server generates do. ``totalCpusRange`` (dynamic MPI) is run on one node.
    """
    res = job["resources"]
    if "cpus" in res:
        cpus = _number(res["cpus"])
    elif "cpusRange" in res:
        low, high = (_number(v) for v in res["cpusRange"])
        cpus = max(low, min(high, host_cpus))
    else:
        small, large = (_number(v) for v in res["cpusOptions"])
        cpus = small if large > host_cpus else large
    memory = (
        _number(res["memory"])
        if "memory" in res
        else math.ceil(_number(res["memoryPerCpu"]) * cpus)
    )
    nodes = _number(res.get("nodes", 1))
    return Demand(
        cpus=max(cpus, 1), memory=max(memory, 1), nodes=max(nodes, 1), disk=_number(res["disk"])
    )
