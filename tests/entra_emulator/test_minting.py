"""Grant handlers and minting run on a hand-built TokenRequest, with no Flask request at all."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import flask
import pytest

from entra_emulator import config
from entra_emulator import keys
from entra_emulator.errors import EntraError
from entra_emulator.grants import GRANTS
from entra_emulator.runtime import Runtime
from entra_emulator.state import Code
from entra_emulator.state import State
from entra_emulator.token_request import TokenRequest

PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"
BASE = "https://127.0.0.1:5443"
REDIRECT = "http://127.0.0.1/auth/callback"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    """Return a runtime of the demo world that no server serves."""
    key_ring = keys.load(Path(tmp_path_factory.mktemp("keys")))
    return Runtime(State(config.load()), key_ring, BASE, "http://127.0.0.1:5444", True)


def token_request(**fields: Any) -> TokenRequest:
    """Return a token request for the portal at the contoso tenant path."""
    endpoint = f"{BASE}/{CONTOSO}/oauth2/v2.0/token"
    return TokenRequest(segment=CONTOSO, tenant_id=CONTOSO, endpoint=endpoint, **fields)


def test_an_authorization_code_is_redeemed_outside_any_flask_context(runtime: Runtime) -> None:
    state = runtime.state
    state.add_grant(CONTOSO, PORTAL_ID, "https://graph.microsoft.com", ["User.Read"], None)
    state.codes["code-1"] = Code(
        client_id=PORTAL_ID,
        redirect_uri=REDIRECT,
        challenge=None,
        method="plain",
        nonce="n-0S6",
        scopes=["openid", "offline_access", "User.Read"],
        username="user@contoso.test",
        tenant=CONTOSO,
        segment=CONTOSO,
        session_id="",
        auth_time=int(time.time()),
    )
    request = token_request(
        grant_type="authorization_code",
        client_id=PORTAL_ID,
        code="code-1",
        redirect_uri=REDIRECT,
        client_info=True,
    )
    log_fields: dict[str, Any] = {}
    assert not flask.has_app_context() and not flask.has_request_context()

    body = GRANTS["authorization_code"](runtime, request, state.world.apps[PORTAL_ID], log_fields)

    claims = runtime.keys.verify(body["access_token"], "https://graph.microsoft.com")
    assert claims["upn"] == "user@contoso.test" and claims["scp"] == "User.Read"
    assert claims["iss"] == f"{BASE}/{CONTOSO}/v2.0"
    assert runtime.keys.verify(body["id_token"], PORTAL_ID)["nonce"] == "n-0S6"
    assert body["refresh_token"] in state.refresh_tokens and body["client_info"]
    assert log_fields == {"username": "user@contoso.test"}
    assert state.codes["code-1"].used


def test_client_credentials_needs_a_tenant_in_the_path(runtime: Runtime) -> None:
    app = runtime.state.world.apps[PORTAL_ID]
    request = token_request(
        grant_type="client_credentials",
        client_id=PORTAL_ID,
        scope="https://graph.microsoft.com/.default",
    )
    body = GRANTS["client_credentials"](runtime, request, app, {})
    claims = runtime.keys.verify(body["access_token"], "https://graph.microsoft.com")
    assert claims["idtyp"] == "app" and claims["tid"] == CONTOSO
    common = TokenRequest("client_credentials", "common", None, request.endpoint, PORTAL_ID)
    with pytest.raises(EntraError) as refused:
        GRANTS["client_credentials"](runtime, common, app, {})
    assert refused.value.code == 50059


def test_parse_prefers_the_form_to_http_basic() -> None:
    basic = "Basic " + base64.b64encode(b"Other-ID:basic%3Asecret").decode()
    both = TokenRequest.parse({"client_id": "Form-ID"}, basic, "common", None, BASE)
    assert (both.client_id, both.client_secret) == ("form-id", "basic:secret")
    assert TokenRequest.parse({}, basic, "common", None, BASE).client_id == "other-id"
    assert not TokenRequest.parse({"client_info": "0"}, "", "common", None, BASE).client_info
