"""A stand-in for the identity provider's token endpoint (EGI Check-in and the like).

The real PROMINENCE server accepts OIDC access tokens that expire after about an hour; users
renew them with the OAuth 2.0 refresh-token grant (RFC 6749 §6) against their identity
provider, authenticating as their registered client. This module issues short-lived JWT access
tokens that the emulator's API then honours (their ``exp`` is checked as the real server checks
it), answers the refresh-token grant with client authentication (HTTP Basic or form fields),
rotates refresh tokens, and can expire every token it issued on demand, so that a test can play
"the token expired, then the user ran ``prominence login``".

There is no device-code flow and no user interaction: :meth:`IdentityProvider.login` hands out a
token response directly, as ``prominence login`` would have written it to ``~/.prominence/token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Lifetime of access tokens unless configured (EGI Check-in: one hour).
DEFAULT_LIFETIME_SECONDS = 3600.0
ISSUER = "prominence-emulator"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: Mapping[str, object], key: bytes) -> str:
    """An HS256 JWT of ``claims`` (the standard library suffices for one algorithm)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = _b64(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


@dataclass(frozen=True)
class TokenError:
    """An OAuth error answer (RFC 6749 §5.2): HTTP status, ``error`` code and description."""

    status: int
    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class IdentityProvider:
    """Issues access and refresh tokens, and knows which access tokens it has revoked.

    ``clients`` maps client ids to secrets; when it is empty, any client id is accepted (with
    any secret), which is what a quick manual try-out wants. Refresh tokens are single-use: each
    grant answers with a new one (rotation), as many providers do.
    """

    def __init__(
        self,
        clients: Mapping[str, str] | None = None,
        lifetime: float = DEFAULT_LIFETIME_SECONDS,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("the token lifetime must be positive")
        self._clients = dict(clients or {})
        self.lifetime = float(lifetime)
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._refresh: dict[str, str] = {}  # refresh token -> username
        self._issued: set[str] = set()  # jti of live access tokens
        self._revoked: set[str] = set()
        self.counts = {"logins": 0, "refresh_grants": 0, "refused_grants": 0, "expired_all": 0}

    # -- issuing ------------------------------------------------------------------------------

    def login(self, username: str = "emulator-user") -> dict[str, object]:
        """A token response for ``username``, as ``prominence login`` saves it."""
        with self._lock:
            self.counts["logins"] += 1
            return self._token_response(username)

    def _token_response(self, username: str) -> dict[str, object]:
        now = int(time.time())
        jti = secrets.token_hex(8)
        access = make_jwt(
            {
                "iss": ISSUER,
                "sub": username,
                "preferred_username": username,
                "iat": now,
                "exp": now + round(self.lifetime),
                "jti": jti,
            },
            self._key,
        )
        refresh = "emurefresh." + secrets.token_urlsafe(32)
        self._issued.add(jti)
        self._refresh[refresh] = username
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": round(self.lifetime),
            "refresh_token": refresh,
            "scope": "openid profile email",
        }

    def grant(
        self, form: Mapping[str, str], basic: tuple[str, str] | None
    ) -> dict[str, object] | TokenError:
        """Answer ``POST /token``: the refresh-token grant with client authentication."""
        with self._lock:
            answer = self._grant(form, basic)
            key = "refused_grants" if isinstance(answer, TokenError) else "refresh_grants"
            self.counts[key] += 1
            return answer

    def _grant(
        self, form: Mapping[str, str], basic: tuple[str, str] | None
    ) -> dict[str, object] | TokenError:
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        if not client_id or not self._client_ok(client_id, secret or ""):
            return TokenError(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type") != "refresh_token":
            return TokenError(
                400, "unsupported_grant_type", "Only the refresh_token grant is supported"
            )
        username = self._refresh.pop(form.get("refresh_token") or "", None)
        if username is None:
            return TokenError(400, "invalid_grant", "Invalid refresh token")
        return self._token_response(username)

    def _client_ok(self, client_id: str, secret: str) -> bool:
        if not self._clients:
            return True
        expected = self._clients.get(client_id)
        return expected is not None and hmac.compare_digest(expected, secret)

    # -- checking and expiring ----------------------------------------------------------------

    def signed_here(self, token: str) -> bool:
        """True when ``token`` carries this provider's signature."""
        head, _, signature = token.rpartition(".")
        digest = hmac.new(self._key, head.encode("ascii", "replace"), hashlib.sha256).digest()
        expected = _b64(digest)
        return bool(head) and hmac.compare_digest(expected, signature)

    def is_revoked(self, claims: Mapping[str, object]) -> bool:
        """True for an access token this provider issued and has since expired on demand."""
        if claims.get("iss") != ISSUER:
            return False
        with self._lock:
            return claims.get("jti") in self._revoked

    def expire_all(self) -> int:
        """Expire every access token issued so far (refresh tokens stay valid, as in real
        life where the access token lapses first). Returns how many were expired."""
        with self._lock:
            count = len(self._issued)
            self._revoked |= self._issued
            self._issued = set()
            self.counts["expired_all"] += 1
            return count

    def set_lifetime(self, seconds: float) -> None:
        """Lifetime of the access tokens issued from now on."""
        if seconds <= 0:
            raise ValueError("the token lifetime must be positive")
        self.lifetime = float(seconds)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {**self.counts, "lifetime_seconds": self.lifetime}


def parse_clients(pairs: Iterable[str]) -> dict[str, str]:
    """``["id:secret", ...]`` from the command line into a mapping; a clear error otherwise."""
    clients = {}
    for pair in pairs:
        client_id, sep, secret = pair.partition(":")
        if not sep or not client_id or not secret:
            raise ValueError("--oidc-client expects CLIENT_ID:SECRET (both non-empty)")
        clients[client_id] = secret
    return clients
