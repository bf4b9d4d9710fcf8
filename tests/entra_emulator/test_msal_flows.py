"""Real MSAL against the emulator over TLS: the acceptance criteria of issue 2."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from entra_emulator import Emulator
from entra_emulator.testing import callback_query as query

CcaFactory = Callable[..., msal.ConfidentialClientApplication]
Connect = Callable[..., dict[str, Any]]
REDIRECT = "http://127.0.0.1:5000/auth/callback"
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
STORAGE = "https://storage.azure.com/user_impersonation"
DYNAMICS = "https://contoso.crm.dynamics.com/user_impersonation"


def test_auth_code_flow_completes_and_account_comes_from_client_info(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    result = connect(cca, "user@fabrikam.test", [GRAPH_USER_READ])
    assert result["token_type"] == "Bearer"
    assert result["scope"].split()[0] == GRAPH_USER_READ
    claims = result["id_token_claims"]
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    (account,) = cca.get_accounts()
    assert account["home_account_id"] == f"{info['uid']}.{info['utid']}"
    assert account["username"] == "user@fabrikam.test"
    assert account["environment"] == "127.0.0.1"
    assert claims["tid"] == info["utid"] and claims["oid"] == info["uid"]
    assert claims["iss"] == f"{emu.base_url}/{claims['tid']}/v2.0"


def test_silent_is_served_from_cache_then_refreshes_after_expiry(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    # 303 s leaves 3 s before MSAL counts the token as expired (5-minute margin, pitfall 9).
    emu.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 303})
    cca = make_cca()
    connect(cca, "user@fabrikam.test", [GRAPH_USER_READ])
    (account,) = cca.get_accounts()
    assert cca.acquire_token_silent([GRAPH_USER_READ], account)["token_source"] == "cache"
    assert emu.request_log(endpoint="token", grant_type="refresh_token") == []
    time.sleep(3.2)
    again = cca.acquire_token_silent([GRAPH_USER_READ], account)
    assert again["token_source"] == "identity_provider"
    assert len(emu.request_log(endpoint="token", grant_type="refresh_token")) == 1


def test_refresh_after_consent_revoked_fails_with_65001(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    result = connect(cca, "user@fabrikam.test", [GRAPH_USER_READ])
    revoke = {
        "tenant": "fabrikam.test",
        "client_id": result["id_token_claims"]["aud"],
        "resource": "https://graph.microsoft.com",
        "scopes": [],
        "principal": "user@fabrikam.test",
    }
    assert emu.control("DELETE", "/_emulator/grants", json=revoke).json()["removed"] == 1
    (account,) = cca.get_accounts()
    error = cca.acquire_token_silent_with_error([GRAPH_USER_READ], account, force_refresh=True)
    assert error["error"] == "invalid_grant"
    assert error["error_codes"] == [65001]
    assert error["suberror"] == "consent_required"
    assert error["classification"] == "consent_required"


def test_replayed_code_fails_with_54005(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    flow = cca.initiate_auth_code_flow([GRAPH_USER_READ], redirect_uri=REDIRECT)
    response = query(emu.sign_in(flow["auth_uri"], "user@fabrikam.test"))
    assert "access_token" in cca.acquire_token_by_auth_code_flow(dict(flow), response)
    replay = make_cca().acquire_token_by_auth_code_flow(dict(flow), response)
    assert replay["error"] == "invalid_grant"
    assert replay["error_codes"] == [54005]


def test_wrong_pkce_verifier_fails_with_501481(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    flow = cca.initiate_auth_code_flow([GRAPH_USER_READ], redirect_uri=REDIRECT)
    response = query(emu.sign_in(flow["auth_uri"], "user@fabrikam.test"))
    flow["code_verifier"] = "x" * 43
    result = cca.acquire_token_by_auth_code_flow(flow, response)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [501481]


def test_wrong_secret_is_401_invalid_client_7000215(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    flow = make_cca().initiate_auth_code_flow([GRAPH_USER_READ], redirect_uri=REDIRECT)
    response = query(emu.sign_in(flow["auth_uri"], "user@fabrikam.test"))
    result = make_cca(credential="not-the-secret").acquire_token_by_auth_code_flow(flow, response)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    (entry,) = emu.request_log(endpoint="token")
    assert entry["status"] == 401


def test_multi_resource_redemption_fails_with_28000(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    flow = cca.initiate_auth_code_flow([GRAPH_USER_READ, STORAGE], redirect_uri=REDIRECT)
    response = query(emu.sign_in(flow["auth_uri"], "user@fabrikam.test"))
    result = cca.acquire_token_by_auth_code_flow(flow, response)  # every flow scope: two resources
    assert result["error"] == "invalid_scope"
    assert result["error_codes"] == [28000]
    assert result["error_description"].startswith(
        "AADSTS28000: Provided value for the input parameter scope is not valid because it "
        "contains more than one resource."
    )


def test_second_resource_is_acquired_silently_with_the_refresh_token(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    connect(cca, "admin@contoso.test", [GRAPH_USER_READ, DYNAMICS, STORAGE])
    (account,) = cca.get_accounts()
    for scope in (DYNAMICS, STORAGE):
        result = cca.acquire_token_silent_with_error([scope], account)
        assert result["token_source"] == "identity_provider"
        assert result["scope"] == scope  # no OIDC scopes echoed for non-Graph resources
        assert cca.acquire_token_silent([scope], account)["token_source"] == "cache"


def test_refresh_token_rotation_and_revocation(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cca = make_cca()
    first = connect(cca, "user@fabrikam.test", [GRAPH_USER_READ])
    (account,) = cca.get_accounts()
    second = cca.acquire_token_silent([GRAPH_USER_READ], account, force_refresh=True)
    assert second["refresh_token"] != first["refresh_token"]
    emu.control("POST", "/_emulator/refresh-tokens/revoke", json={"username": "user@fabrikam.test"})
    error = cca.acquire_token_silent_with_error([GRAPH_USER_READ], account, force_refresh=True)
    assert error["error_codes"] == [50173]


def _certificate() -> tuple[str, str]:
    """Return (private key PEM, certificate PEM) of a throwaway self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_client_assertion_with_a_registered_certificate(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    key_pem, cert_pem = _certificate()
    body = {"redirect_uris": [REDIRECT], "certificates": [cert_pem]}
    client_id = emu.control("POST", "/_emulator/apps", json=body).json()["client_id"]
    credential = {"private_key": key_pem, "public_certificate": cert_pem}
    cca = make_cca(client_id=client_id, credential=credential)
    result = connect(cca, "user@fabrikam.test", [GRAPH_USER_READ])
    assert "access_token" in result
    other_key, other_cert = _certificate()
    stranger = make_cca(
        "contoso.test",
        client_id=client_id,
        credential={"private_key": other_key, "public_certificate": other_cert},
    )
    refused = stranger.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert refused["error"] == "invalid_client"
    assert refused["error_codes"] == [700027]


def test_client_credentials_needs_a_tenant_and_dot_default(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    result = make_cca("contoso.test").acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )
    assert result["token_type"] == "Bearer"
    claims = emu.keys.verify(result["access_token"], "https://graph.microsoft.com")
    assert claims["idtyp"] == "app"
    with pytest.warns(DeprecationWarning):  # MSAL agrees: app-only needs a named tenant
        refused = make_cca("organizations").acquire_token_for_client(
            ["https://graph.microsoft.com/.default"]
        )
    assert refused["error_codes"] == [50059]


@pytest.mark.parametrize("tenant", ["contoso.test", "common", "consumers", "organizations"])
def test_constructing_a_cca_discovers_every_tenant_form(make_cca: CcaFactory, tenant: str) -> None:
    assert make_cca(tenant).authority.token_endpoint.startswith("https://127.0.0.1:")


def test_unknown_tenant_makes_msal_raise_value_error(make_cca: CcaFactory) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        make_cca("nowhere.test")


def test_id_token_carries_wids_and_app_roles(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    admin = connect(make_cca(), "admin@contoso.test", [GRAPH_USER_READ])
    assert "62e90394-69f5-4237-9190-012177145e10" in admin["id_token_claims"]["wids"]
    helpdesk = connect(make_cca(), "helpdesk@contoso.test", [GRAPH_USER_READ])
    assert helpdesk["id_token_claims"]["roles"] == ["Helpdesk"]


def test_token_cache_blob_round_trips(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    cache = msal.SerializableTokenCache()
    connect(make_cca(cache=cache), "user@fabrikam.test", [GRAPH_USER_READ])
    restored = msal.SerializableTokenCache()
    restored.deserialize(cache.serialize())
    cca = make_cca(cache=restored)
    (account,) = cca.get_accounts()
    assert cca.acquire_token_silent([GRAPH_USER_READ], account)["token_source"] == "cache"
