"""``Emulator``: the whole service on a loopback port, in-process, for tests and the CLI.

It serves the Flask app (behind the fault middleware) with Werkzeug's threaded server on its own
thread, and exposes the jobs for inspection without going through HTTP.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import OIDC_PATH, create_app
from .config import DEFAULT_BARE_IMAGES, EmulatorConfig
from .core import EmulatorCore
from .faults import FaultMiddleware, route_key
from .hold import HoldRule
from .store import TERMINAL_STATES


def write_private_json(path: Path, content: dict[str, Any]) -> Path:
    """Write ``content`` to ``path`` atomically with mode 0600 (it holds a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(content, handle)
    os.chmod(partial, 0o600)  # also when the file already existed with a wider mode
    os.replace(partial, path)
    return path


class _RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, with the per-request access log only when asked for."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if getattr(self.server, "log_requests", False):
            super().log_request(code, size)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or ``OSError`` (Werkzeug would print and ``sys.exit`` instead)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


class Emulator:
    """A local PROMINENCE-compatible service.

    Use it as a context manager (``with Emulator(time_scale=0.01) as emu: ...``) or call
    ``start()``/``stop()``. ``url`` is the base URL including the prefix, to be used exactly like
    a real ``PROMINENCE_URL``. ``stop()`` kills every job's process group.

    ``time_scale`` multiplies every duration a job specifies in minutes (walltime,
    ``maximumTimeInQueue``): with 0.01 a 1-minute walltime fires after 0.6 s.

    ``image_pull_seconds``, ``stage_in_seconds`` and ``stage_out_seconds`` are overheads each
    job really spends running (reported as ``imagePullTime``, ``stageInTime``,
    ``stageOutTime``); ``omit_memory`` leaves out the memory figures, as some sites do.

    A job whose processes use more than its memory (1000 MB per GB) is held, then removed
    ``remove_held_after`` seconds later; ``submit_fault_rate`` answers that fraction of valid
    submissions with a transient 400 (see ``submit_faults``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = "/api/v1",
        tokens: Iterable[str] | None = None,
        cpus: int | None = None,
        memory: int | None = None,
        state_dir: str | Path | None = None,
        instant: bool = False,
        job_seconds: float = 1.0,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int | None = None,
        time_scale: float = 1.0,
        bare_images: Iterable[str] = DEFAULT_BARE_IMAGES,
        missing_images: Iterable[str] = (),
        plain_images: Iterable[str] = (),
        pass_env: Iterable[str] = (),
        kill_grace: float = 2.0,
        pending_state: bool = False,
        log_requests: bool = False,
        token_lifetime: float = 3600.0,
        oidc_clients: dict[str, str] | None = None,
        hold_idle: float = 0.0,
        hold_idle_match: Iterable[str] = ("*",),
        image_pull_seconds: float = 0.0,
        stage_in_seconds: float = 0.0,
        stage_out_seconds: float = 0.0,
        omit_memory: bool = False,
        remove_held_after: float = 80.0,
        submit_fault_rate: float = 0.0,
    ) -> None:
        self.config = EmulatorConfig(
            host=host,
            port=port,
            prefix=prefix,
            tokens=None if tokens is None else tuple(tokens),
            cpus=cpus,
            memory=memory,
            state_dir=None if state_dir is None else str(state_dir),
            instant=instant,
            job_seconds=job_seconds,
            latency=latency,
            fault_rate=fault_rate,
            seed=seed,
            time_scale=time_scale,
            bare_images=tuple(bare_images),
            missing_images=tuple(missing_images),
            plain_images=tuple(plain_images),
            pass_env=tuple(pass_env),
            kill_grace=kill_grace,
            pending_state=pending_state,
            log_requests=log_requests,
            token_lifetime=token_lifetime,
            oidc_clients=tuple((oidc_clients or {}).items()),
            hold_idle=hold_idle,
            hold_idle_match=tuple(hold_idle_match),
            image_pull_seconds=image_pull_seconds,
            stage_in_seconds=stage_in_seconds,
            stage_out_seconds=stage_out_seconds,
            omit_memory=omit_memory,
            remove_held_after=remove_held_after,
            submit_fault_rate=submit_fault_rate,
        )
        self.core: EmulatorCore | None = None
        self.state_dir: Path | None = None
        self._owns_state_dir = False
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: FaultMiddleware | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind the port, start serving and scheduling; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        config = self.config
        if config.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="prominence-emulator-"))
            self._owns_state_dir = True
        else:
            self.state_dir = Path(config.state_dir).resolve()
            self.state_dir.mkdir(parents=True, exist_ok=True)
        core = EmulatorCore(config, self.state_dir)
        app = create_app(core)
        self._faults = wsgi = FaultMiddleware(
            app,
            core.stats,
            lambda environ: route_key(app.url_map, config.prefix, environ),
            latency=config.latency,
            fault_rate=config.fault_rate,
            seed=config.seed,
        )
        try:
            listener = _listen(config.host, config.port)
        except OSError:
            if self._owns_state_dir:
                shutil.rmtree(self.state_dir, ignore_errors=True)
            raise
        with listener:  # Werkzeug serves a duplicate of this descriptor
            server = make_server(
                config.host,
                config.port,
                wsgi,
                threaded=True,
                request_handler=_RequestHandler,
                fd=listener.fileno(),
            )
        server.log_requests = config.log_requests  # type: ignore[attr-defined]
        host = f"[{config.host}]" if ":" in config.host else config.host
        core.base_url = f"http://{host}:{server.port}{config.prefix}"
        self.core = core
        self._server = server
        core.runner.start()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="emulator-http",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, kill all jobs, and remove the state dir if the emulator created it."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        assert self.core is not None
        self.core.stop()
        self._server = None
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def _core(self) -> EmulatorCore:
        if self.core is None:
            raise RuntimeError("the emulator has not been started")
        return self.core

    @property
    def url(self) -> str:
        """Base URL with the prefix, e.g. ``http://127.0.0.1:40123/api/v1``."""
        return self._core.base_url

    @property
    def root_url(self) -> str:
        """Base URL without the prefix (where ``/_emulator/stats`` lives)."""
        prefix = self.config.prefix
        return self.url[: -len(prefix)] if prefix else self.url

    @property
    def oidc_url(self) -> str:
        """The emulated identity provider (``PROMINENCE_OIDC_URL``); tokens at ``+ "/token"``."""
        return self.root_url + OIDC_PATH

    # -- tokens ------------------------------------------------------------------------------

    def login(self, user: str = "emulator-user") -> dict[str, Any]:
        """A fresh token response (access and refresh token), as `prominence login` saves it."""
        return self._core.idp.login(user)

    def write_token_file(self, path: str | Path, user: str = "emulator-user") -> Path:
        """Write what `prominence login` saves (access and refresh token, as JSON) to ``path``,
        readable by its owner only; returns the path. Point ``--prominence-token-file`` (or the
        official CLI's ``~/.prominence/token``) at it."""
        return write_private_json(Path(path), self.login(user))

    def expire_tokens(self) -> int:
        """Expire every access token issued so far; the API answers 401 to them from now on."""
        return self._core.idp.expire_all()

    def set_token_lifetime(self, seconds: float) -> None:
        """Lifetime of the access tokens issued from now on."""
        self._core.idp.set_lifetime(seconds)

    # -- inspection --------------------------------------------------------------------------

    def jobs(self) -> list[dict]:
        """Detailed job objects of every user, in id order."""
        core = self._core
        return [core.describe(r) for r in sorted(core.store.all(), key=lambda r: r.id)]

    def job(self, job_id: int) -> dict | None:
        """The detailed job object of ``job_id`` (any user), or ``None``."""
        record = self._core.store.get(job_id)
        return None if record is None else self._core.describe(record)

    def owner(self, job_id: int) -> str | None:
        """The username that submitted ``job_id``."""
        record = self._core.store.get(job_id)
        return None if record is None else record.owner

    def job_dir(self, job_id: int) -> Path | None:
        """The job's sandbox (``job.0.out``, ``job.0.err``, ``userhome/``); ``None`` if none."""
        record = self._core.store.get(job_id)
        return None if record is None else record.job_dir

    def set_faults(self, fault_rate: float | None = None, latency: float | None = None) -> None:
        """Change the fault rate and/or latency while running: an outage on demand."""
        if self._faults is None:
            raise RuntimeError("the emulator has not been started")
        if fault_rate is not None:
            if not 0.0 <= fault_rate <= 1.0:
                raise ValueError("fault_rate must be between 0 and 1")
            self._faults.fault_rate = fault_rate
        if latency is not None:
            if latency < 0:
                raise ValueError("latency must not be negative")
            self._faults.latency = latency

    def hold_idle(self, seconds: float = math.inf, match: Iterable[str] = ("*",)) -> None:
        """From now on, keep jobs whose name matches a pattern of ``match`` (fnmatch) queued
        for ``seconds`` after submission (``math.inf``: until :meth:`release_idle`), as when no
        site has room: they show as ``waiting`` with the reason ``No matching resources
        currently available``. Matching jobs already queued wait ``seconds`` from now."""
        self._core.hold_idle(HoldRule(seconds, tuple(match)))

    def release_idle(self) -> None:
        """End every hold: held jobs may start now, and new jobs are no longer held."""
        self._core.release_idle()

    def stats(self) -> dict[str, Any]:
        """The same document as ``GET /_emulator/stats``."""
        return self._core.stats_payload()

    def wait(
        self, job_id: int, statuses: Iterable[str] = TERMINAL_STATES, timeout: float = 30.0
    ) -> dict:
        """Wait until ``job_id`` is in one of ``statuses``; returns its detail or raises."""
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job is not None and job["status"] in wanted:
                return job
            if time.monotonic() > deadline:
                state = None if job is None else job["status"]
                raise TimeoutError(f"job {job_id} is {state}, not in {sorted(wanted)}")
            time.sleep(0.02)
