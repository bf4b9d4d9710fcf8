"""Graph's data: sites, lists and items, OneDrive files with ranges, mail with paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from entra_emulator import Emulator
from entra_emulator.content import expected

Token = Callable[[str, list[str]], str]
GRAPH = "https://graph.microsoft.com"
SCOPES = [f"{GRAPH}/Sites.Read.All", f"{GRAPH}/Files.Read.All", f"{GRAPH}/Mail.Read"]


@pytest.fixture
def graph(emu: Emulator, http: requests.Session, token: Token) -> Callable[..., requests.Response]:
    """Return a GET helper for user@fabrikam.test's Graph (sites, files and mail consented)."""
    headers = {"Authorization": f"Bearer {token('user@fabrikam.test', SCOPES)}"}

    def get(path: str, **extra: str) -> requests.Response:
        url = path if path.startswith("https://") else f"{emu.base_url}/graph/v1.0/{path}"
        return http.get(url, headers=headers | extra, timeout=10)

    return get


def follow(get: Callable[..., requests.Response], path: str) -> tuple[list[Any], int]:
    """Return every value of a collection by following @odata.nextLink, and the page count."""
    values, pages, url = [], 0, path
    while url:
        page = get(url)
        assert page.status_code == 200, page.text
        values += page.json()["value"]
        pages += 1
        url = page.json().get("@odata.nextLink")
    return values, pages


def team_site(get: Callable[..., requests.Response]) -> str:
    """Return the id of the tenant's team site."""
    (site,) = get("sites?search=team").json()["value"]
    return str(site["id"])


def test_sites_search_and_lookup(graph: Callable[..., requests.Response]) -> None:
    everything = graph("sites?search=*").json()["value"]
    assert {s["displayName"] for s in everything} == {"Communication site", "Fabrikam Team"}
    site_id = team_site(graph)
    assert (
        graph(f"sites/{site_id}").json()["webUrl"] == "https://fabrikam.sharepoint.com/sites/Team"
    )
    by_path = graph("sites/fabrikam.sharepoint.com:/sites/Team").json()
    assert by_path["id"] == site_id
    assert graph("sites/root").json()["webUrl"] == "https://fabrikam.sharepoint.com"
    missing = graph("sites/nowhere.sharepoint.com,1,2")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "itemNotFound"


def test_every_graph_answer_carries_request_ids(graph: Callable[..., requests.Response]) -> None:
    answer = graph("sites/root", **{"client-request-id": "c0ffee00-0000-0000-0000-000000000001"})
    assert answer.headers["client-request-id"] == "c0ffee00-0000-0000-0000-000000000001"
    assert answer.headers["request-id"]
    error = graph("sites/root/lists/nope")
    assert error.status_code == 404 and error.headers["request-id"]
    inner = error.json()["error"]["innerError"]
    assert inner["request-id"] == error.headers["request-id"]


def test_lists_and_typed_fields(graph: Callable[..., requests.Response]) -> None:
    site_id = team_site(graph)
    lists = {x["name"]: x for x in graph(f"sites/{site_id}/lists").json()["value"]}
    assert {"Tasks", "Contacts", "Inventory", "Documents"} <= set(lists)
    assert lists["Documents"]["list"]["template"] == "documentLibrary"
    inventory = lists["Inventory"]["id"]
    page = graph(f"sites/{site_id}/lists/{inventory}/items?expand=fields").json()
    assert len(page["value"]) == 200 and "@odata.nextLink" in page  # Graph's default page
    fields = page["value"][2]["fields"]  # item 3: values derived from its index
    assert (fields["id"], fields["Title"], fields["SKU"]) == ("3", "Item 3", "SKU 3")
    assert (fields["Quantity"], fields["UnitPrice"], fields["Discontinued"]) == (111, 237.57, False)
    assert fields["Category"] == "Accessories" and fields["LastCounted"] == "2025-01-07T06:00:00Z"
    plain = graph(f"sites/{site_id}/lists/Tasks/items?$top=1").json()["value"][0]
    assert "fields" not in plain
    some = graph(f"sites/{site_id}/lists/Tasks/items?$expand=fields($select=Status)&$top=1")
    assert set(some.json()["value"][0]["fields"]) == {"@odata.etag", "id", "Status"}


def test_list_items_page_to_the_end(graph: Callable[..., requests.Response]) -> None:
    site_id = team_site(graph)
    items, pages = follow(graph, f"sites/{site_id}/lists/Inventory/items?expand=fields")
    assert len(items) == 250 and pages == 2
    assert [i["id"] for i in items] == [str(n) for n in range(1, 251)]


def test_a_list_of_twelve_thousand_items(
    emu: Emulator, graph: Callable[..., requests.Response]
) -> None:
    answer = emu.control("POST", "/_emulator/data", json={"list_items": {"Inventory": 12000}})
    assert answer.json()["list_items"]["Inventory"] == 12000
    site_id = team_site(graph)
    items, pages = follow(graph, f"sites/{site_id}/lists/Inventory/items?expand=fields&$top=5000")
    assert len(items) == 12000 and pages == 3
    assert items[-1]["fields"]["Title"] == "Item 12000"
    capped = graph(f"sites/{site_id}/lists/Inventory/items?$top=9000").json()["value"]
    assert len(capped) == 5000  # the emulator's (inferred) maximum page


def test_drive_tree_by_path_and_id(graph: Callable[..., requests.Response]) -> None:
    drive = graph("me/drive").json()
    assert drive["driveType"] == "business" and drive["owner"]["user"]["displayName"]
    root = {i["name"]: i for i in graph("me/drive/root/children").json()["value"]}
    assert set(root) == {"big.bin", "Documents", "Photos", "Shared"}
    assert root["Documents"]["folder"]["childCount"] == 3
    assert root["big.bin"]["size"] == 4 * 1024 * 1024
    notes = graph("me/drive/root:/Documents/Notes:/children").json()["value"]
    assert [n["name"] for n in notes] == ["meeting-2025-11-27.txt"]
    by_id = graph(f"me/drive/items/{root['Photos']['id']}/children").json()["value"]
    assert [p["name"] for p in by_id] == ["holiday-01.jpg", "holiday-02.jpg", "holiday-03.jpg"]
    item = graph("me/drive/root:/Documents/Roadmap.docx").json()
    assert item["parentReference"]["path"] == "/drive/root:/Documents"
    assert graph(f"me/drive/items/{item['id']}").json()["name"] == "Roadmap.docx"
    assert graph("me/drive/root:/nope.txt").status_code == 404


def test_site_library(graph: Callable[..., requests.Response]) -> None:
    site_id = team_site(graph)
    names = [i["name"] for i in graph(f"sites/{site_id}/drive/root/children").json()["value"]]
    assert names == ["Policies", "Templates"]
    files = graph(f"sites/{site_id}/drive/root:/Policies:/children").json()["value"]
    assert {f["name"] for f in files} == {"Travel policy.pdf", "Expenses.xlsx"}


def test_content_ranges_etag_and_headers(graph: Callable[..., requests.Response]) -> None:
    whole = graph("me/drive/root:/Documents/Roadmap.docx:/content")
    assert whole.status_code == 200 and whole.content == expected(
        "/Documents/Roadmap.docx", 0, 20480
    )
    assert whole.headers["Content-Length"] == "20480"
    assert whole.headers["Content-Type"].endswith("wordprocessingml.document")
    assert whole.headers["Content-Disposition"] == "attachment; filename*=UTF-8''Roadmap.docx"
    part = graph("me/drive/root:/big.bin:/content", Range="bytes=1000000-1000099")
    assert part.status_code == 206 and part.content == expected("/big.bin", 1000000, 100)
    assert part.headers["Content-Range"] == f"bytes 1000000-1000099/{4 * 1024 * 1024}"
    item = graph("me/drive/root:/big.bin").json()
    assert part.headers["ETag"] == item["eTag"]
    unchanged = graph(f"me/drive/items/{item['id']}/content", **{"If-None-Match": item["eTag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    tail = graph("me/drive/root:/big.bin:/content", Range="bytes=-10")
    assert tail.content == expected("/big.bin", 4 * 1024 * 1024 - 10, 10)
    beyond = graph("me/drive/root:/big.bin:/content", Range="bytes=99999999-")
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */4194304"
    assert graph("me/drive/root:/Photos:/content").status_code == 400


def test_big_file_size_follows_the_control_plane(
    emu: Emulator, http: requests.Session, graph: Callable[..., requests.Response]
) -> None:
    before = graph("me/drive/root:/big.bin").json()["eTag"]
    emu.control("POST", "/_emulator/data", json={"big_file_bytes": 100_001})
    item = graph("me/drive/root:/big.bin").json()
    assert item["size"] == 100_001 and item["eTag"] != before
    download = http.get(item["@microsoft.graph.downloadUrl"], timeout=10)  # no Authorization
    assert download.content == expected("/big.bin", 0, 100_001)
    emu.control("POST", "/_emulator/data", json={"content_redirect": True})
    moved = graph("me/drive/root:/big.bin:/content", Range="bytes=5-9")
    assert moved.status_code == 206 and moved.history[0].status_code == 302
    assert moved.content == expected("/big.bin", 5, 5)
    forged = http.get(f"{emu.base_url}/graph/_download/not-a-token", timeout=10)
    assert forged.status_code == 401


def test_messages_page_select_and_filter(graph: Callable[..., requests.Response]) -> None:
    first = graph("me/messages").json()
    assert len(first["value"]) == 10 and "$skip=10" in first["@odata.nextLink"]
    everything, pages = follow(graph, "me/messages?$top=100&$select=subject,receivedDateTime")
    assert len(everything) == 300 and pages == 3
    assert set(everything[0]) == {"@odata.etag", "id", "subject", "receivedDateTime"}
    assert everything[0]["receivedDateTime"] == "2025-11-28T09:00:00Z"
    assert everything[0]["subject"] == "Weekly report #1"
    recent, _ = follow(graph, "me/messages?$filter=receivedDateTime ge 2025-11-27T00:00:00Z")
    assert len(recent) == 15  # one every 2 h 17 min back from 2025-11-28T09:00Z
    assert all(m["receivedDateTime"] >= "2025-11-27T00:00:00Z" for m in recent)
    too_big = graph("me/messages?$top=5000").json()["value"]
    assert len(too_big) == 300  # capped at 1000, and the mailbox has 300
    assert graph("me/messages?$select=nope").status_code == 400
    assert graph("me/messages?$filter=subject eq 'x'").status_code == 400


def test_mail_folders_and_one_message(graph: Callable[..., requests.Response]) -> None:
    folders = {f["displayName"]: f for f in graph("me/mailFolders").json()["value"]}
    assert folders["Inbox"]["totalItemCount"] == 300
    inbox, _ = follow(graph, f"me/mailFolders/{folders['Inbox']['id']}/messages?$top=250")
    assert len(inbox) == 300
    assert graph("me/mailFolders/inbox/messages?$top=1").json()["value"][0]["id"] == inbox[0]["id"]
    assert graph("me/mailFolders/drafts/messages").json()["value"] == []
    one = graph(f"me/messages/{inbox[5]['id']}").json()
    assert one["subject"] == inbox[5]["subject"]


def test_users_see_only_their_own_mail_and_files(
    emu: Emulator, http: requests.Session, token: Token, graph: Callable[..., requests.Response]
) -> None:
    theirs = graph("me/messages?$top=1").json()["value"][0]["id"]
    their_file = graph("me/drive/root:/Documents/Roadmap.docx").json()["id"]
    mine = {"Authorization": f"Bearer {token('admin@fabrikam.test', SCOPES)}"}
    base = f"{emu.base_url}/graph/v1.0"
    assert http.get(f"{base}/me/messages/{theirs}", headers=mine).status_code == 404
    assert http.get(f"{base}/me/drive/items/{their_file}", headers=mine).status_code == 404
    assert http.get(f"{base}/me/drive/root:/Documents/Roadmap.docx", headers=mine).ok


def test_scopes_are_checked_per_family(emu: Emulator, http: requests.Session, token: Token) -> None:
    files_only = {"Authorization": f"Bearer {token('user@fabrikam.test', [SCOPES[1]])}"}
    base = f"{emu.base_url}/graph/v1.0"
    assert http.get(f"{base}/me/drive/root/children", headers=files_only).ok
    mail = http.get(f"{base}/me/mailFolders", headers=files_only)
    assert mail.status_code == 403 and mail.json()["error"]["code"] == "ErrorAccessDenied"
    sites = http.get(f"{base}/sites?search=*", headers=files_only)
    assert sites.status_code == 403 and sites.json()["error"]["code"] == "accessDenied"
