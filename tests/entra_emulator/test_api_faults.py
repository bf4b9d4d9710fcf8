"""Faults on the resource APIs (throttling, one 401), the request log, the data knobs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import requests

from entra_emulator import Emulator
from entra_emulator import serve
from entra_emulator.content import expected
from entra_emulator.content import plan

Token = Callable[[str, list[str]], str]
GRAPH = "https://graph.microsoft.com"
FILES = [f"{GRAPH}/Files.Read.All", f"{GRAPH}/Mail.Read"]
DYNAMICS = "https://contoso.crm.dynamics.com/user_impersonation"
STORAGE = "https://storage.azure.com/user_impersonation"


def arm(emu: Emulator, **fault: object) -> None:
    """Arm one fault through the control plane."""
    answer = emu.control("POST", "/_emulator/faults", json=fault)
    assert answer.status_code == 201, answer.text


def test_graph_throttling_for_the_next_requests(
    emu: Emulator, http: requests.Session, token: Token
) -> None:
    headers = {"Authorization": f"Bearer {token('user@fabrikam.test', FILES)}"}
    url = f"{emu.base_url}/graph/v1.0/me/drive/root/children"
    emu.control("DELETE", "/_emulator/requests")
    arm(emu, endpoint="graph", status=429, retry_after=3, count=2, path_prefix="/v1.0/me/drive")
    assert http.get(f"{emu.base_url}/graph/v1.0/me/messages", headers=headers).ok  # other path
    for _ in range(2):
        throttled = http.get(url, headers=headers)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
        assert throttled.json()["error"]["code"] == "TooManyRequests"
        assert throttled.headers["request-id"]
    assert http.get(url, headers=headers).ok  # the count is used up
    log = emu.request_log(endpoint="graph")
    assert [(e["path"], e["status"]) for e in log] == [
        ("/graph/v1.0/me/messages", 200),
        ("/graph/v1.0/me/drive/root/children", 429),
        ("/graph/v1.0/me/drive/root/children", 429),
        ("/graph/v1.0/me/drive/root/children", 200),
    ]
    assert [e.get("fault", False) for e in log] == [False, True, True, False]
    assert log[-1]["username"] == "user@fabrikam.test"


def test_one_401_then_the_same_token_works(
    emu: Emulator, http: requests.Session, token: Token
) -> None:
    headers = {"Authorization": f"Bearer {token('user@fabrikam.test', FILES)}"}
    url = f"{emu.base_url}/graph/v1.0/me/messages?$top=1"
    arm(emu, endpoint="graph", status=401, count=1)
    refused = http.get(url, headers=headers)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert http.get(url, headers=headers).ok
    assert len(emu.request_log(endpoint="graph", status=401)) == 1
    assert emu.request_log(endpoint="token", grant_type="refresh_token") == []


def test_dataverse_and_storage_faults_speak_their_service(
    emu: Emulator, http: requests.Session, token: Token
) -> None:
    dynamics = {"Authorization": f"Bearer {token('user@contoso.test', [DYNAMICS])}"}
    arm(emu, endpoint="dynamics", status=429, retry_after=9, count=1)
    base = f"{emu.base_url}/dynamics/contoso.crm.dynamics.com/api/data/v9.2"
    throttled = http.get(f"{base}/accounts", headers=dynamics)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "9"
    assert throttled.json()["error"]["code"] == "0x80072322"
    storage = {
        "Authorization": f"Bearer {token('user@fabrikam.test', [STORAGE])}",
        "x-ms-version": "2021-08-06",
    }
    arm(emu, endpoint="storage", status=503, retry_after=1, count=1, path_prefix="/exports")
    busy = http.get(f"{emu.base_url}/storage/demostorage/exports/big.bin", headers=storage)
    assert busy.status_code == 503 and busy.headers["x-ms-error-code"] == "ServerBusy"
    assert "<Code>ServerBusy</Code>" in busy.text and busy.headers["Retry-After"] == "1"
    arm(emu, endpoint="storage", status=401, count=1)
    expired = http.get(f"{emu.base_url}/storage/demostorage/?comp=list", headers=storage)
    assert expired.status_code == 401 and expired.headers["WWW-Authenticate"]
    assert [e["status"] for e in emu.request_log(endpoint="storage")] == [503, 401]


def test_fault_requests_are_checked(emu: Emulator) -> None:
    bad = [
        {"endpoint": "sharepoint", "status": 429},
        {"endpoint": "graph", "status": 200},
        {"endpoint": "graph", "status": 429, "count": 0},
        {"endpoint": "graph", "status": 429, "path_prefix": "v1.0"},
    ]
    for fault in bad:
        answer = emu.control("POST", "/_emulator/faults", json=fault)
        assert answer.status_code == 400, fault


def test_data_knobs_are_checked_and_reset(emu: Emulator) -> None:
    data = emu.control("GET", "/_emulator/data").json()
    assert data["big_file_bytes"] == 4 * 1024 * 1024 and data["messages"] == 300
    assert data["list_items"] == {"Tasks": 45, "Contacts": 120, "Inventory": 250}
    assert data["page_sizes"]["messages"] == 10 and data["page_sizes"]["dataverse"] == 5000
    changed = emu.control("POST", "/_emulator/data", json={"list_items": 7, "messages": 12000})
    assert set(changed.json()["list_items"].values()) == {7}
    refused = [
        {"messages": -1},
        {"list_items": {"Nope": 1}},
        {"rows": {"x": 1}},
        {"page_sizes": {"messages": 0}},
        {"sizes": 1},
        {"generated_blobs": {"y": 1}},
    ]
    for body in refused:
        assert emu.control("POST", "/_emulator/data", json=body).status_code == 400, body
    emu.reset()
    assert emu.control("GET", "/_emulator/data").json()["messages"] == 300


def test_portal_settings_name_the_storage_accounts(emu: Emulator) -> None:
    settings = emu.portal_settings()
    assert settings["STORAGE_ACCOUNTS"] == ["demostorage"]
    urls = settings["RESOURCE_URLS"]
    assert (
        urls["https://demostorage.blob.core.windows.net"] == f"{emu.base_url}/storage/demostorage"
    )
    assert urls["https://storage.azure.com"] == f"{emu.base_url}/storage/demostorage"
    assert urls["https://graph.microsoft.com"] == f"{emu.base_url}/graph"


def test_world_file_sizes_the_data(tmp_path: Path) -> None:
    world = tmp_path / "world.toml"
    text = (Path(__file__).parents[2] / "entra_emulator" / "world.toml").read_text()
    world.write_text(text.replace("big_file_bytes = 4194304", "big_file_bytes = 1234"))
    with serve(config=world) as small:
        assert small.control("GET", "/_emulator/data").json()["big_file_bytes"] == 1234


def test_content_formula_and_ranges() -> None:
    assert expected("s", 0, 32) == hashlib.sha256(b"s:0").digest()
    assert expected("s", 40, 4) == hashlib.sha256(b"s:1").digest()[8:12]
    assert plan(10, '"e"', "bytes=2-4").status == 206
    assert plan(10, '"e"', "bytes=0-1,5-6").status == 200  # several ranges: the whole file
    assert plan(10, '"{A},1"', None, '"{A},1"').status == 304  # tags may hold commas
