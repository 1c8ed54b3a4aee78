"""A small client for the PROMINENCE REST API.

One pooled ``requests.Session``; idempotent calls (GET, DELETE) are retried by urllib3's
``Retry`` with exponential backoff, jitter and ``Retry-After``. ``POST /jobs`` is never
retried once the request may have reached the server (that could create a job twice); the
caller decides what to do about an unanswered submission. Every failure becomes a
:class:`ProminenceError` that carries the server's own message, never a JSON traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from snakemake_executor_plugin_prominence.service.auth import TokenError, TokenProvider

RETRY_STATUSES = (429, 502, 503, 504)
NO_SUCH_JOBS = "No such job(s)"
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read: the real API is known to be slow
#: the EGI/EOSC service's base URL, as its documentation gives it (shown in error messages)
EXAMPLE_BASE_URL = "https://eosc.prominence.cloud/api/v1"

try:
    _VERSION = version("snakemake-executor-plugin-prominence")
except PackageNotFoundError:  # running from a source tree
    _VERSION = "dev"
USER_AGENT = f"snakemake-executor-plugin-prominence/{_VERSION}"


class ProminenceError(Exception):
    """A call to PROMINENCE failed. ``status`` is the HTTP status, None without an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(ProminenceError):
    """401: the token is missing, expired or unknown to the server."""


class WrongURL(ProminenceError):
    """404: no PROMINENCE endpoint at this address. The real server answers every jobs path
    it has (an unknown job id too) with JSON, so a 404 means the base URL is wrong."""


class ServiceUnavailable(ProminenceError):
    """No usable answer (connection failure, timeout, 5xx): the call may be tried again."""


class RequestRejected(ProminenceError):
    """The server understood the request and refused it (4xx); retrying will not help."""


class ServerError(ProminenceError):
    """The server failed on this request (500): a bug or a request it cannot handle."""


def check_base_url(url: str) -> str:
    """Normalise the base URL and refuse plain HTTP to anything but loopback.

    A bearer token sent over plain HTTP travels in clear; on loopback it never leaves
    the machine (the local emulator).
    """
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"The PROMINENCE URL {url!r} is not an http(s) URL; expected e.g. "
            "https://eosc.prominence.cloud/api/v1"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            f"Refusing to send the PROMINENCE token over plain HTTP to {parts.hostname}: "
            "use https:// (plain http:// is only allowed to a loopback address)"
        )
    return url


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (where plain HTTP is acceptable)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _BearerAuth(requests.auth.AuthBase):
    """Adds the current token at send time, so a refreshed token file is picked up."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._provider.current().value}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


def _retry_policy(attempts: int, backoff: float) -> Retry:
    return Retry(
        total=attempts,
        connect=attempts,
        read=attempts,
        status=attempts,
        other=0,
        backoff_factor=backoff,
        backoff_max=30,
        backoff_jitter=backoff,
        status_forcelist=RETRY_STATUSES,
        # POST is left out: urllib3 then retries it only on errors raised before the
        # request was sent, which cannot have created a job.
        allowed_methods=frozenset({"GET", "DELETE"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class ProminenceClient:
    """The calls the executor needs, each one HTTP request (plus transparent retries)."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        verify: bool | Path = True,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = 5,
        backoff: float = 0.5,
        pool_size: int = 16,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.tokens = tokens
        self._timeout = timeout
        self._session = requests.Session()
        self._session.auth = _BearerAuth(tokens)
        self._session.headers["User-Agent"] = USER_AGENT
        # Proxies and CA bundle from the environment are read once here rather than on every
        # request (requests re-scans os.environ per call: most of a request's CPU time).
        self._session.trust_env = False
        self._session.proxies = requests.utils.get_environ_proxies(self.base_url)
        self._session.verify = _verify_setting(verify)
        adapter = HTTPAdapter(
            max_retries=_retry_policy(attempts, backoff),
            pool_connections=pool_size,
            pool_maxsize=pool_size,
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"ProminenceClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    # --- jobs ----------------------------------------------------------------------

    def create_job(self, description: dict[str, Any]) -> int:
        """``POST /jobs``; returns the new job id."""
        body = self._json(self._request("POST", "/jobs", json=description))
        job_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise ProminenceError(f"PROMINENCE accepted the job but returned no job id: {body!r}")
        return job_id

    def list_jobs(self, ids: Sequence[int], *, detail: bool = False) -> list[dict[str, Any]]:
        """``GET /jobs?id=a,b,c``: these jobs, active or finished; with ``detail``, in the
        detailed form of ``GET /jobs/<id>`` (exit codes, resources, ...).

        Unknown ids are silently left out by the server.
        """
        if not ids:
            return []
        params = {"id": _id_list(ids)}
        if detail:
            params["detail"] = "true"  # the server only looks at the parameter's presence
        return self._job_list(self._request("GET", "/jobs", params=params))

    def find_jobs(
        self, constraint: str, *, include_finished: bool = False, detail: bool = False
    ) -> list[dict[str, Any]]:
        """``GET /jobs?constraint=key=value``: the caller's jobs carrying that label (with
        ``detail``, in the detailed form, labels included)."""
        params: dict[str, str] = {"constraint": constraint}
        if include_finished:
            params["all"] = "true"
        if detail:
            params["detail"] = "true"
        return self._job_list(self._request("GET", "/jobs", params=params))

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        """``GET /jobs/<id>``: the detailed job, or None when the server does not know it."""
        jobs = self._job_list(self._request("GET", f"/jobs/{int(job_id)}"))
        return jobs[0] if jobs else None

    def delete_jobs(self, ids: Sequence[int]) -> bool:
        """``DELETE /jobs?id=...``. False when none of them was still queued or running."""
        if not ids:
            return False
        try:
            self._request("DELETE", "/jobs", params={"id": _id_list(ids)})
        except RequestRejected as e:
            if str(e) == NO_SUCH_JOBS:
                return False
            raise
        return True

    def read_output(self, job_id: int, stream: str, offset: int = 0) -> bytes:
        """The job's ``stdout`` or ``stderr`` from byte ``offset`` (empty before it starts)."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
        params = {"offset": str(offset)} if offset else None
        return self._request("GET", f"/jobs/{int(job_id)}/{stream}", params=params).content

    # --- plumbing ------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self._token_was_refreshed(response):
            # Renewed, or refreshed by the user in another terminal: try once more.
            response = self._send(method, path, **kwargs)
        if response.status_code < 400:
            return response
        message = _error_message(response)
        if response.status_code == 401:
            raise AuthenticationError(
                f"PROMINENCE rejected the token from {self.tokens.current().source} "
                f"({response.status_code} {message})",
                response.status_code,
            )
        if response.status_code == 404:
            raise WrongURL(
                f"{self.base_url} is not a PROMINENCE API: {method} {self.base_url}{path} answered "
                f"404 Not Found. Set --prominence-url (or PROMINENCE_URL) to the API's base URL, "
                f"the one the prominence command uses, e.g. {EXAMPLE_BASE_URL}",
                response.status_code,
            )
        if response.status_code in RETRY_STATUSES:
            raise ServiceUnavailable(
                f"PROMINENCE answered {response.status_code} ({method} {path}): {message}",
                response.status_code,
            )
        if response.status_code >= 500:
            raise ServerError(
                f"PROMINENCE failed with {response.status_code} ({method} {path}): {message}",
                response.status_code,
            )
        raise RequestRejected(message, response.status_code)

    def _token_was_refreshed(self, response: requests.Response) -> bool:
        """After a 401: True when another token than the one sent is now available (the token
        file was refreshed, or a renewer produced one)."""
        sent = response.request.headers.get("Authorization", "").partition(" ")[2]
        try:
            return self.tokens.after_refusal(sent) is not None
        except TokenError:
            return False

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(
                method, self.base_url + path, timeout=self._timeout, **kwargs
            )
        except requests.exceptions.RetryError as e:
            raise ServiceUnavailable(
                f"PROMINENCE kept failing ({method} {path}): {_reason(e)}"
            ) from None
        except requests.exceptions.RequestException as e:
            raise ServiceUnavailable(
                f"No answer from PROMINENCE ({method} {path}): {_reason(e)}"
            ) from None

    @staticmethod
    def _json(response: requests.Response) -> Any:
        if not response.content.strip():
            return {}
        try:
            return response.json()
        except ValueError:
            raise ProminenceError(
                f"PROMINENCE answered {response.status_code} with a body that is not JSON: "
                f"{_excerpt(response.text)}",
                response.status_code,
            ) from None

    def _job_list(self, response: requests.Response) -> list[dict[str, Any]]:
        body = self._json(response)
        if isinstance(body, dict) and "error" in body:
            # The server answers some bad queries with 200 {"error": ...}.
            raise RequestRejected(str(body["error"]), response.status_code)
        if not isinstance(body, list) or not all(isinstance(job, dict) for job in body):
            raise ProminenceError(
                f"PROMINENCE returned an unexpected job list: {_excerpt(str(body))}"
            )
        return body


def _verify_setting(verify: bool | Path) -> bool | str:
    """An explicit CA bundle, else the one requests would take from the environment."""
    if isinstance(verify, Path):
        return str(verify)
    if verify:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return False


def _id_list(ids: Iterable[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _excerpt(text: str, limit: int = 160) -> str:
    """A short, single-line, tag-free excerpt of an answer body (HTML error pages)."""
    flat = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _error_message(response: requests.Response) -> str:
    """The server's ``{"error": ...}`` text, else a short excerpt of whatever came back."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {_excerpt(response.text)}"
    if isinstance(body, dict):
        for key in ("error", "detail", "errors"):
            if key in body:
                return str(body[key])
    return f"HTTP {response.status_code}: {_excerpt(str(body))}"


def _reason(error: Exception) -> str:
    """The innermost cause of a requests/urllib3 error, without the URL's query string."""
    text = str(error)
    reason = getattr(error, "args", [None])[0]
    inner = getattr(reason, "reason", None)
    if inner is not None:
        text = str(inner)
    return _excerpt(text, 200)
