"""Who is calling: bearer token -> username, the way the real server decides it.

The real server takes the second space-separated word of ``Authorization`` (the scheme word is
ignored), rejects a JWT whose ``exp`` has passed without checking the signature, and then asks the
identity provider for the username. The emulator has no identity provider, so the username comes
from the token itself: the JWT ``preferred_username`` (or ``sub``) claim, else a stable hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterable

from .oidc import IdentityProvider, make_jwt

#: job token lifetime beyond the job's own time (reference §1: 10 days + 2 x max_run_time)
JOB_TOKEN_BASE_SECONDS = 10 * 24 * 3600
#: walltime minutes assumed for a job without one (the worker's default limit)
DEFAULT_WALLTIME_MINUTES = 720


def jwt_claims(token: str) -> dict | None:
    """Decode the payload of a JWT without verifying it; ``None`` if ``token`` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def token_from_header(header: str | None) -> str | None:
    """The token of an ``Authorization`` header, or ``None`` (missing header, no second word)."""
    if header is None:
        return None
    words = header.split(" ")
    if len(words) < 2 or not words[1]:
        return None
    return words[1]


def username_for_token(token: str) -> str:
    """A username for ``token``: its JWT claim if it has one, else a stable hash of the token."""
    claims = jwt_claims(token) or {}
    for claim in ("preferred_username", "sub"):
        value = claims.get(claim)
        if isinstance(value, str | int) and str(value):
            return str(value)
    return "user-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def is_expired(token: str, now: float | None = None) -> bool:
    """True if ``token`` is a JWT whose ``exp`` is in the past (or not a number)."""
    claims = jwt_claims(token)
    if claims is None or "exp" not in claims:
        return False
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return True
    return (time.time() if now is None else now) > exp


class Authenticator:
    """Maps request headers to usernames; also issues the per-job tokens given to running jobs.

    Tokens are never logged or returned; the per-job tokens exist only in this object and in the
    environment of the job they belong to.
    """

    def __init__(
        self, tokens: Iterable[str] | None = None, idp: IdentityProvider | None = None
    ) -> None:
        self._allowed = None if tokens is None else frozenset(tokens)
        self._job_tokens: dict[str, str] = {}
        self._job_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self.idp = idp or IdentityProvider()
        #: requests answered 401 (tests use it to prove that a run never used a stale token)
        self.refused = 0

    def issue_job_token(self, username: str, walltime_minutes: float | None = None) -> str:
        """Create the token that authenticates as ``username`` (what ``PROMINENCE_TOKEN`` holds).

        As on the real server: an HS256 JWT with ``username``, ``groups`` and ``job`` claims,
        valid for 10 days + 2 x (3 x walltime), and not tied to the user's access token (so
        expiring the user's tokens does not revoke it).
        """
        minutes = walltime_minutes or DEFAULT_WALLTIME_MINUTES
        claims = {
            "username": username,
            "groups": "users",
            "job": secrets.token_hex(16),
            "exp": int(time.time() + JOB_TOKEN_BASE_SECONDS + 2 * minutes * 60 * 3),
        }
        token = make_jwt(claims, self._job_key)
        with self._lock:
            self._job_tokens[token] = username
        return token

    def username(self, header: str | None) -> str | None:
        """The caller's username, or ``None`` when the real server would answer 401."""
        user = self._username(header)
        if user is None:
            with self._lock:
                self.refused += 1
        return user

    def _username(self, header: str | None) -> str | None:
        token = token_from_header(header)
        if token is None:
            return None
        with self._lock:
            owner = self._job_tokens.get(token)
        if owner is not None:
            return None if is_expired(token) else owner
        claims = jwt_claims(token)
        if claims is not None and self.idp.is_revoked(claims):
            return None  # issued by our identity provider, then expired on demand
        issued_here = claims is not None and self.idp.signed_here(token)
        if self._allowed is not None and token not in self._allowed and not issued_here:
            return None
        if is_expired(token):
            return None
        return username_for_token(token)
