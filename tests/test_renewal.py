"""Token sources that renew themselves: the token command, the refresh-token grant against the
emulator's identity provider, and the provider's timing (ahead of expiry, after a refusal, not
in a loop)."""

from __future__ import annotations

import json
import stat
import sys
import time

import pytest
import requests

from snakemake_executor_plugin_prominence.service.auth import Token, TokenError, TokenProvider
from snakemake_executor_plugin_prominence.service.renewal import (
    ClientCredentials,
    RefreshGrant,
    RenewalError,
    TokenCommand,
    find_client_credentials,
    redact_output,
    token_endpoint,
)
from tests.test_secrets import jwt


class Counting:
    """A renewer that hands out JWTs valid for ``lifetime`` seconds and counts its calls."""

    description = "a test renewer"

    def __init__(self, lifetime: float = 3600, fail: bool = False) -> None:
        self.lifetime = lifetime
        self.fail = fail
        self.calls = 0

    def renew(self) -> str:
        self.calls += 1
        if self.fail:
            raise RenewalError("the test renewer is down")
        return jwt(time.time() + self.lifetime, sub=f"renewed{self.calls}")

    def secrets(self) -> list[str]:
        return []


def test_renews_ahead_of_expiry_and_not_before():
    renewer = Counting()
    provider = TokenProvider(jwt(time.time() + 3600), None, {}, renewers=[renewer])
    first = provider.current()
    assert provider.current() is first and renewer.calls == 0  # an hour left: no renewal
    soon = TokenProvider(jwt(time.time() + 20), None, {}, renewers=[renewer])
    soon.current()  # 20 s left: renewal when 5 s (a quarter) are left, not now
    assert renewer.calls == 0
    clock = [time.time()]
    timed = TokenProvider(jwt(clock[0] + 20), None, {}, renewers=[renewer], clock=lambda: clock[0])
    initial = timed.current()
    clock[0] += 16  # 4 s left
    renewed = timed.current()
    assert renewer.calls == 1 and renewed.value != initial.value
    assert renewed.source == "a test renewer (renewed)"
    assert timed.renewals == 1
    assert initial.value in timed.secret_values() and renewed.value in timed.secret_values()


def test_a_refused_token_is_renewed_once_and_failures_are_not_retried_in_a_loop():
    warnings = []
    renewer = Counting(fail=True)
    clock = [1000.0]
    refused = jwt(time.time() + 3600, sub="refused")
    provider = TokenProvider(
        refused,
        None,
        {},
        renewers=[renewer],
        warn=warnings.append,
        clock=lambda: clock[0],
        retry_seconds=30,
    )
    assert provider.after_refusal(refused) is None
    assert renewer.calls == 1
    assert "the test renewer is down" in provider.last_renewal_error
    assert provider.after_refusal(refused) is None  # within 30 s: not tried again
    assert renewer.calls == 1
    clock[0] += 31
    renewer.fail = False
    fresh = provider.after_refusal(refused)
    assert fresh is not None and renewer.calls == 2 and provider.last_renewal_error == ""
    # Another thread was refused with the old token meanwhile: it gets the new one, no renewal.
    assert provider.after_refusal(refused) is fresh and renewer.calls == 2


def test_a_refused_token_prefers_a_refreshed_file_over_renewal(tmp_path):
    first, second = jwt(time.time() + 3600, sub="first"), jwt(time.time() + 3600, sub="second")
    path = tmp_path / "token"
    path.write_text(json.dumps({"access_token": first}))
    renewer = Counting()
    provider = TokenProvider(None, path, {}, renewers=[renewer])
    assert provider.current().value == first
    path.write_text(json.dumps({"access_token": second}))  # `prominence login` meanwhile
    assert provider.after_refusal(first).value == second
    assert renewer.calls == 0


def test_an_expired_source_gives_way_to_a_valid_one(tmp_path):
    path = tmp_path / "token"
    valid = jwt(time.time() + 3600)
    path.write_text(json.dumps({"access_token": valid}))
    expired_env = {"PROMINENCE_TOKEN": jwt(time.time() - 10)}
    assert TokenProvider(None, path, expired_env).current().value == valid
    # Both expired: the first (it is reported as expired by the caller).
    path.write_text(json.dumps({"access_token": jwt(time.time() - 5)}))
    provider = TokenProvider(None, path, expired_env)
    assert provider.current().value == expired_env["PROMINENCE_TOKEN"]


def test_an_expired_token_at_start_is_renewed(tmp_path):
    renewer = Counting()
    provider = TokenProvider(jwt(time.time() - 60), None, {}, renewers=[renewer])
    assert provider.current().seconds_left() > 3000 and renewer.calls == 1


def script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_token_command_output_and_failures(tmp_path):
    ok = script(tmp_path, "ok", "print('  tok.en-123  ')")
    assert TokenCommand(ok).renew() == "tok.en-123"
    as_json = script(tmp_path, "json", "import json; print(json.dumps({'access_token': 'abc'}))")
    assert TokenCommand(as_json).renew() == "abc"
    leaky = script(
        tmp_path,
        "leaky",
        "import sys; print('error: agent locked; token was eyJhbGciOiJIUzI1NiJ9.SECRETSECRET', "
        "file=sys.stderr); sys.exit(3)",
    )
    with pytest.raises(RenewalError) as failed:
        TokenCommand(leaky).renew()
    message = str(failed.value)
    assert "exit status 3" in message and "agent locked" in message
    assert "SECRETSECRET" not in message and "eyJhbGci" not in message
    with pytest.raises(RenewalError, match="was not found"):
        TokenCommand(str(tmp_path / "missing-command")).renew()
    with pytest.raises(RenewalError, match="printed no token"):
        TokenCommand(script(tmp_path, "empty", "pass")).renew()
    assert "oidc-token" in TokenCommand("oidc-token egi").description
    assert "egi" not in repr(TokenCommand("oidc-token egi --secret-arg"))


def test_redaction_of_command_output():
    assert redact_output("\n\n fine: short words only \n") == "fine: short words only"
    assert "<redacted>" in redact_output("token=abcdefghijklmnopqrstuvwxyz0123")


def test_where_client_credentials_and_the_endpoint_come_from(tmp_path):
    client_file = tmp_path / "client"
    client_file.write_text(json.dumps({"client_id": "file-id", "client_secret": "file-s"}))
    env = {"PROMINENCE_OIDC_CLIENT_ID": "env-id", "PROMINENCE_OIDC_CLIENT_SECRET": "env-s"}
    assert find_client_credentials("set-id", "set-s", env, client_file).client_id == "set-id"
    assert find_client_credentials(None, None, env, client_file).client_id == "env-id"
    from_file = find_client_credentials(None, None, {}, client_file)
    assert from_file.client_id == "file-id" and "file-s" not in repr(from_file)
    assert find_client_credentials(None, None, {}, tmp_path / "none") is None
    assert token_endpoint(None, {"PROMINENCE_OIDC_URL": "https://idp/oidc/"}) == (
        "https://idp/oidc/token"
    )
    assert token_endpoint("https://x/token", {}) == "https://x/token"
    assert token_endpoint(None, {}) is None


@pytest.fixture
def identity_provider():
    from snakemake_executor_plugin_prominence.emulator import Emulator

    with Emulator(port=0, token_lifetime=30, oidc_clients={"snakemake": "client-s3cret"}) as emu:
        yield emu


def test_refresh_grant_renews_rewrites_the_file_and_keeps_the_rotated_refresh_token(
    tmp_path, identity_provider
):
    emu = identity_provider
    path = tmp_path / "token"
    first = emu.login("carol")
    path.write_text(json.dumps({**first, "id_token": "kept-as-is"}))
    grant = RefreshGrant(
        path, emu.oidc_url + "/token", ClientCredentials("snakemake", "client-s3cret", "test")
    )
    access = grant.renew()
    saved = json.loads(path.read_text())
    assert saved["access_token"] == access != first["access_token"]
    assert saved["refresh_token"] != first["refresh_token"]  # rotated, and the new one kept
    assert saved["id_token"] == "kept-as-is"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert requests.get(emu.url + "/jobs", headers={"Authorization": f"Bearer {access}"}).ok
    assert grant.renew() != access  # the rotated refresh token works
    assert "client-s3cret" in grant.secrets()

    bad = RefreshGrant(
        path, emu.oidc_url + "/token", ClientCredentials("snakemake", "wrong", "the settings")
    )
    with pytest.raises(RenewalError) as refused:
        bad.renew()
    assert "invalid_client" in str(refused.value) and "the settings" in str(refused.value)
    assert "wrong" not in str(refused.value)
    path.write_text(json.dumps({**first}))  # an old, already used refresh token
    with pytest.raises(RenewalError, match="prominence login"):
        grant.renew()
    path.write_text(json.dumps({"access_token": jwt(time.time() + 3600)}))
    with pytest.raises(RenewalError, match="holds no refresh_token"):
        grant.renew()


def test_expired_tokens_are_refused_and_a_command_that_fails_says_why(tmp_path, identity_provider):
    emu = identity_provider
    access = emu.login("dave")["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert requests.get(emu.url + "/jobs", headers=headers).status_code == 200
    assert emu.expire_tokens() >= 1
    answer = requests.get(emu.url + "/jobs", headers=headers)
    assert answer.status_code == 401 and answer.json() == {"error": "Authentication failure"}
    assert emu.stats()["auth"]["refused"] >= 1

    failing = script(tmp_path, "failing", "import sys; sys.exit(1)")
    with pytest.raises(TokenError, match="exit status 1"):
        TokenProvider(command=TokenCommand(failing)).current()


def test_tokens_never_show_in_reprs():
    token = Token("very-secret-token-value", "somewhere")
    assert "very-secret" not in repr(token) and "very-secret" not in str(token)
