"""Settings shared by every part of the emulator.

One frozen object is built from the Python keyword arguments or the command line and handed to the
app, the store and the runner, so that no module has to know where a setting came from.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .auth import usable_token

#: Patterns (fnmatch, on the image as the task gives it) whose tasks get a Python without
#: Snakemake.
DEFAULT_BARE_IMAGES: tuple[str, ...] = ("busybox*", "alpine*")

#: Walltime the real worker enforces when a job gives none (minutes).
DEFAULT_WALLTIME_MINUTES = 720

#: The real server's Flask ``MAX_CONTENT_LENGTH``.
MAX_BODY_BYTES = 1024 * 1024


def normalise_prefix(prefix: str) -> str:
    """Return ``prefix`` with one leading slash and no trailing slash (``""`` for the root)."""
    prefix = "/" + prefix.strip("/")
    return "" if prefix == "/" else prefix


def host_memory_gb() -> int:
    """Physical memory of this host in whole GB (rounded to nearest, at least 1)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1
    return max(1, round(total / 1024**3))


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that changes how the emulator behaves.

    ``pending_state`` reports queued jobs as ``pending`` instead of ``idle``, as services with
    the server's ``USE_PENDING_STATE`` setting (the EOSC one) do.

    Durations given by jobs (walltime, maximumTimeInQueue) are in minutes as on the real service
    and are multiplied by ``time_scale`` seconds-per-second, so that tests can use a 1-minute
    walltime that fires after 0.6 s with ``time_scale=0.01``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    prefix: str = "/api/v1"
    tokens: tuple[str, ...] | None = None
    cpus: int | None = None
    memory: int | None = None
    state_dir: str | None = None
    instant: bool = False
    job_seconds: float = 1.0
    latency: float = 0.0
    fault_rate: float = 0.0
    seed: int | None = None
    time_scale: float = 1.0
    bare_images: tuple[str, ...] = DEFAULT_BARE_IMAGES
    missing_images: tuple[str, ...] = ()
    plain_images: tuple[str, ...] = ()
    pass_env: tuple[str, ...] = ()
    kill_grace: float = 2.0
    site: str = "Emulator-Local"
    pending_state: bool = False
    log_requests: bool = False
    #: lifetime of the access tokens the emulated identity provider issues
    token_lifetime: float = 3600.0
    #: client id -> secret accepted by the token endpoint (empty: any client)
    oidc_clients: tuple[tuple[str, str], ...] = ()
    #: seconds jobs whose name matches ``hold_idle_match`` wait in the queue (``inf``: until
    #: released; 0: no hold), as when no site has room for them (see hold.py)
    hold_idle: float = 0.0
    hold_idle_match: tuple[str, ...] = ("*",)
    #: simulated overheads the worker reports (seconds, really waited inside the job's run):
    #: each task's first pull of an image, the stage-in before the tasks, the stage-out after
    image_pull_seconds: float = 0.0
    stage_in_seconds: float = 0.0
    stage_out_seconds: float = 0.0
    #: leave out ``maxResidentSetSizeKB``/``maxMemoryUsageKB``, as sites that do not report them
    omit_memory: bool = False
    #: seconds a job held for using too much memory stays in the queue (listed ``failed``)
    #: before it is removed as ``killed`` (the server: 80 s, checked about once a minute;
    #: ``inf``: never)
    remove_held_after: float = 80.0
    #: fraction of valid job submissions answered 400 by a transient backend error (some of
    #: which still create the job), drawn from ``random.Random(seed)``
    submit_fault_rate: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", normalise_prefix(self.prefix))
        if self.tokens is not None:
            object.__setattr__(self, "tokens", tuple(self.tokens))
            for number, token in enumerate(self.tokens, 1):
                if not usable_token(token):
                    raise ValueError(
                        f"accepted token #{number} is not a JWT with a numeric exp claim: the "
                        "real server refuses every such token (get one with --write-token-file "
                        "or POST /_emulator/login instead)"
                    )
        for name in (
            "bare_images",
            "missing_images",
            "plain_images",
            "pass_env",
            "hold_idle_match",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.cpus is not None and self.cpus < 1:
            raise ValueError("cpus must be at least 1")
        if self.memory is not None and self.memory < 1:
            raise ValueError("memory must be at least 1 GB")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        if self.latency < 0 or self.job_seconds < 0:
            raise ValueError("latency and job_seconds must not be negative")
        if not (self.token_lifetime > 0 and math.isfinite(self.token_lifetime)):
            raise ValueError("token_lifetime must be a positive number of seconds")
        object.__setattr__(self, "oidc_clients", tuple(tuple(c) for c in self.oidc_clients))
        for name in ("image_pull_seconds", "stage_in_seconds", "stage_out_seconds"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a non-negative number of seconds")
        if not self.remove_held_after >= 0:
            raise ValueError("remove_held_after must not be negative")
        if not 0.0 <= self.submit_fault_rate <= 1.0:
            raise ValueError("submit_fault_rate must be between 0 and 1")
        if not self.hold_idle >= 0:
            raise ValueError("hold_idle must not be negative")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError("time_scale must be a positive number")

    @property
    def total_cpus(self) -> int:
        """CPU slots that jobs share (default: every core of this host)."""
        return self.cpus if self.cpus is not None else (os.cpu_count() or 1)

    @property
    def total_memory(self) -> int:
        """Memory slots in GB that jobs share (default: this host's RAM)."""
        return self.memory if self.memory is not None else host_memory_gb()

    def minutes(self, value: float) -> float:
        """Seconds the emulator waits for a job duration of ``value`` minutes."""
        return value * 60.0 * self.time_scale
