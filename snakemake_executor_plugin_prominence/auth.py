"""Where the PROMINENCE token comes from, and whether it is still valid.

The token is a bearer credential with full control over the user's jobs, so it is held in a
:class:`Token` whose ``repr``/``str`` never show it. Sources, in order (as the official CLI
does): the plugin setting (``--prominence-token`` / ``SNAKEMAKE_PROMINENCE_TOKEN``), the
``PROMINENCE_TOKEN`` environment variable, then the token file written by ``prominence login``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOKEN_FILE = Path("~/.prominence/token")
EXPIRY_WARNING_SECONDS = 3600
SETTING_SOURCE = "--prominence-token (command line or profile)"
NEW_TOKEN_HINT = (
    "Get a new one with `prominence login` (or your site's token refresh command) and "
    "save it to the token file, or set PROMINENCE_TOKEN."
)


class TokenError(Exception):
    """No usable token; the message says where we looked and what to do."""


@dataclass(frozen=True, repr=False)
class Token:
    """A bearer token plus where it came from. Never printable."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, value=<hidden>)"

    __str__ = __repr__

    @property
    def expires_at(self) -> float | None:
        """The JWT ``exp`` claim (epoch seconds), or None for a token that is not a JWT."""
        return jwt_expiry(self.value)

    def seconds_left(self, now: float | None = None) -> float | None:
        expiry = self.expires_at
        if expiry is None:
            return None
        return expiry - (time.time() if now is None else now)


def jwt_expiry(token: str) -> float | None:
    """Read ``exp`` from a JWT payload without verifying it (as the server does first)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def read_token_file(path: Path) -> str:
    """The ``access_token`` of the JSON file, or the whole (stripped) file if it is not JSON."""
    text = path.read_text(encoding="utf-8").strip()
    try:
        content = json.loads(text)
    except ValueError:
        return text
    if isinstance(content, dict):
        token = content.get("access_token")
        if not isinstance(token, str) or not token.strip():
            raise TokenError(f"The token file {path} does not contain an access_token.")
        return token.strip()
    if isinstance(content, str):
        return content.strip()
    raise TokenError(
        f"The token file {path} holds neither a token nor the JSON of `prominence login`."
    )


def token_file_is_private(path: Path) -> bool:
    """False when group or others may read the file (the official CLI refuses such files)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return not mode & (stat.S_IRWXG | stat.S_IRWXO)


class TokenProvider:
    """Resolves the token once, and again on demand (the file may be refreshed mid-run)."""

    def __init__(
        self,
        explicit: str | None = None,
        token_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._explicit = explicit.strip() if explicit else None
        self._file = (token_file or DEFAULT_TOKEN_FILE).expanduser()
        self._environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._token: Token | None = None

    def __repr__(self) -> str:
        return f"TokenProvider(token_file={str(self._file)!r})"

    @property
    def token_file(self) -> Path:
        return self._file

    def current(self) -> Token:
        with self._lock:
            if self._token is None:
                self._token = self._resolve()
            return self._token

    def reload(self) -> Token:
        """Read the sources again; returns the (possibly unchanged) token."""
        with self._lock:
            self._token = self._resolve()
            return self._token

    def _resolve(self) -> Token:
        if self._explicit:
            if self._environ.get("SNAKEMAKE_PROMINENCE_TOKEN", "").strip() == self._explicit:
                return Token(self._explicit, "the SNAKEMAKE_PROMINENCE_TOKEN environment variable")
            return Token(self._explicit, SETTING_SOURCE)
        env_token = self._environ.get("PROMINENCE_TOKEN", "").strip()
        if env_token:
            return Token(env_token, "the PROMINENCE_TOKEN environment variable")
        if self._file.is_file():
            try:
                value = read_token_file(self._file)
            except OSError as e:
                raise TokenError(
                    f"Cannot read the token file {self._file}: {e.strerror}."
                ) from None
            if value:
                return Token(value, f"the token file {self._file}")
        raise TokenError(
            "No PROMINENCE token found: set --prominence-token (or SNAKEMAKE_PROMINENCE_TOKEN), "
            f"or PROMINENCE_TOKEN, or write the token to {self._file} (`prominence login` does)."
        )


def check_not_expired(token: Token, now: float | None = None) -> None:
    """Stop before anything is submitted when a JWT has already expired."""
    left = token.seconds_left(now)
    if left is not None and left <= 0:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(token.expires_at))
        raise TokenError(
            f"The PROMINENCE token from {token.source} expired at {when}. {NEW_TOKEN_HINT}"
        )


def token_warnings(token: Token, token_file: Path, now: float | None = None) -> list[str]:
    """What to tell the user about a usable token: it expires soon, or its file is readable
    by others."""
    warnings = []
    left = token.seconds_left(now)
    if left is not None and left < EXPIRY_WARNING_SECONDS:
        warnings.append(
            f"The PROMINENCE token from {token.source} expires in {left / 60:.0f} minutes. "
            "When it does, the plugin re-reads it once; refresh it in time "
            f"({NEW_TOKEN_HINT})"
        )
    if token.source == SETTING_SOURCE:
        warnings.append(
            "The PROMINENCE token was given with --prominence-token: it is now in your shell "
            "history or profile, and in Snakemake's record of the command line under "
            ".snakemake/log/. Prefer PROMINENCE_TOKEN or the token file."
        )
    if token.source.startswith("the token file") and not token_file_is_private(token_file):
        warnings.append(
            f"The token file {token_file} is readable by other users; "
            f"protect it with `chmod 600 {token_file}`."
        )
    return warnings
