"""Where the PROMINENCE token comes from, and whether it is still valid.

The token is a bearer credential with full control over the user's jobs, so it is held in a
:class:`Token` whose ``repr``/``str`` never show it. Sources, in order (as the official CLI
does): the plugin setting (``--prominence-token`` / ``SNAKEMAKE_PROMINENCE_TOKEN``), the
``PROMINENCE_TOKEN`` environment variable, then the token file written by ``prominence login``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from snakemake_executor_plugin_prominence.service.renewal import RenewalError, Renewer

DEFAULT_TOKEN_FILE = Path("~/.prominence/token")
EXPIRY_WARNING_SECONDS = 3600
RENEW_AHEAD_SECONDS = 300.0
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

    @functools.cached_property
    def expires_at(self) -> float | None:
        """The JWT ``exp`` claim (epoch seconds), or None for a token that is not a JWT.
        Decoded once: it is consulted before every request."""
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
    """The token to send now: resolved once, renewed ahead of its expiry, replaced when refused.

    Static sources (setting, ``PROMINENCE_TOKEN``, token file) are read in that order, a source
    whose JWT has expired giving way to the next one that has not. With a token command, the
    command is the only source. ``renewers`` (the token command, the refresh-token grant) are
    asked for a fresh token when the current one is about to expire (a quarter of its lifetime,
    at most five minutes, ahead) and when the server refuses it. A failed renewal is not retried
    for ``retry_seconds``, so a refused token cannot make every request run a command.
    """

    def __init__(
        self,
        explicit: str | None = None,
        token_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        command: Renewer | None = None,
        renewers: Sequence[Renewer] = (),
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = 30.0,
    ) -> None:
        self._explicit = explicit.strip() if explicit else None
        self._file = (token_file or DEFAULT_TOKEN_FILE).expanduser()
        self._environ = os.environ if environ is None else environ
        self._command = command
        self._renewers = ([command] if command else []) + [r for r in renewers if r is not command]
        self._warn = warn
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._margin = 0.0
        self._failed_at: float | None = None
        self._renewals = 0
        self._used: list[str] = []
        #: why the last renewal failed (safe to print), or "" after a success
        self.last_renewal_error = ""

    def __repr__(self) -> str:
        return f"TokenProvider(token_file={str(self._file)!r})"

    @property
    def token_file(self) -> Path:
        return self._file

    @property
    def renewals(self) -> int:
        """How many times a renewer produced a new token."""
        return self._renewals

    def renewal_sources(self) -> list[str]:
        """What can renew the token, in words (empty: nothing can)."""
        return [renewer.description for renewer in self._renewers]

    def secret_values(self) -> list[str]:
        """Every token handed out so far, and the renewers' own secrets: never to be written."""
        with self._lock:
            values = list(self._used)
        for renewer in self._renewers:
            values.extend(renewer.secrets())
        return values

    def current(self) -> Token:
        """The token to send; renews it first when it is about to expire."""
        with self._lock:
            if self._token is None:
                self._set(self._initial())
            elif self._expiring(self._token):
                self._renew(ahead=True)
            assert self._token is not None
            return self._token

    def after_refusal(self, sent: str) -> Token | None:
        """PROMINENCE refused ``sent``: a different token to try, or None when there is none.

        Another thread may already have replaced it; else the sources are read again (the user
        may have run ``prominence login``), and else a renewal is tried.
        """
        with self._lock:
            if self._token is not None and self._token.value != sent:
                return self._token
            if self._command is None:
                try:
                    fresh = self._read_static()
                except TokenError:
                    fresh = None
                if fresh is not None and fresh.value != sent and not _expired(fresh):
                    self._set(fresh)
                    return fresh
            renewed = self._renew(ahead=False)
            return renewed if renewed is not None and renewed.value != sent else None

    # --- internals (called with the lock held) ---------------------------------------

    def _set(self, token: Token) -> None:
        self._token = token
        if token.value not in self._used:
            self._used.append(token.value)
        left = token.seconds_left(self._clock())
        # Renew when a quarter of the lifetime it had on arrival is left, at most 5 min ahead.
        self._margin = 0.0 if left is None or left <= 0 else min(RENEW_AHEAD_SECONDS, left / 4)

    def _expiring(self, token: Token) -> bool:
        left = token.seconds_left(self._clock())
        return left is not None and left <= self._margin

    def _initial(self) -> Token:
        if self._command is not None:
            renewed = self._renew(ahead=False, force=True)
            if renewed is None:
                raise TokenError(f"Could not get a PROMINENCE token: {self.last_renewal_error}.")
            return renewed
        token = self._read_static()
        if _expired(token) and self._renewers:
            renewed = self._renew(ahead=False, force=True)
            if renewed is not None:
                return renewed
        return token

    def _renew(self, *, ahead: bool, force: bool = False) -> Token | None:
        """Ask each renewer in turn; the new token (also made current), or None."""
        now = self._clock()
        if (
            not force
            and self._failed_at is not None
            and now - self._failed_at < self._retry_seconds
        ):
            return None
        if not self._renewers:
            return None
        errors = []
        for renewer in self._renewers:
            try:
                value = renewer.renew()
            except RenewalError as e:
                errors.append(str(e))
                continue
            token = Token(value, f"{renewer.description} (renewed)")
            self._failed_at = None
            self.last_renewal_error = ""
            self._renewals += 1
            self._set(token)
            return token
        self._failed_at = now
        self.last_renewal_error = "; ".join(errors)
        if ahead:
            self._warn(
                "Could not renew the PROMINENCE token before it expires: "
                f"{self.last_renewal_error}. Will try again in {self._retry_seconds:.0f} s."
            )
        return None

    def _read_static(self) -> Token:
        """Setting, then PROMINENCE_TOKEN, then the token file; an expired JWT gives way to the
        next source that holds a valid token."""
        found = []
        if self._explicit:
            if self._environ.get("SNAKEMAKE_PROMINENCE_TOKEN", "").strip() == self._explicit:
                source = "the SNAKEMAKE_PROMINENCE_TOKEN environment variable"
            else:
                source = SETTING_SOURCE
            found.append(Token(self._explicit, source))
        env_token = self._environ.get("PROMINENCE_TOKEN", "").strip()
        if env_token:
            found.append(Token(env_token, "the PROMINENCE_TOKEN environment variable"))
        if self._file.is_file():
            try:
                value = read_token_file(self._file)
            except OSError as e:
                if not found:
                    raise TokenError(
                        f"Cannot read the token file {self._file}: {e.strerror}."
                    ) from None
                value = ""
            if value:
                found.append(Token(value, f"the token file {self._file}"))
        if not found:
            raise TokenError(
                "No PROMINENCE token found: set --prominence-token (or "
                "SNAKEMAKE_PROMINENCE_TOKEN), or PROMINENCE_TOKEN, or write the token to "
                f"{self._file} (`prominence login` does), or set --prominence-token-command."
            )
        return next((token for token in found if not _expired(token)), found[0])


def _expired(token: Token) -> bool:
    left = token.seconds_left()
    return left is not None and left <= 0


def check_not_expired(token: Token, now: float | None = None, renewal_error: str = "") -> None:
    """Stop before anything is submitted when the token cannot work: it is not a JWT with an
    ``exp`` claim (PROMINENCE reads a missing ``exp`` as 0, so it refuses every such token), or
    its ``exp`` has passed (and renewing it, where possible, failed: ``renewal_error`` says
    why). The message names the token's source, never the token."""
    if token.expires_at is None:
        raise TokenError(
            f"The PROMINENCE token from {token.source} is not a JWT access token with an expiry "
            "(an `exp` claim): PROMINENCE only accepts such tokens and refuses every other one "
            f"(401 Authentication failure), so nothing was submitted. {NEW_TOKEN_HINT}"
        )
    left = token.seconds_left(now)
    if left is not None and left <= 0:
        when = _utc(token.expires_at)
        why = f" Renewing it failed: {renewal_error}." if renewal_error else ""
        raise TokenError(
            f"The PROMINENCE token from {token.source} expired at {when}.{why} {NEW_TOKEN_HINT}"
        )


def _utc(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch or 0))


def token_warnings(
    token: Token,
    token_file: Path,
    now: float | None = None,
    *,
    renewal: Sequence[str] = (),
    horizon_seconds: float = EXPIRY_WARNING_SECONDS,
) -> list[str]:
    """What to tell the user about a usable token: it expires within ``horizon_seconds`` and
    nothing can renew it (``renewal`` lists what can), or its file is readable by others."""
    warnings = []
    left = token.seconds_left(now)
    if left is not None and left < horizon_seconds and not renewal:
        warnings.append(
            f"The PROMINENCE token from {token.source} expires at {_utc(token.expires_at)} "
            f"(in {left / 60:.0f} minutes) and nothing can renew it (no "
            "--prominence-token-command, and no refresh token with client credentials). When "
            "it expires the run pauses: its jobs keep running and are tracked again, and new "
            "jobs are submitted, as soon as a valid token appears (run `prominence login`). "
            "For unattended runs, set up renewal (docs/further.md, 'Tokens and long runs')."
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
