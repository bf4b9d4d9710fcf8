"""Continuous Access Evaluation end to end (issue 13, item 2): claims in, one refresh, or 409."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from flask import Flask

from app.models import REAUTHENTICATION_REQUIRED
from app.platform.extensions import notifier
from entra_emulator import Emulator
from tests.blueprints.test_consent import Hook
from tests.conftest import row as row_of
from tests.signins import Web
from tests.signins import connect_account

USER = "user@fabrikam.test"
ACCOUNT = f"/_emulator/users/{USER}/account"


def _graph(entra: Emulator, token: str) -> requests.Response:
    """List the OneDrive root the way a data tool does with the token it got."""
    return requests.get(
        f"{entra.base_url}/graph/v1.0/me/drive/root/children",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(entra.ca_path),
        timeout=10,
    )


def _claims_of(answer: requests.Response) -> str:
    """Return the claims value of Graph's insufficient_claims challenge, as a tool reads it."""
    header = answer.headers["WWW-Authenticate"]
    assert answer.status_code == 401 and 'error="insufficient_claims"' in header
    return header.split('claims="', 1)[1].split('"', 1)[0]


def _token(app: Flask, code: str, **body: str) -> Any:
    """POST the token API with the connection code and an optional JSON body."""
    headers = {"Authorization": f"Bearer {code}"}
    return app.test_client().post("/api/v1/token", headers=headers, json=body or None)


@pytest.fixture
def connected(app: Flask, entra: Emulator) -> tuple[str, str, str]:
    """Return a OneDrive connection's id, code and its first (CAE) access token."""
    connection_id, code = connect_account(app, entra, "onedrive", USER)
    assert code is not None
    token = _token(app, code).get_json()["access_token"]
    time.sleep(1.1)  # a critical event in a later second than the token's iat
    return connection_id, code, token


def test_the_portal_declares_cp1_and_gets_long_lived_cae_tokens(
    app: Flask, connected: tuple[str, str, str]
) -> None:
    _, code, token = connected
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["xms_cc"] == ["CP1"] and claims["exp"] - claims["iat"] >= 20 * 3600
    assert _token(app, code).get_json()["access_token"] == token  # served from the cache


def test_a_claims_challenge_after_a_password_reset_gets_one_refresh_and_a_new_token(
    app: Flask, entra: Emulator, connected: tuple[str, str, str]
) -> None:
    connection_id, code, token = connected
    assert entra.control("POST", ACCOUNT, json={"password": "reset-by-admin"}).ok
    challenge = _claims_of(_graph(entra, token))
    entra.control("DELETE", "/_emulator/requests")
    answer = _token(app, code, claims=challenge)
    assert answer.status_code == 200, answer.get_json()
    fresh = answer.get_json()["access_token"]
    assert fresh != token and _graph(entra, fresh).status_code == 200
    assert len(entra.request_log(endpoint="token", grant_type="refresh_token")) == 1
    row = row_of(app, connection_id)
    assert row is not None and row.status == "active"


def test_a_claims_challenge_after_revoked_sessions_answers_409_with_the_claims_in_the_link(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    receiver = Hook()
    app = make_portal(WEBHOOK_URLS=[receiver.url], NOTIFY_MODE="manual")
    connection_id, code = connect_account(app, entra, "onedrive", USER)
    assert code is not None
    token = _token(app, code).get_json()["access_token"]
    time.sleep(1.1)
    assert entra.control("POST", "/_emulator/refresh-tokens/revoke", json={"username": USER}).ok
    challenge = _claims_of(_graph(entra, token))
    answers = [_token(app, code, claims=challenge) for _ in range(2)]
    assert {a.status_code for a in answers} == {409}
    body = answers[0].get_json()
    assert body["error"] == "reauthentication_required"
    link = urlsplit(body["reauthenticate_url"])
    assert link.path == f"/connections/{connection_id}/reconnect"
    (carried,) = parse_qs(link.query)["claims"]
    assert json.loads(base64.b64decode(carried)) == json.loads(base64.b64decode(challenge))
    row = row_of(app, connection_id)
    assert row is not None and row.status == REAUTHENTICATION_REQUIRED
    assert row.last_error_code == "AADSTS50173"
    with app.app_context():
        notifier().run_due()
    receiver.server.shutdown()
    receiver.server.server_close()
    assert receiver.events().count("connection.reauthentication_required") == 1

    owner = Web(app.test_client(), entra)  # the link starts a sign-in that carries the claims
    page = owner.page(f"{link.path}?{link.query}")
    assert 'name="claims"' in page
    start = owner.post(
        link.path, f"{link.path}?{link.query}", claims=parse_qs(link.query)["claims"][0]
    )
    authorize = parse_qs(urlsplit(start.headers["Location"]).query)
    assert '"nbf"' in authorize["claims"][0] and '"xms_cc"' in authorize["claims"][0]
    done = owner.callback(entra.sign_in(start.headers["Location"], USER))
    assert done.status_code == 303
    again = _token(app, code)
    assert again.status_code == 200 and _graph(entra, again.get_json()["access_token"]).ok


def test_the_proxy_answers_a_claims_challenge_with_one_refresh_and_one_retry(
    app: Flask, entra: Emulator, connected: tuple[str, str, str]
) -> None:
    _, code, _ = connected
    assert entra.control("POST", ACCOUNT, json={"password": "reset-by-admin"}).ok
    entra.control("DELETE", "/_emulator/requests")
    headers = {"Authorization": f"Bearer {code}"}
    answer = app.test_client().get("/api/v1/proxy/v1.0/me/drive/root/children", headers=headers)
    assert answer.status_code == 200
    calls = [(r["endpoint"], r["status"]) for r in entra.request_log()]
    graph = [c for c in calls if c[0] != "token"]
    assert [s for _, s in graph] == [401, 200]  # the challenge, then the retry
    assert calls.count(("token", 200)) == 1  # one refresh, with the claims


def test_a_claims_value_that_is_not_a_challenge_is_a_clear_400(
    app: Flask, connected: tuple[str, str, str]
) -> None:
    _, code, _ = connected
    for bad in ("not base64!", base64.b64encode(b"[1, 2]").decode(), "x" * 5000):
        answer = _token(app, code, claims=bad)
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "invalid_request"
        assert "claims" in answer.get_json()["error_description"]


def test_portal_cae_false_declares_nothing_and_gets_the_usual_hour(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    app = make_portal(CAE=False)  # PORTAL_CAE=false: tools that cannot answer a challenge
    _, code = connect_account(app, entra, "onedrive", USER)
    assert code is not None
    token = _token(app, code).get_json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "xms_cc" not in claims and claims["exp"] - claims["iat"] < 2 * 3600
