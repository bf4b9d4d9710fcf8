"""An export's pages: the next one is read ahead while this one is encoded, never past top=."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping

from app.connectors import Connector
from app.connectors import catalogue
from app.data import tables
from app.data.pages import Pages

ROOT = "https://graph.test"
WAIT = 10.0  # seconds a positive check may wait for the reading thread; never reached when right


class Resource:
    """Three pages of two items; records which pages were asked for, from which thread."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.second_asked = threading.Event()

    def fetch(self, code: str, url: str, headers: Mapping[str, str], first: bool) -> bytes:
        number = int(url.rsplit("page=", 1)[1]) if "page=" in url else 1
        self.asked.append(number)
        if number == 2:
            self.second_asked.set()
        page: dict[str, object] = {"value": [{"id": f"{number}-a"}, {"id": f"{number}-b"}]}
        if number < 3:
            page["@odata.nextLink"] = f"{ROOT}/v1.0/me/drive/root/children?page={number + 1}"
        return json.dumps(page).encode()

    def base(self, connector: Connector, account: str | None) -> str:
        return ROOT


def pages(resource: Resource, top: int | None = None) -> Pages:
    onedrive = catalogue()["onedrive"]
    return Pages(resource, "code", onedrive, tables.for_connector("onedrive")["files"], {}, top)


def test_the_next_page_is_asked_for_while_this_one_is_still_being_read() -> None:
    resource = Resource()
    rows = pages(resource).rows()
    assert next(rows)["id"] == "1-a"  # the caller holds page 1's first row and asks no more
    assert resource.second_asked.wait(WAIT), "page 2 was not read ahead"
    assert [row["id"] for row in rows] == ["1-b", "2-a", "2-b", "3-a", "3-b"]
    assert resource.asked == [1, 2, 3]


def test_no_page_is_read_ahead_once_top_is_filled() -> None:
    resource = Resource()  # pages end at the page that fills top= (the caller cuts the rest)
    assert [row["id"] for row in pages(resource, top=2).rows()] == ["1-a", "1-b"]
    assert resource.asked == [1]
    resource = Resource()
    assert [row["id"] for row in pages(resource, top=3).rows()] == ["1-a", "1-b", "2-a", "2-b"]
    assert resource.asked == [1, 2]
