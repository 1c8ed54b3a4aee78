"""WSGI middleware in front of the API: request statistics, latency and transient faults.

It plays the part of the network and the reverse proxy in front of the real server: every
request is counted by route, delayed by ``latency`` seconds, and a reproducible fraction
(``fault_rate``, drawn from ``random.Random(seed)``) is answered with an HTML 502/503 page or a
closed connection. For ``POST /jobs`` the worst case is also produced: the job is created and
then the answer is lost, which is how duplicate submissions happen in real life.

Paths under ``/_emulator/`` are the emulator's own inspection routes: never delayed, faulted or
counted.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wsgi import get_input_stream

log = logging.getLogger(__name__)

StartResponse = Callable[..., object]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]

INTERNAL_PREFIX = "/_emulator/"
PLAIN_FAULTS = ("http_502", "http_503", "drop")
SUBMIT_FAULTS = (*PLAIN_FAULTS, "lost_response_502", "lost_response_drop")

_PAGES = {
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def fault_page(code: int) -> bytes:
    """A small HTML error page like the one a reverse proxy sends for an upstream failure."""
    title = f"{code} {_PAGES[code]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>proxy</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


class RequestStats:
    """Counters for ``/_emulator/stats``: requests per route template, faults per kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()

    def count_request(self, key: str) -> None:
        with self._lock:
            self._requests[key] += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": dict(sorted(self._requests.items())),
                "total_requests": sum(self._requests.values()),
                "faults": dict(sorted(self._faults.items())),
                "total_faults": sum(n for kind, n in self._faults.items() if kind in SUBMIT_FAULTS),
            }


def route_key(url_map: Map, prefix: str, environ: dict) -> str:
    """``"<METHOD> <route template without prefix>"``, e.g. ``"GET /jobs/<id>/stdout"``."""
    method = environ.get("REQUEST_METHOD", "GET")
    try:
        rule, _args = url_map.bind_to_environ(environ).match(return_rule=True)
    except HTTPException:
        return f"{method} <unmatched>"
    template = rule.rule
    if prefix and template.startswith(prefix):
        template = template[len(prefix) :] or "/"
    return f"{method} {re.sub(r'<[^>]+>', '<id>', template)}"


def _drop_connection(environ: dict, drain: bool) -> None:
    """Close the client's connection without any HTTP answer.

    Werkzeug's development server exposes the socket as ``werkzeug.socket``; shutting it down and
    raising a ``ConnectionError`` makes the server treat the request as a dropped connection
    (nothing is written, nothing is logged). The client sees the connection closed while it waits
    for the answer.
    """
    if drain:
        # Read the unread body first: bytes left in the server's buffer would otherwise be
        # parsed as the next request on this connection.
        stream = get_input_stream(environ)
        while stream.read(65536):
            pass
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("emulated dropped connection")


class FaultMiddleware:
    """Wraps the Flask WSGI app; see the module docstring."""

    def __init__(
        self,
        app: WSGIApp,
        stats: RequestStats,
        route: Callable[[dict], str],
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.app = app
        self.stats = stats
        self.route = route
        self.latency = latency
        self.fault_rate = fault_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _draw(self, key: str) -> str | None:
        if self.fault_rate <= 0:
            return None
        kinds = SUBMIT_FAULTS if key == "POST /jobs" else PLAIN_FAULTS
        with self._lock:
            if self._random.random() >= self.fault_rate:
                return None
            return self._random.choice(kinds)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(INTERNAL_PREFIX):
            return self.app(environ, start_response)
        key = self.route(environ)
        self.stats.count_request(key)
        if self.latency > 0:
            time.sleep(self.latency)
        kind = self._draw(key)
        if kind is None:
            return self.app(environ, start_response)
        self.stats.count_fault(kind)
        log.debug("injecting fault %s into %s", kind, key)
        lost = kind.startswith("lost_response")
        if lost:
            self._run_and_discard(environ)
        if kind.endswith("drop"):
            _drop_connection(environ, drain=not lost)
        code = 503 if kind == "http_503" else 502
        body = fault_page(code)
        start_response(
            f"{code} {_PAGES[code]}",
            [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _run_and_discard(self, environ: dict) -> None:
        """Let the app handle the request (the job is created) and throw its answer away."""
        answer: list[str] = []

        def capture(status: str, headers: list, exc_info: object = None) -> Callable:
            answer.append(status)
            return lambda data: None

        result = self.app(environ, capture)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if answer and answer[0].startswith("201"):
            self.stats.count_fault("lost_created_jobs")
