"""The callback and the session survive the attacks of security-checklist §2.1 and §2.2."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from app.identity.flows import FLOWS_KEY
from app.models import Connection
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.signins import Web

# The production combination runs too when CI provides PostgreSQL (with Redis sessions).
pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def connections(app: Flask) -> int:
    """Return how many connection rows exist."""
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Connection)) or 0)


def token_calls(entra: Emulator) -> int:
    """Return how many requests reached the emulator's token endpoint."""
    return len(entra.request_log(endpoint="token"))


def session_cookie(web: Web) -> str:
    """Return the value of the browser's session cookie."""
    cookie = web.client.get_cookie("ccp_session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def test_c1_callback_without_state_is_refused(web: Web, app: Flask, entra: Emulator) -> None:
    web.authenticate()
    answer = web.client.get("/auth/callback?code=abc")
    assert answer.status_code == 400
    assert "Sign-in expired" in answer.get_data(as_text=True)
    assert token_calls(entra) == 0 and connections(app) == 0


def test_c2_state_from_another_browser_is_refused(web: Web, app: Flask, entra: Emulator) -> None:
    attacker_uri = web.authenticate()
    attacker_callback = entra.sign_in(attacker_uri, "user@fabrikam.test")
    victim = app.test_client()
    answer = victim.get(urlsplit(attacker_callback).path + "?" + urlsplit(attacker_callback).query)
    assert answer.status_code == 400
    assert token_calls(entra) == 0 and connections(app) == 0


def test_c3_replayed_callback_is_refused_and_one_connection_exists(
    web: Web, app: Flask, entra: Emulator
) -> None:
    callback = entra.sign_in(web.authenticate(), "user@fabrikam.test")
    assert web.callback(callback).status_code == 303
    replay = web.callback(callback)
    assert replay.status_code == 400 and "Sign-in expired" in replay.get_data(as_text=True)
    assert token_calls(entra) == 1 and connections(app) == 1


def test_c4_attackers_code_with_victims_flow_fails_and_stores_nothing(
    web: Web, app: Flask, entra: Emulator
) -> None:
    victim_uri = web.authenticate()
    assert parse_qs(urlsplit(victim_uri).query)["code_challenge_method"] == ["S256"]
    attacker = web.other()
    stolen = parse_qs(urlsplit(entra.sign_in(attacker.authenticate(), "user@fabrikam.test")).query)
    query = urlencode({"code": stolen["code"][0], "state": web.state_of(victim_uri)})
    answer = web.client.get(f"/auth/callback?{query}")
    assert answer.status_code == 400
    assert "AADSTS501481" in answer.get_data(as_text=True)
    assert connections(app) == 0


def test_c5_expired_flow_is_refused(web: Web, app: Flask, entra: Emulator) -> None:
    callback = entra.sign_in(web.authenticate(), "user@fabrikam.test")
    with web.client.session_transaction() as session:
        for entry in session[FLOWS_KEY].values():
            entry["created"] -= 3600
    answer = web.callback(callback)
    assert answer.status_code == 400 and "Sign-in expired" in answer.get_data(as_text=True)
    assert token_calls(entra) == 0 and connections(app) == 0
    with web.client.session_transaction() as session:
        assert session[FLOWS_KEY] == {}


def test_a_pending_flow_keeps_its_secrets_but_not_the_authorize_url(
    web: Web, app: Flask, entra: Emulator
) -> None:
    auth_uri = web.authenticate()
    with web.client.session_transaction() as session:
        (entry,) = session[FLOWS_KEY].values()
    assert "auth_uri" not in entry["flow"]
    assert {"state", "code_verifier", "nonce", "redirect_uri"} <= set(entry["flow"])
    assert web.callback(entra.sign_in(auth_uri, "user@fabrikam.test")).status_code == 303
    assert connections(app) == 1


def test_c6_code_and_error_together_is_an_error_without_token_call(
    web: Web, app: Flask, entra: Emulator
) -> None:
    state = web.state_of(web.authenticate())
    query = urlencode(
        {
            "code": "x",
            "error": "access_denied",
            "state": state,
            "error_description": "AADSTS65004: User declined to consent.",
        }
    )
    answer = web.client.get(f"/auth/callback?{query}")
    assert answer.status_code in (400, 403)
    assert token_calls(entra) == 0 and connections(app) == 0


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_c7_reflected_error_text_is_inert(web: Web, payload: str) -> None:
    state = web.state_of(web.authenticate())
    query = urlencode(
        {
            "error": "invalid_request",
            "state": state,
            "error_description": f"AADSTS90008: {payload}",
            "error_uri": "javascript:alert(1)",
        }
    )
    answer = web.client.get(f"/auth/callback?{query}")
    body = answer.get_data(as_text=True)
    assert payload not in body and "javascript:alert" not in body
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_c8_tokens_appended_to_the_callback_are_ignored(
    web: Web, app: Flask, entra: Emulator
) -> None:
    callback = entra.sign_in(web.authenticate(), "user@fabrikam.test")
    answer = web.callback(callback + "&access_token=planted-at&id_token=planted-id")
    assert answer.status_code == 303
    with app.app_context():
        stored = db.session.scalars(select(Connection)).one()
        assert b"planted" not in stored.sealed_cache


@pytest.mark.parametrize(
    "params",
    [
        {"state": "s" * 100_000},
        {"code": "c" * 1_000_000, "state": "x"},
        {"code": "a\x00b", "state": "x"},
        {"state": "x\r\nSet-Cookie: a=b", "code": "x"},
    ],
)
def test_c9_oversized_or_binary_parameters_get_a_quick_400(
    web: Web, app: Flask, entra: Emulator, params: dict[str, str]
) -> None:
    web.authenticate()
    answer = web.client.get("/auth/callback?" + urlencode(params))
    assert answer.status_code in (400, 413, 414)
    assert token_calls(entra) == 0 and connections(app) == 0


def test_c11_redirect_uri_never_comes_from_the_host_header(web: Web, app: Flask) -> None:
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    page = web.client.get("/connectors/onedrive", headers=evil).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = web.client.post(
        "/connectors/onedrive/authenticate", data={"csrf_token": token}, headers=evil
    )
    redirect_uri = parse_qs(urlsplit(answer.headers["Location"]).query)["redirect_uri"][0]
    assert redirect_uri == app.config["REDIRECT_URI"]


def test_c12_sign_in_never_redirects_off_site(web: Web, entra: Emulator) -> None:
    token = web.csrf("/sign-in")
    answer = web.client.post("/sign-in", data={"csrf_token": token, "next": "//evil.com"})
    done = web.callback(entra.sign_in(answer.headers["Location"], "user@fabrikam.test"))
    assert done.status_code == 303 and done.headers["Location"] == "/"


def test_c17_session_id_changes_at_sign_in_and_the_old_one_is_gone(
    web: Web, entra: Emulator
) -> None:
    callback = entra.sign_in(web.authenticate(), "user@fabrikam.test")
    before = session_cookie(web)
    web.callback(callback)
    after = session_cookie(web)
    assert before != after
    web.client.set_cookie("ccp_session", before)
    assert "My connections" not in web.client.get("/").get_data(as_text=True)


def test_c18_old_cookie_is_anonymous_after_sign_out(web: Web, entra: Emulator) -> None:
    web.callback(entra.sign_in(web.authenticate(), "user@fabrikam.test"))
    signed_in = session_cookie(web)
    assert "My connections" in web.client.get("/").get_data(as_text=True)
    answer = web.client.post("/sign-out", data={"csrf_token": web.csrf("/")})
    assert answer.status_code == 303
    web.client.set_cookie("ccp_session", signed_in)
    assert web.client.get("/connections").status_code == 302


@pytest.mark.parametrize("cookie", ["garbage", "x" * 4000, "\x00\xff"])
def test_c20_bad_session_cookie_gives_a_fresh_session(web: Web, cookie: str) -> None:
    web.client.set_cookie("ccp_session", cookie)
    answer = web.client.get("/connections")
    assert answer.status_code == 302


def test_cross_site_post_is_refused(web: Web) -> None:
    token = web.csrf("/connectors/onedrive")
    answer = web.client.post(
        "/connectors/onedrive/authenticate",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403


def test_post_without_csrf_token_is_refused(web: Web) -> None:
    assert web.client.post("/connectors/onedrive/authenticate").status_code == 400


def test_sign_out_returns_to_a_registered_page_built_from_configuration(
    web: Web, entra: Emulator, app: Flask
) -> None:
    web.callback(entra.sign_in(web.authenticate(), "user@fabrikam.test"))
    evil = {"Host": "evil.example"}
    page = web.client.get("/sign-in", headers=evil).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = web.client.post("/sign-out", data={"csrf_token": token}, headers=evil)
    logout = parse_qs(urlsplit(answer.headers["Location"]).query)
    back = logout["post_logout_redirect_uri"][0]
    assert back == app.config["PUBLIC_URL"] + "/signed-out"
    at_entra = requests.get(answer.headers["Location"], allow_redirects=False, timeout=10)
    assert at_entra.status_code == 302 and at_entra.headers["Location"].startswith(back)
    page = web.client.get("/signed-out").get_data(as_text=True)
    assert "You are signed out" in page


def test_a_session_ends_after_the_absolute_limit_however_active(web: Web, entra: Emulator) -> None:
    web.callback(entra.sign_in(web.authenticate(), "user@fabrikam.test"))
    assert web.client.get("/connections").status_code == 200
    with web.client.session_transaction() as session:
        user = dict(session["app.accounts.user"])
        user["signed_in_at"] -= 13 * 3600
        session["app.accounts.user"] = user
    assert web.client.get("/connections").status_code == 302


def test_c16_cancel_at_entra_is_a_clear_page_and_the_flow_is_gone(web: Web, app: Flask) -> None:
    auth_uri = web.authenticate("onedrive")
    with web.client.session_transaction() as session:
        assert len(session[FLOWS_KEY]) == 1
    back = web.entra.sign_in(
        auth_uri, "user@fabrikam.test", accept=False, session=web.entra_session
    )
    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]
    answer = web.callback(back)
    page = answer.get_data(as_text=True)
    assert answer.status_code in (400, 403) and "Access was not granted" in page
    assert "Traceback" not in page and "AADSTS65004" in page
    with web.client.session_transaction() as session:
        assert session.get(FLOWS_KEY, {}) == {}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Connection)) == 0
