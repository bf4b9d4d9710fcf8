"""Logs (one JSON line per request, no secrets), /metrics, and outages answered with 503."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.errors import ConfigError
from app.platform import extensions
from app.platform import logs
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.conftest import free_port
from tests.signins import Web


def json_lines(text: str) -> list[dict[str, Any]]:
    """Return the JSON log lines in captured standard error."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def samples(
    client: FlaskClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape /metrics and return every sample by name and labels."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200
    found = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_one_json_line_per_request_with_its_request_id(client: FlaskClient, capsys: Any) -> None:
    capsys.readouterr()
    answer = client.get("/healthz")
    lines = [x for x in json_lines(capsys.readouterr().err) if x["logger"] == "app.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == answer.headers["X-Request-Id"]
    assert (line["method"], line["path"], line["status"], line["route"]) == (
        "GET", "/healthz", 200, "/healthz"
    )  # fmt: skip


def test_callback_lines_have_no_query_and_secrets_are_redacted(
    web: Web, capsys: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()
    callback = web.entra.sign_in(web.authenticate(), "user@fabrikam.test", accept=True)
    answer = web.callback(callback)
    code = web.code(answer)
    err = capsys.readouterr().err
    secret_code = callback.split("code=")[1].split("&")[0]
    state = web.state_of(callback)
    for secret in (secret_code, state, code):
        assert secret not in err
    access = [x for x in json_lines(err) if x["logger"] == "app.access"]
    assert any(x["path"] == "/auth/callback" for x in access)
    assert all("?" not in x["path"] for x in access)


def test_a_link_token_in_the_path_never_reaches_the_log(web: Web, capsys: Any) -> None:
    capsys.readouterr()
    token = "Zx9" + "k" * 40
    web.client.get(f"/l/{token}")
    err = capsys.readouterr().err
    assert token not in err
    access = [x for x in json_lines(err) if x["logger"] == "app.access"]
    assert access and access[-1]["path"] == "/l/<path:token>"


@pytest.mark.parametrize(
    "text",
    [
        "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU here",
        "code ccp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA used",
        "GET /auth/callback?code=abc123&state=xyz789 HTTP/1.1",
        "body {'refresh_token': '1.ARsecretvalue', 'client_secret': 'pw'}",
        "Authorization: Bearer sometoken",
        "opaque 1.ARAbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQr",
    ],
)
def test_redact_hides_every_kind_of_secret(text: str) -> None:
    cleaned = logs.redact(text)
    for secret in (
        "eyJzdWIi", "AAAAAAAAAAAAAAAA", "abc123", "xyz789", "secretvalue", "'pw'", "sometoken",
        "AbCdEfGhIjKlMnOp",
    ):  # fmt: skip
        assert secret not in cleaned


def test_redact_keeps_ordinary_text() -> None:
    text = "connection 3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c refreshed in 12 ms (status=200)"
    assert logs.redact(text) == text


def test_log_levels_per_module(make_portal: Callable[..., Flask]) -> None:
    saved = {n: logging.getLogger(n).level for n in ("app.tokens", "msal")}
    make_portal(LOG_LEVELS="app.tokens=DEBUG,msal=INFO")
    assert logging.getLogger("app.tokens").level == logging.DEBUG
    assert logging.getLogger("msal").level == logging.INFO
    make_portal(LOG_LEVELS="app.tokens=NOTSET,msal=WARNING")
    with pytest.raises(ConfigError):
        make_portal(LOG_LEVELS="app.tokens=LOUD")
    for name, level in saved.items():  # the run's DEBUG secret scan needs them back
        logging.getLogger(name).setLevel(level)


def test_metrics_count_what_the_test_did(
    client: FlaskClient, connect: Any, entra: Emulator
) -> None:
    _, code = connect()
    before = samples(client)
    for _ in range(3):
        assert (
            client.post("/api/v1/token", headers={"Authorization": f"Bearer {code}"}).status_code
            == 200
        )
    assert (
        client.post("/api/v1/token", headers={"Authorization": "Bearer ccp_nope"}).status_code
        == 401
    )
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    route = {"route": "/api/v1/token", "method": "POST"}
    assert delta("ccp_http_requests_total", status="200", **route) == 3
    assert delta("ccp_http_requests_total", status="401", **route) == 1
    assert delta("ccp_token_api_seconds_count", status="200") == 3
    assert delta("ccp_token_api_seconds_count", status="401") == 1


def test_metrics_count_refreshes(client: FlaskClient, connect: Any, entra: Emulator) -> None:
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    _, code = connect()
    before = samples(client)
    assert (
        client.post("/api/v1/token", headers={"Authorization": f"Bearer {code}"}).status_code == 200
    )
    after = samples(client)
    key = ("ccp_refreshes_total", (("result", "ok"),))
    assert after[key] - before.get(key, 0.0) == 1


def test_metrics_token(make_portal: Callable[..., Flask]) -> None:
    client = make_portal(METRICS_TOKEN="scrape-me-please").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert samples(client, Authorization="Bearer scrape-me-please")
    assert "Set-Cookie" not in client.get("/metrics").headers


def test_redis_down_answers_503_quickly(make_portal: Callable[..., Flask]) -> None:
    portal: Flask = make_portal(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = portal.test_client()
    started = time.monotonic()
    answer = client.post("/api/v1/token", headers={"Authorization": "Bearer ccp_x"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert answer.get_json()["error"] == "temporarily_unavailable"
    client.set_cookie("ccp_session", "a" * 32)  # a returning person: their session is in Redis
    page = client.get("/connections")
    assert page.status_code == 503
    assert "not answering" in page.get_data(as_text=True)
    assert client.get("/readyz").status_code == 503
    assert time.monotonic() - started < 3


def test_metrics_count_deliveries_by_channel_and_result(make_portal: Callable[..., Flask]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails
    portal = make_portal(
        NOTIFY_MODE="manual", WEBHOOK_URLS=[dead], NOTIFY_MAX_ATTEMPTS=1, HTTP_TIMEOUT=2
    )
    client = portal.test_client()
    before = samples(client)
    with portal.app_context():
        extensions.notifier().queue(db.session, "tenant_consent.granted", {"tenant_id": "t"})
        db.session.commit()
        assert extensions.notifier().run_due() == 1
    after = samples(client)
    failed = ("ccp_webhook_deliveries_total", (("result", "failed"),))
    assert after[failed] - before.get(failed, 0.0) == 1
