"""Fresh access tokens without the user: a token command, or the OAuth refresh-token grant.

PROMINENCE access tokens are OIDC tokens that expire after about an hour, and the official CLI
never renews them. A run that lasts days needs one of two things the user may already have:

* a **token command** that prints a fresh access token, e.g. ``oidc-token egi`` from
  oidc-agent (:class:`TokenCommand`);
* a **refresh token** in the token file (``prominence login`` saves the identity provider's
  whole answer, refresh token included) plus the client id and secret it was issued to, for the
  refresh-token grant against the provider's token endpoint (:class:`RefreshGrant`). The renewed
  answer is written back to the token file atomically with mode 0600, so the user's own CLI
  benefits too, and a rotated refresh token is kept.

Nothing here ever puts a token, a refresh token or a client secret into a message: errors name
what failed and how to fix it, and what a command printed is only quoted once anything that could
be a credential has been blanked out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_CLIENT_FILE = Path("~/.prominence/client")
COMMAND_TIMEOUT_SECONDS = 60.0
ENDPOINT_TIMEOUT = (10.0, 60.0)

#: Long runs of token-ish characters (JWTs, opaque tokens, secrets) in a command's output.
_CREDENTIAL_LIKE = re.compile(r"[A-Za-z0-9_\-.~+/=]{20,}")


class RenewalError(Exception):
    """Renewal failed; the message is safe to print and says what to do."""


class Renewer(Protocol):
    """A way to get a fresh access token."""

    description: str

    def renew(self) -> str:
        """A fresh access token, or :class:`RenewalError`."""
        ...

    def secrets(self) -> list[str]:
        """Values of its own that must never be written anywhere (for redaction)."""
        ...


def redact_output(text: str, limit: int = 200) -> str:
    """The first non-empty line of ``text`` with anything credential-like blanked out."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            line = _CREDENTIAL_LIKE.sub("<redacted>", line)
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


@dataclass(repr=False)
class TokenCommand:
    """Runs a command (no shell) and takes its standard output as the access token.

    The output may be the bare token (``oidc-token``) or a token-endpoint JSON answer with an
    ``access_token``.
    """

    command: str
    timeout: float = COMMAND_TIMEOUT_SECONDS
    description: str = field(init=False)

    def __post_init__(self) -> None:
        try:
            self._argv = shlex.split(self.command)
        except ValueError as e:
            raise RenewalError(f"--prominence-token-command cannot be parsed: {e}") from None
        if not self._argv:
            raise RenewalError("--prominence-token-command is empty")
        self.description = f"the token command `{self._argv[0]}`"

    def __repr__(self) -> str:
        return f"TokenCommand({self._argv[0]!r}, ...)"

    def secrets(self) -> list[str]:
        return []

    def renew(self) -> str:
        try:
            done = subprocess.run(
                self._argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise RenewalError(
                f"{self.description} was not found: check --prominence-token-command and your PATH"
            ) from None
        except subprocess.TimeoutExpired:
            raise RenewalError(
                f"{self.description} did not finish within {self.timeout:.0f} s"
            ) from None
        except OSError as e:
            raise RenewalError(f"{self.description} could not be run: {e.strerror}") from None
        if done.returncode != 0:
            said = redact_output(done.stderr) or redact_output(done.stdout)
            raise RenewalError(
                f"{self.description} failed with exit status {done.returncode}"
                + (f": {said}" if said else "")
            )
        token = _token_from_output(done.stdout)
        if not token:
            raise RenewalError(f"{self.description} printed no token")
        return token


def _token_from_output(output: str) -> str:
    text = output.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text if text and not any(c.isspace() for c in text) else ""
    if isinstance(parsed, dict) and isinstance(parsed.get("access_token"), str):
        return parsed["access_token"].strip()
    return ""


@dataclass(frozen=True, repr=False)
class ClientCredentials:
    """The OAuth client the refresh token was issued to. Never printable."""

    client_id: str
    client_secret: str
    source: str

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, source={self.source!r})"


def find_client_credentials(
    client_id: str | None,
    client_secret: str | None,
    environ: Mapping[str, str],
    client_file: Path = DEFAULT_CLIENT_FILE,
) -> ClientCredentials | None:
    """Settings first, then ``PROMINENCE_OIDC_CLIENT_ID``/``_SECRET`` (as the official CLI
    reads them), then the CLI's ``~/.prominence/client``; None when none has both."""
    if client_id and client_secret:
        return ClientCredentials(client_id, client_secret, "the plugin settings")
    env_id = environ.get("PROMINENCE_OIDC_CLIENT_ID", "").strip()
    env_secret = environ.get("PROMINENCE_OIDC_CLIENT_SECRET", "").strip()
    if env_id and env_secret:
        return ClientCredentials(env_id, env_secret, "PROMINENCE_OIDC_CLIENT_ID/_SECRET")
    path = client_file.expanduser()
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(content, dict):
        file_id, file_secret = content.get("client_id"), content.get("client_secret")
        if isinstance(file_id, str) and isinstance(file_secret, str) and file_id and file_secret:
            return ClientCredentials(file_id, file_secret, f"the client file {path}")
    return None


def token_endpoint(setting: str | None, environ: Mapping[str, str]) -> str | None:
    """The setting, else ``PROMINENCE_OIDC_URL`` + ``/token`` (as the official CLI builds it)."""
    if setting and setting.strip():
        return setting.strip()
    issuer = environ.get("PROMINENCE_OIDC_URL", "").strip().rstrip("/")
    return f"{issuer}/token" if issuer else None


def check_endpoint(url: str, is_loopback: Any) -> str:
    """Refuse to send a refresh token and client secret over plain HTTP except to loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RenewalError(f"The token endpoint {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise RenewalError(
            f"Refusing to send the refresh token over plain HTTP to {parts.hostname}: use "
            "https:// for the token endpoint"
        )
    return url


class RefreshGrant:
    """The refresh-token grant (RFC 6749 §6) with HTTP Basic client authentication."""

    def __init__(
        self,
        token_file: Path,
        endpoint: str,
        credentials: ClientCredentials,
        *,
        verify: bool | str = True,
        timeout: tuple[float, float] = ENDPOINT_TIMEOUT,
    ) -> None:
        self.token_file = token_file
        self.endpoint = endpoint
        self._credentials = credentials
        self._timeout = timeout
        self._session = requests.Session()
        self._session.verify = verify
        # Only failures before the request was sent are retried: a refresh token may be
        # single-use, and a request that reached the provider may already have rotated it.
        retry = Retry(total=3, connect=3, read=0, status=0, other=0, backoff_factor=0.5)
        self._session.mount("http://", HTTPAdapter(max_retries=retry))
        self._session.mount("https://", HTTPAdapter(max_retries=retry))
        self.description = f"the refresh token in {token_file} (token endpoint {endpoint})"

    def __repr__(self) -> str:
        return f"RefreshGrant(endpoint={self.endpoint!r})"

    def secrets(self) -> list[str]:
        saved = _read_json(self.token_file)
        refresh = saved.get("refresh_token") if saved else None
        return [self._credentials.client_secret] + ([refresh] if isinstance(refresh, str) else [])

    def renew(self) -> str:
        saved = _read_json(self.token_file)
        refresh = saved.get("refresh_token") if saved else None
        if not isinstance(refresh, str) or not refresh.strip():
            raise RenewalError(
                f"The token file {self.token_file} holds no refresh_token to renew with"
            )
        try:
            response = self._session.post(
                self.endpoint,
                data={"grant_type": "refresh_token", "refresh_token": refresh.strip()},
                auth=(self._credentials.client_id, self._credentials.client_secret),
                timeout=self._timeout,
            )
        except requests.RequestException as e:
            raise RenewalError(
                f"No answer from the token endpoint {self.endpoint}: {type(e).__name__}"
            ) from None
        answer = _json_or_none(response)
        if response.status_code != 200 or not isinstance(answer, dict):
            raise RenewalError(self._refusal(response.status_code, answer))
        access = answer.get("access_token")
        if not isinstance(access, str) or not access.strip():
            raise RenewalError(f"The token endpoint {self.endpoint} answered without a token")
        # Keep what the provider did not send again (e.g. an unrotated refresh token).
        write_token_file(self.token_file, {**saved, **answer})
        return access.strip()

    def _refusal(self, status: int, answer: Any) -> str:
        text = f"The token endpoint {self.endpoint} refused to renew the token (HTTP {status}"
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            text += f": {redact_output(answer['error'])}"
            description = answer.get("error_description")
            if isinstance(description, str) and description.strip():
                text += f", {redact_output(description)}"
        text += ")"
        if isinstance(answer, dict) and answer.get("error") == "invalid_client":
            text += f"; check the client id and secret from {self._credentials.source}"
        elif isinstance(answer, dict) and answer.get("error") == "invalid_grant":
            text += "; the refresh token has expired or was revoked: run `prominence login`"
        return text


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def write_token_file(path: Path, content: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically with ``content`` as JSON, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(dict(content), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
