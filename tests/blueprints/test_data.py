"""The read-only proxy and table exports, against the emulator over real HTTPS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from entra_emulator import Emulator

Connect = Callable[..., tuple[str, str | None]]
# Each of these would leave the connection's resource; all are refused before any request.
ESCAPES = [
    "https://evil.test/x",
    "/evil.test/x",
    "v1.0/me/../../evil",
    "v1.0/me/%2e%2e/%2e%2e/evil",
    "v1.0/me/%2E%2E/x",
    "v1.0%2F..%2Fevil",
    "v1.0/me\\..\\evil",
    "v1.0/me%5cevil",
    "v1.0/me@evil.test",
    "v1.0/me%40evil.test",
    "v1.0/me/./drive",
    "v1.0/sites/root",  # a SharePoint path for a OneDrive connection
    "api/data/v9.2/WhoAmI",  # a Dynamics path for a Graph connection
    "v2/me",
]


def bearer(code: str | None) -> dict[str, str]:
    """Return the Authorization header for a connection code."""
    assert code is not None
    return {"Authorization": f"Bearer {code}"}


def upstream_calls(entra: Emulator) -> list[dict[str, Any]]:
    """Return the requests the emulator's resource APIs have seen."""
    return [r for r in entra.request_log() if r.get("endpoint") in ("graph", "dynamics", "storage")]


def test_a_proxied_read_comes_back_with_a_fresh_token(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    answer = client.get("/api/v1/proxy/v1.0/me/drive/root/children", headers=bearer(code))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert isinstance(answer.get_json()["value"], list)
    assert answer.headers.get("request-id")  # the service's request id comes back
    assert code not in answer.get_data(as_text=True)
    assert "set-cookie" not in {k.lower() for k in answer.headers.keys()}
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ESCAPES)
def test_no_path_leaves_the_resource(
    client: FlaskClient, connect: Connect, entra: Emulator, path: str
) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    entra.control("DELETE", "/_emulator/requests")
    answer = client.get(f"/api/v1/proxy/{path}", headers=bearer(code))
    assert answer.status_code == 400, (path, answer.status_code, answer.get_data(as_text=True))
    assert answer.get_json()["error"] == "invalid_request"
    assert upstream_calls(entra) == []  # refused before any upstream call


def test_an_unconfigured_storage_account_is_refused(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    _, code = connect("azure-storage", "user@fabrikam.test")
    entra.control("DELETE", "/_emulator/requests")
    answer = client.get("/api/v1/proxy/?comp=list&account=someoneelse", headers=bearer(code))
    assert answer.status_code == 400 and "someoneelse" in answer.get_json()["error_description"]
    assert upstream_calls(entra) == []


def test_the_proxy_is_read_only(client: FlaskClient, connect: Connect) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    answer = client.post("/api/v1/proxy/v1.0/me", headers=bearer(code))
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert answer.get_json()["error"] == "method_not_allowed"


def test_an_unknown_code_gets_the_token_apis_401(client: FlaskClient) -> None:
    answer = client.get("/api/v1/proxy/v1.0/me", headers={"Authorization": "Bearer ccp_nope"})
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_token"


def test_tables_are_listed_for_the_callers_connector(client: FlaskClient, connect: Connect) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    listing = client.get("/api/v1/tables", headers=bearer(code)).get_json()
    assert [t["name"] for t in listing["tables"]] == ["files"]
    bad = client.get("/api/v1/tables/list-items", headers=bearer(code))
    assert bad.status_code == 400 and "table" in bad.get_json()["error_description"]
    bad = client.get("/api/v1/tables/files?format=xml", headers=bearer(code))
    assert bad.status_code == 400 and "format" in bad.get_json()["error_description"]
