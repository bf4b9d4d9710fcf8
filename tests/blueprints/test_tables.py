"""Every connector's tables, exported to the end against the emulator's data."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from entra_emulator import Emulator

Connect = Callable[..., tuple[str, str | None]]


def export(client: FlaskClient, code: str | None, query: str) -> Any:
    """Return a table's rows as JSON, asserting the export answered 200."""
    assert code is not None
    answer = client.get(f"/api/v1/tables/{query}", headers={"Authorization": f"Bearer {code}"})
    assert answer.status_code == 200, (query, answer.get_data(as_text=True)[:300])
    return answer


def test_dataverse_rows_follow_every_page(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    entra.control("POST", "/_emulator/data", json={"rows": {"accounts": 11000}})
    _, code = connect("dynamics", "user@contoso.test")
    rows = export(client, code, "entity?set=accounts&format=ndjson").get_data(as_text=True)
    parsed = [json.loads(line) for line in rows.splitlines()]
    assert len(parsed) == 11000  # three pages at Dataverse's 5,000
    pages = entra.request_log(endpoint="dynamics")
    assert len([p for p in pages if "accounts" in str(p.get("path"))]) == 3
    some = export(client, code, "entity?set=accounts&select=name&top=5&format=json").get_json()
    assert len(some) == 5 and all("name" in row for row in some)
    me = export(client, code, "whoami?format=json").get_json()
    assert len(me) == 1 and me[0]["UserId"]


def test_a_later_page_that_fails_ends_the_stream_with_an_error_line(
    client: FlaskClient, connect: Connect, entra: Emulator
) -> None:
    entra.control("POST", "/_emulator/data", json={"rows": {"accounts": 15000}})
    _, code = connect("dynamics", "user@contoso.test")
    answer = client.get(
        "/api/v1/tables/entity?set=accounts&format=ndjson",
        headers={"Authorization": f"Bearer {code}"},
        buffered=False,
    )
    assert answer.status_code == 200  # the first page is read; the second may be in flight
    fault = {"endpoint": "dynamics", "status": 500, "count": 5}
    entra.control("POST", "/_emulator/faults", json=fault)  # so page 2 or 3 fails
    lines = [json.loads(line) for line in answer.get_data(as_text=True).splitlines()]
    assert lines[-1]["error"] == "export_interrupted", lines[-1]
    assert 5000 <= len(lines) - 1 < 15000 and "error" not in lines[-2]
    assert len({row["accountid"] for row in lines[:-1]}) == len(lines) - 1


def test_a_refused_first_page_keeps_the_resources_status_and_words(
    client: FlaskClient, connect: Connect
) -> None:
    _, code = connect("dynamics", "user@fabrikam.test")  # not a user of contoso's organization
    answer = client.get("/api/v1/tables/whoami", headers={"Authorization": f"Bearer {code}"})
    assert answer.status_code == 403 and answer.get_json()["error"] == "resource_refused"


def test_storage_containers_and_blobs(client: FlaskClient, connect: Connect) -> None:
    _, code = connect("azure-storage", "user@fabrikam.test")
    containers = list(csv.DictReader(io.StringIO(export(client, code, "containers").text)))
    assert {"reports", "exports", "raw"} <= {c["name"] for c in containers}
    blobs = export(client, code, "blobs?container=reports&format=json").get_json()
    assert any(b["name"] == "2025/10/summary.csv" for b in blobs)
    assert all("Content-Length" in b for b in blobs)
    some = export(client, code, "blobs?container=reports&prefix=2025/10/&format=json").get_json()
    assert some and all(b["name"].startswith("2025/10/") for b in some)


def test_onedrive_files_walk_every_folder(client: FlaskClient, connect: Connect) -> None:
    _, code = connect("onedrive", "user@fabrikam.test")
    top = export(client, code, "files?format=json").get_json()
    walked = export(client, code, "files?recursive=true&format=json").get_json()
    names = {row["name"] for row in walked}
    assert {"Documents", "Photos", "big.bin"} <= {row["name"] for row in top}
    assert {"Roadmap.docx", "meeting-2025-11-27.txt", "holiday-03.jpg"} <= names
    assert len(walked) > len(top)
    docs = export(client, code, "files?path=Documents&format=json").get_json()
    assert "Roadmap.docx" in {row["name"] for row in docs}


def test_outlook_messages_and_folders(client: FlaskClient, connect: Connect) -> None:
    _, code = connect("outlook", "user@fabrikam.test")
    every = export(client, code, "messages?format=json").get_json()
    assert len(every) >= 300  # paged at Graph's page size, followed to the end
    recent = export(client, code, "messages?since=2025-11-27&format=json").get_json()
    assert 0 < len(recent) < len(every)
    assert all(row["receivedDateTime"] >= "2025-11-27" for row in recent)
    folders = export(client, code, "folders?format=json").get_json()
    assert any(f.get("displayName") == "Inbox" for f in folders)
