"""Continuous Access Evaluation (issue 13, item 2): CP1 tokens, Graph's claims challenge."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import msal
import requests

from entra_emulator import Emulator
from tests.entra_emulator.conftest import PORTAL_ID
from tests.entra_emulator.conftest import PORTAL_SECRET

Connect = Callable[..., dict[str, Any]]
USER_READ = "https://graph.microsoft.com/User.Read"
USER = "user@fabrikam.test"
ACCOUNT = f"/_emulator/users/{USER}/account"


def _cca(emu: Emulator, http: requests.Session, cae: bool) -> msal.ConfidentialClientApplication:
    """Return a client that declares CP1 (or not), as the portal builds its own."""
    return msal.ConfidentialClientApplication(
        PORTAL_ID,
        client_credential=PORTAL_SECRET,
        authority=f"{emu.base_url}/organizations",
        instance_discovery=False,
        http_client=http,
        http_cache={},
        client_capabilities=["CP1"] if cae else None,
    )


def _me(emu: Emulator, http: requests.Session, token: str) -> requests.Response:
    """Read /me from the emulator's Graph."""
    return http.get(f"{emu.base_url}/graph/v1.0/me", headers={"Authorization": f"Bearer {token}"})


def _challenge(answer: requests.Response) -> dict[str, Any]:
    """Return the decoded claims of a 401 insufficient_claims challenge."""
    header = answer.headers["WWW-Authenticate"]
    assert 'error="insufficient_claims"' in header, header
    value = header.split('claims="', 1)[1].split('"', 1)[0]
    return dict(json.loads(base64.b64decode(value)))


def test_a_cp1_client_gets_a_long_lived_token_others_the_usual_hour(
    emu: Emulator, http: requests.Session, connect: Connect
) -> None:
    cae = connect(_cca(emu, http, cae=True), USER, [USER_READ])
    plain = connect(_cca(emu, http, cae=False), USER, [USER_READ])
    assert cae["expires_in"] == 28 * 3600 and plain["expires_in"] == 3599
    claims = jwt.decode(cae["access_token"], options={"verify_signature": False})
    assert claims["xms_cc"] == ["CP1"]
    assert "xms_cc" not in jwt.decode(plain["access_token"], options={"verify_signature": False})


def test_after_revoked_sessions_graph_challenges_cae_tokens_only(
    emu: Emulator, http: requests.Session, connect: Connect
) -> None:
    cae = connect(_cca(emu, http, cae=True), USER, [USER_READ])["access_token"]
    plain = connect(_cca(emu, http, cae=False), USER, [USER_READ])["access_token"]
    assert _me(emu, http, cae).status_code == 200
    time.sleep(1.1)  # the event must be a later second than the tokens' iat
    revoke = {"username": USER}
    assert emu.control("POST", "/_emulator/refresh-tokens/revoke", json=revoke).ok
    refused = _me(emu, http, cae)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    wanted = _challenge(refused)["access_token"]["nbf"]
    assert wanted["essential"] is True and int(wanted["value"]) >= int(time.time()) - 5
    assert _me(emu, http, plain).status_code == 200  # a plain token lives out its hour


def test_a_password_reset_is_answered_by_a_refresh_with_the_claims(
    emu: Emulator, http: requests.Session, connect: Connect
) -> None:
    cca = _cca(emu, http, cae=True)
    token = connect(cca, USER, [USER_READ])["access_token"]
    time.sleep(1.1)
    assert emu.control("POST", ACCOUNT, json={"password": "reset-by-admin"}).ok
    challenge = _challenge(_me(emu, http, token))
    (account,) = cca.get_accounts()
    fresh = cca.acquire_token_silent_with_error(
        [USER_READ], account, claims_challenge=json.dumps(challenge)
    )
    assert fresh is not None and "access_token" in fresh, fresh  # confidential: the RT survived
    assert fresh["access_token"] != token
    assert _me(emu, http, fresh["access_token"]).status_code == 200


def test_a_disabled_user_is_challenged_at_once(
    emu: Emulator, http: requests.Session, connect: Connect
) -> None:
    token = connect(_cca(emu, http, cae=True), USER, [USER_READ])["access_token"]
    assert emu.control("POST", ACCOUNT, json={"disabled": True}).ok
    assert _me(emu, http, token).status_code == 401
    assert emu.control("POST", ACCOUNT, json={"disabled": False}).ok
    assert _me(emu, http, token).status_code == 200
