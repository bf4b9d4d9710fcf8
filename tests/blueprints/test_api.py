"""The token API over HTTP: Bearer codes only, RFC 6750 errors, no cookies, rate limits."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.platform import extensions
from entra_emulator import Emulator
from tests.conftest import fresh_address
from tests.signins import connect_account

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "redis"], indirect=True)


def bearer(code: str) -> dict[str, str]:
    """Return the Authorization header for a code."""
    return {"Authorization": f"Bearer {code}"}


def expired(entra: Emulator, connect: Any) -> tuple[str, str]:
    """Connect with a 1-second access token, then restore normal lifetimes."""
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    connection_id, code = connect()
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    return connection_id, code


def test_a_code_buys_an_access_token(client: FlaskClient, connect: Any) -> None:
    _, code = connect()
    answer = client.post("/api/v1/token", headers=bearer(code))
    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_at",
        "scope",
        "connector",
        "account",
    }
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "https://graph.microsoft.com/Files.Read.All"
    assert body["account"]["username"] == "user@fabrikam.test"
    assert "refresh_token" not in answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"


def test_the_api_never_sets_a_cookie(client: FlaskClient, connect: Any, app: Flask) -> None:
    _, code = connect()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "planted-session-id")
    for answer in (
        client.post("/api/v1/token", headers=bearer(code)),
        client.get("/api/v1/connection", headers=bearer(code)),
        client.post("/api/v1/token", headers=bearer("ccp_nope")),
    ):
        assert "Set-Cookie" not in answer.headers


def test_every_bad_code_gets_the_same_401(client: FlaskClient, connect: Any, app: Flask) -> None:
    connection_id, code = connect()
    with app.app_context():
        extensions.connection_store().revoke(connection_id)
        unknown = extensions.vault().new_code()
    answers = [
        client.post("/api/v1/token", headers=bearer(code)),
        client.post("/api/v1/token", headers=bearer(unknown)),
        client.post("/api/v1/token", headers=bearer("ccp_!!malformed")),
        client.post("/api/v1/token", headers={"Authorization": f"Basic {unknown}"}),
        client.post("/api/v1/token"),
    ]
    bodies = {a.get_data() for a in answers}
    assert {a.status_code for a in answers} == {401}
    assert len(bodies) == 1
    assert answers[0].get_json()["error"] == "invalid_token"
    assert all(a.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"' for a in answers)


@pytest.mark.parametrize("where", ["query", "form", "json"])
def test_a_code_outside_the_header_is_refused_unused(
    client: FlaskClient, connect: Any, entra: Emulator, read_row: Any, where: str
) -> None:
    connection_id, code = connect()
    entra.control("DELETE", "/_emulator/requests")
    kwargs: dict[str, Any] = {
        "query": {"query_string": {"code": code}},
        "form": {"data": {"code": code}},
        "json": {"json": {"code": code}},
    }[where]
    answer = client.post("/api/v1/token", headers=bearer(code), **kwargs)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_request"
    assert "Authorization header" in answer.get_json()["error_description"]
    assert read_row(connection_id).last_used_at is None  # the code was not used


def test_a_refused_refresh_token_gives_409_with_a_reconnect_link(
    client: FlaskClient, connect: Any, entra: Emulator, app: Flask
) -> None:
    connection_id, code = expired(entra, connect)
    entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", json={"username": "user@fabrikam.test"}
    )
    answer = client.post("/api/v1/token", headers=bearer(code))
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error"] == "reauthentication_required"
    assert body["reauthenticate_url"] == (
        f"{app.config['PUBLIC_URL']}/connections/{connection_id}/reconnect"
    )
    info = client.get("/api/v1/connection", headers=bearer(code)).get_json()
    assert info["status"] == "reauthentication_required"


def test_an_entra_outage_gives_503_with_retry_after(
    client: FlaskClient, connect: Any, entra: Emulator, read_row: Any
) -> None:
    connection_id, code = expired(entra, connect)
    before = read_row(connection_id).sealed_cache
    entra.control(
        "POST", "/_emulator/faults", json={"endpoint": "token", "status": 503, "retry_after": 2}
    )
    answer = client.post("/api/v1/token", headers=bearer(code))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.get_json()["error"] == "temporarily_unavailable"
    assert read_row(connection_id).sealed_cache == before


def test_another_resource_is_forbidden(client: FlaskClient, connect: Any, entra: Emulator) -> None:
    _, code = connect("sharepoint", "admin@fabrikam.test")
    entra.control("DELETE", "/_emulator/requests")
    answer = client.post(
        "/api/v1/token",
        headers=bearer(code),
        json={"scope": "https://storage.azure.com/user_impersonation"},
    )
    assert answer.status_code == 403
    assert entra.request_log(endpoint="token") == []


def test_connection_metadata(client: FlaskClient, connect: Any) -> None:
    connection_id, code = connect()
    answer = client.get("/api/v1/connection", headers=bearer(code))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["id"] == connection_id
    assert body["connector"] == "onedrive"
    assert body["status"] == "active"
    assert body["account"] == {
        "username": "user@fabrikam.test",
        "tenant_id": body["account"]["tenant_id"],
        "account_type": "work",
    }
    assert code not in answer.get_data(as_text=True)
    assert client.get("/api/v1/connection", headers=bearer("ccp_x")).status_code == 401


def test_openapi_describes_every_endpoint(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/token",
        "/connection",
        "/proxy/{path}",
        "/tables",
        "/tables/{table}",
    }
    assert "post" in doc["paths"]["/token"]
    assert set(doc["paths"]["/token"]["post"]["responses"]) >= {"200", "400", "401", "409", "503"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "error_description"]
    proxy = doc["paths"]["/proxy/{path}"]
    assert set(proxy) == {"get", "head"}  # read-only
    for operation in proxy.values():
        statuses = {"200", "206", "304", "400", "401", "405", "409", "429", "503"}
        assert set(operation["responses"]) == statuses
        names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"]}
        assert {"path", "Account"} <= names
    assert doc["components"]["parameters"]["Account"]["name"] == "account"
    table = doc["paths"]["/tables/{table}"]["get"]
    assert {p["name"] for p in table["parameters"]} >= {"table", "format", "top"}
    media = set(table["responses"]["200"]["content"])
    assert media == {"text/csv", "application/json", "application/x-ndjson"}
    assert "200" in doc["paths"]["/tables"]["get"]["responses"]
    served = client.get("/api/v1/openapi.json")
    assert served.data == (ROOT / "app" / "web" / "openapi.json").read_bytes()  # as it is
    assert doc["servers"] == [{"url": ".", "description": doc["servers"][0]["description"]}]


def limiter_store(db_url: Any) -> dict[str, str]:
    """Return the settings that put an extra portal's limits where this variant keeps them."""
    return {"REDIS_URL": db_url["REDIS_URL"]} if db_url.get("REDIS_URL") else {}


def test_rate_limits_per_code(
    make_portal: Callable[..., Flask], entra: Emulator, db_url: Any
) -> None:
    portal = make_portal(RATELIMIT_TOKEN="3/minute", **limiter_store(db_url))
    codes = []
    for connector_id in ("onedrive", "outlook"):
        _, code = connect_account(portal, entra, connector_id, account_type="work")
        assert code is not None
        codes.append(code)
    client = portal.test_client()
    statuses = [
        client.post("/api/v1/token", headers=bearer(codes[0])).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.post("/api/v1/token", headers=bearer(codes[0]))
    assert limited.headers.get("Retry-After")
    assert client.post("/api/v1/token", headers=bearer(codes[1])).status_code == 200


def test_rate_limits_per_client_address(make_portal: Callable[..., Flask], db_url: Any) -> None:
    """C26: one address spraying invalid codes is cut off; another address is not.

    With Redis the spray is split over two portals: the limit is shared, as between instances.
    """
    settings = {"RATELIMIT_IP": "5/minute", "RATELIMIT_TOKEN": "1000/minute"}
    shared = limiter_store(db_url)
    portals = [make_portal(**settings, **shared) for _ in range(2 if shared else 1)]
    clients = [portal.test_client() for portal in portals]
    # A fresh address per run: Redis keeps counts between runs within the minute.
    sprayer = {"REMOTE_ADDR": fresh_address()}
    stranger = {"REMOTE_ADDR": fresh_address()}
    statuses = [
        clients[n % len(clients)]
        .post(
            "/api/v1/token",
            headers=bearer(f"ccp_{secrets.token_urlsafe(32)}"),
            environ_base=sprayer,
        )
        .status_code
        for n in range(7)
    ]
    assert statuses == [401] * 5 + [429] * 2
    other = clients[0].post(
        "/api/v1/token", headers=bearer("ccp_" + "y" * 43), environ_base=stranger
    )
    assert other.status_code == 401


def test_c28_a_code_reaches_its_own_connection_only(
    client: FlaskClient, connect: Any, app: Flask
) -> None:
    """Two connections of one person: each code gets its own connection's token only."""
    files_id, files_code = connect("onedrive", "user@fabrikam.test")
    mail_id, mail_code = connect("outlook", "user@fabrikam.test")
    assert files_id != mail_id
    files = client.post("/api/v1/token", headers=bearer(files_code)).get_json()
    mail = client.post("/api/v1/token", headers=bearer(mail_code)).get_json()
    assert files["connector"] == "onedrive" and mail["connector"] == "outlook"
    assert files["access_token"] != mail["access_token"]
    assert "Files.Read" in files["scope"] and "Mail.Read" in mail["scope"]
    assert "Mail.Read" not in files["scope"]
    with app.app_context():
        extensions.connection_store().revoke(mail_id)
    assert client.post("/api/v1/token", headers=bearer(mail_code)).status_code == 401
    again = client.post("/api/v1/token", headers=bearer(files_code))
    assert again.status_code == 200 and again.get_json()["access_token"] == files["access_token"]
