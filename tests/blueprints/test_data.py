"""The read-only proxy and table exports, against the emulator over real HTTPS."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

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
    labels = {"connector": "onedrive", "status": "200"}
    counted = REGISTRY.get_sample_value("ccp_proxy_requests_total", labels) or 0.0
    answer = client.get("/api/v1/proxy/v1.0/me/drive/root/children", headers=bearer(code))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert REGISTRY.get_sample_value("ccp_proxy_requests_total", labels) == counted + 1
    assert isinstance(answer.get_json()["value"], list)
    assert answer.headers.get("request-id")  # the service's request id comes back
    assert code is not None and code not in answer.get_data(as_text=True)
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


# -- streaming, ranges, refresh and throttling against the emulator's data plane --------------

BIG = "v1.0/me/drive/root:/big.bin:/content"


def direct(
    entra: Emulator, client: FlaskClient, code: str | None, path: str, **headers: str
) -> Any:
    """Fetch a Graph path straight from the emulator with the connection's access token."""
    token = client.post("/api/v1/token", headers=bearer(code)).get_json()["access_token"]
    session = requests.Session()
    session.trust_env = False  # the emulator's CA, whatever the environment says
    session.verify = str(entra.ca_path)
    url = f"{entra.base_url}/graph/{path}"
    return session.get(url, headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)


def refreshes(entra: Emulator) -> int:
    """Return how many refresh-token grants the emulator has answered."""
    return len(entra.request_log(endpoint="token", grant_type="refresh_token"))


def test_a_file_streams_through_byte_for_byte_with_ranges_and_etags(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    entra.control("POST", "/_emulator/data", json={"big_file_bytes": 3 * 1024 * 1024 + 17})
    _, code = connect("onedrive", "user@fabrikam.test")
    whole = client.get(f"/api/v1/proxy/{BIG}", headers=bearer(code))
    expected = direct(entra, client, code, BIG)
    assert whole.status_code == 200 and expected.status_code == 200
    assert len(whole.data) == 3 * 1024 * 1024 + 17 and whole.data == expected.content
    assert whole.headers["Content-Length"] == str(len(whole.data))

    part = client.get(f"/api/v1/proxy/{BIG}", headers=bearer(code) | {"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == expected.content[100:200]
    assert part.headers["Content-Range"].startswith("bytes 100-199/")

    etag = whole.headers["ETag"]
    same = client.get(f"/api/v1/proxy/{BIG}", headers=bearer(code) | {"If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""


def test_a_redirect_to_the_download_url_is_followed_and_a_half_read_body_frees_nothing_wrong(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    entra.control("POST", "/_emulator/data", json={"content_redirect": True})
    _, code = connect("onedrive", "user@fabrikam.test")
    part = client.get(f"/api/v1/proxy/{BIG}", headers=bearer(code) | {"Range": "bytes=10-19"})
    expected = direct(entra, client, code, BIG)  # requests follows the 302 the same way
    assert part.status_code == 206 and part.data == expected.content[10:20]
    paths = [r["path"] for r in upstream_calls(entra)]
    assert any("/_download/" in path for path in paths), paths  # Graph's 302, then the file
    for _ in range(3):  # a tool that leaves after the first chunk; the next call still works
        started = client.get(f"/api/v1/proxy/{BIG}", headers=bearer(code), buffered=False)
        assert started.status_code == 200 and next(iter(started.response))
        started.close()
    me = client.get("/api/v1/proxy/v1.0/me/drive", headers=bearer(code))
    assert me.status_code == 200 and me.get_json()["id"]


def test_a_401_from_the_resource_means_one_refresh_and_one_retry(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    assert client.get("/api/v1/proxy/v1.0/me/drive", headers=bearer(code)).status_code == 200
    before = refreshes(entra)
    entra.control(
        "POST", "/_emulator/faults", json={"endpoint": "graph", "status": 401, "count": 1}
    )
    answer = client.get("/api/v1/proxy/v1.0/me/drive", headers=bearer(code))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert refreshes(entra) == before + 1


def test_throttling_is_handed_back_with_retry_after_never_retried(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    fault = {"endpoint": "graph", "status": 429, "retry_after": 7, "count": 1}
    entra.control("POST", "/_emulator/faults", json=fault)
    entra.control("DELETE", "/_emulator/requests")
    answer = client.get("/api/v1/proxy/v1.0/me/drive", headers=bearer(code))
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert len(upstream_calls(entra)) == 1  # handed back, not retried in a loop


def team_site(client: FlaskClient, code: str | None) -> str:
    """Return the id of the tenant's team site, from the sites table."""
    sites = client.get("/api/v1/tables/sites?format=json", headers=bearer(code)).get_json()
    return next(s["id"] for s in sites if str(s.get("webUrl", "")).endswith("/sites/Team"))


def test_list_items_export_every_page_as_csv_across_token_expiry(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    entra.control("POST", "/_emulator/data", json={"list_items": {"Tasks": 12000}})
    # Tokens that live less than MSAL's 5-minute margin are never fresh: each page refreshes.
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 60})
    _, code = connect("sharepoint", "user@fabrikam.test")
    site = team_site(client, code)
    before = refreshes(entra)
    answer = client.get(f"/api/v1/tables/list-items?site={site}&list=Tasks", headers=bearer(code))
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert len(rows) == 12000
    assert refreshes(entra) - before >= 12000 // 5000  # tokens renewed while the export ran
    first = direct(entra, client, code, f"v1.0/sites/{site}/lists/Tasks/items?expand=fields")
    for item in first.json()["value"]:
        row = next(r for r in rows if r["id"] == item["id"])
        assert row["fields.Title"] == item["fields"]["Title"]
        assert row["fields.Status"] == str(item["fields"].get("Status", ""))
    assert len({r["id"] for r in rows}) == 12000


def test_a_throttled_page_is_waited_out(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    _, code = connect("sharepoint", "user@fabrikam.test")
    site = team_site(client, code)
    fault = {"endpoint": "graph", "status": 429, "retry_after": 1, "count": 1}
    entra.control("POST", "/_emulator/faults", json=fault)
    answer = client.get(
        f"/api/v1/tables/list-items?site={site}&list=Tasks&format=ndjson", headers=bearer(code)
    )
    lines = [json.loads(line) for line in answer.get_data(as_text=True).splitlines()]
    assert answer.status_code == 200 and lines and "error" not in lines[-1]


def test_top_stops_early_and_bad_parameters_are_named(
    client: FlaskClient, connect: Connect
) -> None:
    _, code = connect("sharepoint", "user@fabrikam.test")
    site = team_site(client, code)
    some = client.get(
        f"/api/v1/tables/list-items?site={site}&list=Tasks&top=3&format=json", headers=bearer(code)
    )
    assert some.status_code == 200 and len(some.get_json()) == 3
    for query, named in (("list-items?site=..%2Fx&list=Tasks", "site"), ("list-items", "list"),
                         ("lists?top=0", "top")):  # fmt: skip
        bad = client.get(f"/api/v1/tables/{query}", headers=bearer(code))
        assert bad.status_code == 400 and named in bad.get_json()["error_description"], query
