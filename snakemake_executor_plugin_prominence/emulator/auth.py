"""Who is calling: bearer token -> identity, the way the real server decides it.

The real server takes the second space-separated word of ``Authorization`` (the scheme word is
ignored) and reads the token's JWT ``exp`` without checking the signature: a token that is not a
JWT, or has no ``exp``, counts as expired since 1970 (``exp`` defaults to 0), so it is always
refused. Then it asks the identity provider for the username. The emulator has no identity
provider of the user's, so the username comes from the token itself: the JWT
``preferred_username`` (or ``sub``) claim, else a stable hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .oidc import IdentityProvider, make_jwt

#: job token lifetime beyond the job's own time (reference §1: 10 days + 2 x max_run_time)
JOB_TOKEN_BASE_SECONDS = 10 * 24 * 3600
#: walltime minutes assumed for a job without one (the worker's default limit)
DEFAULT_WALLTIME_MINUTES = 720

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Identity:
    """The caller as the server knows it: username, groups and e-mail (``None`` if unknown)."""

    name: str
    groups: str | None = None
    email: str | None = None


def _segment(text: str) -> bytes:
    if not _SEGMENT_RE.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def jwt_claims(token: str) -> dict | None:
    """The payload of a JWT, read without verifying it; ``None`` if ``token`` is not a JWT
    (three base64url segments, a JSON object as header and as payload)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_segment(parts[0]))
        claims = json.loads(_segment(parts[1]))
        _segment(parts[2])
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return claims


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


def expiry(token: str) -> Any:
    """The ``exp`` claim as the server reads it: 0 for a token that is not a JWT or has none."""
    claims = jwt_claims(token)
    return 0 if claims is None else claims.get("exp", 0)


def is_expired(token: str, now: float | None = None) -> bool:
    """The server's test, ``now > exp``: true for a token without ``exp`` and for one that is
    not a JWT. An ``exp`` that is not a number raises ``TypeError``, where the server crashes
    (HTTP 500)."""
    return (time.time() if now is None else now) > expiry(token)


def usable_token(token: str) -> bool:
    """True for a token the server can accept at some time: a JWT with a numeric ``exp``."""
    exp = (jwt_claims(token) or {}).get("exp")
    return isinstance(exp, int | float) and not isinstance(exp, bool)


def _identity(username: str, claims: dict) -> Identity:
    groups = claims.get("groups")
    if isinstance(groups, list):
        groups = ",".join(str(group) for group in groups) or None
    email = claims.get("email")
    return Identity(
        username,
        groups if isinstance(groups, str) else None,
        email if isinstance(email, str) else None,
    )


class Authenticator:
    """Maps request headers to identities; also issues the per-job tokens given to running jobs.

    Tokens are never logged or returned; the per-job tokens exist only in this object and in the
    environment of the job they belong to.
    """

    def __init__(
        self, tokens: Iterable[str] | None = None, idp: IdentityProvider | None = None
    ) -> None:
        self._allowed = None if tokens is None else frozenset(tokens)
        self._job_tokens: dict[str, Identity] = {}
        self._job_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self.idp = idp or IdentityProvider()
        #: requests answered 401 (tests use it to prove that a run never used a stale token)
        self.refused = 0

    def issue_job_token(self, owner: Identity | str, walltime_minutes: float | None = None) -> str:
        """Create the token that authenticates as ``owner`` (what ``PROMINENCE_TOKEN`` holds).

        As on the real server: an HS256 JWT with the claims ``username``, ``groups``, ``job``
        (the job's unique identifier), ``email`` and ``exp``, valid for 10 days +
        2 x (3 x walltime), and not tied to the user's access token (so expiring the user's
        tokens does not revoke it).
        """
        identity = owner if isinstance(owner, Identity) else Identity(owner)
        minutes = walltime_minutes or DEFAULT_WALLTIME_MINUTES
        claims = {
            "username": identity.name,
            "groups": identity.groups,
            "job": str(uuid.uuid4()),
            "email": identity.email,
            "exp": int(time.time() + JOB_TOKEN_BASE_SECONDS + 2 * minutes * 60 * 3),
        }
        token = make_jwt(claims, self._job_key)
        with self._lock:
            self._job_tokens[token] = identity
        return token

    def identify(self, header: str | None) -> Identity | None:
        """The caller, or ``None`` when the real server would answer 401."""
        identity = self._identify(header)
        if identity is None:
            with self._lock:
                self.refused += 1
        return identity

    def username(self, header: str | None) -> str | None:
        """The caller's username, or ``None`` when the real server would answer 401."""
        identity = self.identify(header)
        return None if identity is None else identity.name

    def _identify(self, header: str | None) -> Identity | None:
        token = token_from_header(header)
        if token is None:
            return None
        if is_expired(token):  # also every token that is not a JWT or has no exp
            return None
        with self._lock:
            owner = self._job_tokens.get(token)
        if owner is not None:
            return owner
        claims = jwt_claims(token) or {}
        if self.idp.is_revoked(claims):
            return None  # issued by our identity provider, then expired on demand
        if (
            self._allowed is not None
            and token not in self._allowed
            and not self.idp.signed_here(token)
        ):
            return None
        return _identity(username_for_token(token), claims)
