"""Identity against the real emulator over TLS, and the ID-token validator on crafted tokens."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from app.connectors import MSA_TENANT
from app.errors import EntraError
from app.errors import IdentityUnavailable
from app.errors import ReauthenticationRequired
from app.errors import SignInExpired
from app.errors import SignInRejected
from app.identity.entra import Identity
from app.identity.settings import IdentitySettings
from app.platform import extensions
from entra_emulator import Emulator
from tests.conftest import free_port

CLIENT = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
HOST = "https://login.example.test"
TENANT = "7a2e4c6b-9d1f-4b3a-8e5c-0f2d4b6a8c1e"


def start(app: Flask, connector_id: str, **kw: Any) -> dict[str, Any]:
    """Start a flow for a connector inside the app."""
    with app.app_context():
        return extensions.identity().start_flow(extensions.connectors()[connector_id], **kw)


def finish(app: Flask, flow: dict[str, Any], callback: str) -> Any:
    """Finish a flow with the query of a callback URL."""
    with app.app_context():
        return extensions.identity().finish_flow(flow, dict(parse_qsl(urlsplit(callback).query)))


def test_full_flow_for_a_work_account(app: Flask, entra: Emulator) -> None:
    flow = start(app, "onedrive", account_type=None, login_hint="user@fabrikam.test")
    query = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "https://graph.microsoft.com/Files.Read.All" in query["scope"][0].split()
    assert query["redirect_uri"] == [app.config["REDIRECT_URI"]]
    assert flow["portal.authority_tenant"] == "common"
    callback = entra.sign_in(flow["auth_uri"], "user@fabrikam.test")
    result = finish(app, flow, callback)
    assert result.username == "user@fabrikam.test"
    assert result.account_type == "work"
    assert result.tenant_id != MSA_TENANT
    assert result.home_account_id == f"{result.oid}.{result.tenant_id}"
    assert result.connector_id == "onedrive"
    assert "https://graph.microsoft.com/Files.Read.All" in result.scopes_granted
    cache = json.loads(result.cache_blob)
    assert cache["RefreshToken"] and cache["AccessToken"]


def test_a_personal_account_through_consumers(app: Flask, entra: Emulator) -> None:
    flow = start(app, "outlook", account_type="personal")
    assert flow["portal.authority_tenant"] == "consumers"
    result = finish(app, flow, entra.sign_in(flow["auth_uri"], "pat@outlook.test"))
    assert result.account_type == "personal"
    assert result.tenant_id == MSA_TENANT


def test_a_redeemed_code_cannot_be_redeemed_again(app: Flask, entra: Emulator) -> None:
    flow = start(app, "onedrive", account_type="work")
    callback = entra.sign_in(flow["auth_uri"], "user@fabrikam.test")
    finish(app, flow, callback)
    with pytest.raises(EntraError) as caught:
        finish(app, flow, callback)
    assert caught.value.error == "invalid_grant"


def test_an_old_flow_has_expired(app: Flask, entra: Emulator) -> None:
    flow = start(app, "onedrive", account_type="work")
    callback = entra.sign_in(flow["auth_uri"], "user@fabrikam.test")
    flow["portal.created_at"] = time.time() - app.config["FLOW_TTL"] - 1
    entra.control("DELETE", "/_emulator/requests")
    with pytest.raises(SignInExpired):
        finish(app, flow, callback)
    assert entra.request_log(endpoint="token") == []


def test_a_foreign_state_is_rejected_without_a_token_call(app: Flask, entra: Emulator) -> None:
    flow = start(app, "onedrive", account_type="work")
    other = start(app, "onedrive", account_type="work")
    callback = entra.sign_in(other["auth_uri"], "user@fabrikam.test")
    entra.control("DELETE", "/_emulator/requests")
    with pytest.raises(SignInRejected):
        finish(app, flow, callback)
    assert entra.request_log(endpoint="token") == []


def test_a_declined_consent_is_an_entra_error(app: Flask, entra: Emulator) -> None:
    flow = start(app, "onedrive", account_type="work")
    callback = entra.sign_in(flow["auth_uri"], "user@fabrikam.test", accept=False)
    with pytest.raises(EntraError) as caught:
        finish(app, flow, callback)
    assert caught.value.error == "access_denied"
    assert caught.value.codes == (65004,)
    assert caught.value.trace_id


def test_an_error_redirect_keeps_subcode_and_ids(app: Flask, entra: Emulator) -> None:
    flow = start(app, "sharepoint", account_type="work")
    description = (
        "AADSTS65004: User declined to consent to access the app.\r\n"
        "Trace ID: 0a1b2c3d-0000-4000-8000-000000000001\r\n"
        "Correlation ID: 0a1b2c3d-0000-4000-8000-000000000002\r\nTimestamp: 2025-11-29 05:17:47Z"
    )
    response = {
        "error": "access_denied",
        "error_subcode": "cancel",
        "error_description": description,
        "state": flow["state"],
        "code": "should-not-be-redeemed",
    }
    entra.control("DELETE", "/_emulator/requests")
    with app.app_context(), pytest.raises(EntraError) as caught:
        extensions.identity().finish_flow(flow, response)
    error = caught.value
    assert (error.error, error.subcode, error.codes) == ("access_denied", "cancel", (65004,))
    assert error.trace_id == "0a1b2c3d-0000-4000-8000-000000000001"
    assert error.correlation_id == "0a1b2c3d-0000-4000-8000-000000000002"
    assert error.details["aadsts"] == "AADSTS65004"
    assert entra.request_log(endpoint="token") == []  # code and error together: no redemption (C6)


def test_an_unreachable_identity_provider(app: Flask) -> None:
    down = Identity(
        IdentitySettings(
            authority_host=f"https://127.0.0.1:{free_port()}",
            client_id=CLIENT,
            redirect_uri="http://127.0.0.1:5000/auth/callback",
            http_timeout=2,
        )
    )
    with app.app_context():
        connector = extensions.connectors()["onedrive"]
    with pytest.raises(IdentityUnavailable):
        down.start_flow(connector, account_type="work")
    assert down.check(timeout=1) is False
    assert down.logout_url("http://127.0.0.1:5000/") is None


def test_flows_start_on_one_client_per_authority(
    app: Flask, entra: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    with app.app_context():
        identity = extensions.identity()
    real = identity._cca

    def counting(authority: str, *args: Any, **kw: Any) -> Any:
        built.append(authority)
        return real(authority, *args, **kw)

    monkeypatch.setattr(identity, "_cca", counting)
    first = start(app, "onedrive", account_type="work")
    second = start(app, "onedrive", account_type="work")
    assert built == ["organizations"]  # built once, then reused
    assert first["state"] != second["state"]  # each flow still has its own state, nonce, PKCE
    assert first["nonce"] != second["nonce"]
    assert first["code_verifier"] != second["code_verifier"]
    start(app, "outlook", account_type="personal")
    assert built == ["organizations", "consumers"]


def test_check_logout_and_admin_consent_links(app: Flask, entra: Emulator) -> None:
    with app.app_context():
        identity = extensions.identity()
        assert identity.check() is True
        logout = identity.logout_url("http://127.0.0.1:5000/")
        url = identity.admin_consent_url(
            TENANT, ["https://graph.microsoft.com/Sites.Read.All"], "st"
        )
    assert logout is not None and "post_logout_redirect_uri=" in logout
    parts = urlsplit(url)
    assert parts.path == f"/{TENANT}/v2.0/adminconsent"
    assert parse_qs(parts.query)["scope"] == ["https://graph.microsoft.com/Sites.Read.All"]
    assert parse_qs(parts.query)["client_id"] == [app.config["CLIENT_ID"]]


def test_token_for_another_account_needs_reauthentication(app: Flask, entra: Emulator) -> None:
    flow = start(app, "onedrive", account_type="work")
    result = finish(app, flow, entra.sign_in(flow["auth_uri"], "user@fabrikam.test"))
    with app.app_context(), pytest.raises(ReauthenticationRequired):
        extensions.identity().token_for(
            result.cache_blob,
            "someone.else",
            ["https://graph.microsoft.com/Files.Read.All"],
            "common",
        )


# -- the ID-token validator on crafted tokens (C10) ----------------------------------------------


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """Return the trusted signing key and an attacker's key."""
    make = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
    return make(), make()


@pytest.fixture
def validator(keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> Identity:
    """Return an Identity that trusts one key under kid "k1", without network."""
    identity = Identity(IdentitySettings(HOST, CLIENT, "http://127.0.0.1/auth/callback"))
    identity._jwks["k1"] = keys[0].public_key()
    return identity


def token(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    """Return an RS256 ID token with sensible claims, changed by overrides."""
    now = int(time.time())
    claims = {
        "aud": CLIENT,
        "iss": f"{HOST}/{TENANT}/v2.0",
        "tid": TENANT,
        "sub": "pairwise-sub",
        "oid": "0cb07628-9e78-5c19-8371-645fcb5dd9d0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "preferred_username": "user@fabrikam.test",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_a_good_token_passes(
    validator: Identity, keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    claims = validator.validate_id_token(token(keys[0]), "organizations")
    assert claims["tid"] == TENANT
    assert validator.validate_id_token(token(keys[0]), TENANT)["oid"]


@pytest.mark.parametrize(
    ("overrides", "authority"),
    [
        ({"aud": "someone-else"}, "organizations"),
        ({"iss": f"https://evil.example/{TENANT}/v2.0"}, "organizations"),
        ({"iss": f"{HOST}/11111111-1111-1111-1111-111111111111/v2.0"}, "organizations"),
        ({"exp": int(time.time()) - 3600}, "organizations"),
        ({"sub": None}, "organizations"),
        ({}, "11111111-1111-1111-1111-111111111111"),
        ({}, "consumers"),
        ({"tid": MSA_TENANT, "iss": f"{HOST}/{MSA_TENANT}/v2.0"}, "organizations"),
    ],
)
def test_bad_tokens_are_rejected(
    validator: Identity,
    keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
    overrides: dict[str, Any],
    authority: str,
) -> None:
    with pytest.raises(SignInRejected):
        validator.validate_id_token(token(keys[0], **overrides), authority)


def test_a_token_signed_by_another_key_is_rejected(
    validator: Identity, keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    with pytest.raises(SignInRejected):
        validator.validate_id_token(token(keys[1]), "organizations")


def test_an_unsigned_token_is_rejected(validator: Identity) -> None:
    unsigned = jwt.encode({"aud": CLIENT, "tid": TENANT}, key="", algorithm="none")
    with pytest.raises(SignInRejected):
        validator.validate_id_token(unsigned, "organizations")
    with pytest.raises(SignInRejected):
        validator.validate_id_token("", "organizations")
    with pytest.raises(SignInRejected):
        validator.validate_id_token("not.a.jwt", "organizations")


def test_a_consumer_token_passes_only_for_consumers_or_common(
    validator: Identity, keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    msa = token(keys[0], tid=MSA_TENANT, iss=f"{HOST}/{MSA_TENANT}/v2.0")
    assert validator.validate_id_token(msa, "consumers")["tid"] == MSA_TENANT
    assert validator.validate_id_token(msa, "common")["tid"] == MSA_TENANT
