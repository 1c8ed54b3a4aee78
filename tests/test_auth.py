"""Where the token comes from, JWT expiry, and that a token is never printable."""

from __future__ import annotations

import base64
import json
import time

import pytest

from snakemake_executor_plugin_prominence.service.auth import (
    Token,
    TokenError,
    TokenProvider,
    check_not_expired,
    jwt_expiry,
    read_token_file,
    token_file_is_private,
)
from tests.emulator_helpers import jwt_for


def make_jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


def test_setting_wins_over_env_and_file(tmp_path):
    from_file, from_env, from_setting = jwt_for("file"), jwt_for("env"), jwt_for("setting")
    token_file = tmp_path / "token"
    token_file.write_text(json.dumps({"access_token": from_file}))
    env = {"PROMINENCE_TOKEN": from_env}
    assert TokenProvider(from_setting, token_file, env).current().value == from_setting
    assert TokenProvider(None, token_file, env).current().value == from_env
    assert TokenProvider(None, token_file, {}).current().value == from_file


def test_token_file_json_raw_and_whitespace(tmp_path):
    path = tmp_path / "token"
    path.write_text(json.dumps({"access_token": "abc", "refresh_token": "r", "expires_in": 3600}))
    assert read_token_file(path) == "abc"
    path.write_text("  raw-token-value\n")
    assert read_token_file(path) == "raw-token-value"
    path.write_text(json.dumps({"refresh_token": "only"}))
    with pytest.raises(TokenError, match="does not contain an access_token"):
        read_token_file(path)


def test_no_token_anywhere_says_where_it_looked(tmp_path):
    with pytest.raises(TokenError) as caught:
        TokenProvider(None, tmp_path / "missing", {}).current()
    message = str(caught.value)
    assert "--prominence-token" in message and "PROMINENCE_TOKEN" in message
    assert str(tmp_path / "missing") in message


def test_a_refused_token_gives_way_to_a_refreshed_file(tmp_path):
    first, second = jwt_for("first"), jwt_for("second")
    path = tmp_path / "token"
    path.write_text(first)
    provider = TokenProvider(None, path, {})
    assert provider.current().value == first
    path.write_text(second)
    assert provider.current().value == first
    assert provider.after_refusal(first).value == second
    assert provider.current().value == second


def test_token_is_never_in_repr_or_str():
    token = Token("super-secret-token-value", "test")
    assert "super-secret" not in repr(token) and "super-secret" not in str(token)
    assert "super-secret" not in f"{token}" and "super-secret" not in repr([token])
    provider = TokenProvider("super-secret-token-value", None, {})
    provider.current()
    assert "super-secret" not in repr(provider)


def test_jwt_expiry():
    assert jwt_expiry(make_jwt({"exp": 1700000000})) == 1700000000
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.b.c") is None
    assert jwt_expiry(make_jwt({"sub": "x"})) is None


def test_expired_jwt_is_refused_with_a_way_out():
    token = Token(make_jwt({"exp": time.time() - 60}), "the token file /x")
    with pytest.raises(TokenError) as caught:
        check_not_expired(token)
    assert "expired" in str(caught.value) and "prominence login" in str(caught.value)
    check_not_expired(Token(make_jwt({"exp": time.time() + 3600}), "x"))


@pytest.mark.parametrize(
    "value",
    ["opaque-secret-value", make_jwt({"sub": "no-exp-secret"}), make_jwt({"exp": "soon"})],
    ids=["not-a-jwt", "jwt-without-exp", "exp-not-a-number"],
)
def test_a_token_without_an_expiry_is_refused_without_showing_it(value):
    """PROMINENCE reads a missing ``exp`` as 0 and refuses every such token: stop at once."""
    token = Token(value, "the PROMINENCE_TOKEN environment variable")
    with pytest.raises(TokenError) as caught:
        check_not_expired(token)
    message = str(caught.value)
    assert message.startswith(
        "The PROMINENCE token from the PROMINENCE_TOKEN environment variable is not a JWT "
        "access token with an expiry"
    )
    assert "PROMINENCE only accepts such tokens" in message and "prominence login" in message
    assert value not in message and "secret" not in message


def test_private_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("t")
    path.chmod(0o600)
    assert token_file_is_private(path)
    path.chmod(0o644)
    assert not token_file_is_private(path)


def test_warnings_for_soon_expiring_tokens_and_readable_files(tmp_path):
    from snakemake_executor_plugin_prominence.service.auth import token_warnings

    path = tmp_path / "token"
    path.write_text("t")
    path.chmod(0o644)
    soon = Token(make_jwt({"exp": time.time() + 600}), f"the token file {path}")
    warnings = token_warnings(soon, path)
    assert any("(in 10 minutes) and nothing can renew it" in w for w in warnings)
    assert any("the run pauses" in w for w in warnings)
    assert any(f"chmod 600 {path}" in w for w in warnings)
    path.chmod(0o600)
    # Renewable: no warning about the expiry; a longer horizon: a warning.
    assert token_warnings(soon, path, renewal=["the token command `oidc-token`"]) == []
    later = Token(make_jwt({"exp": time.time() + 7200}), f"the token file {path}")
    assert token_warnings(later, path) == []
    assert len(token_warnings(later, path, horizon_seconds=3 * 3600)) == 1
    assert token_warnings(Token("opaque", "the PROMINENCE_TOKEN environment variable"), path) == []


def test_where_a_setting_token_came_from(tmp_path):
    from snakemake_executor_plugin_prominence.service.auth import SETTING_SOURCE, token_warnings

    value = jwt_for("abc")
    from_env = TokenProvider(value, None, {"SNAKEMAKE_PROMINENCE_TOKEN": value}).current()
    assert from_env.source == "the SNAKEMAKE_PROMINENCE_TOKEN environment variable"
    assert token_warnings(from_env, tmp_path / "none") == []
    from_flag = TokenProvider(value, None, {}).current()
    assert from_flag.source == SETTING_SOURCE
    (warning,) = token_warnings(from_flag, tmp_path / "none")
    assert "Prefer PROMINENCE_TOKEN or the token file" in warning
