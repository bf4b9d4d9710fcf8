"""An export's pages: the next one is asked for before this one is encoded, never past top=."""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Mapping

from app.connectors import Connector
from app.connectors import catalogue
from app.data import tables
from app.data.pages import Pages

ROOT = "https://graph.test"


class Resource:
    """Three pages of two items; records which pages were asked for and which were read."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.read: list[int] = []
        self.closed = False

    def line(self, root: str) -> Resource:
        assert root == ROOT
        return self

    def ask(
        self, code: str, url: str, headers: Mapping[str, str], first: bool
    ) -> Callable[[], bytes]:
        number = int(url.rsplit("page=", 1)[1]) if "page=" in url else 1
        assert first == (number == 1)  # only the export's first request may be an HTTP error
        self.asked.append(number)
        page: dict[str, object] = {"value": [{"id": f"{number}-a"}, {"id": f"{number}-b"}]}
        if number < 3:
            page["@odata.nextLink"] = f"{ROOT}/v1.0/me/drive/root/children?page={number + 1}"

        def body() -> bytes:
            self.read.append(number)
            return json.dumps(page).encode()

        return body

    def close(self) -> None:
        self.closed = True

    def base(self, connector: Connector, account: str | None) -> str:
        return ROOT


def pages(resource: Resource, top: int | None = None) -> Pages:
    onedrive = catalogue()["onedrive"]
    return Pages(resource, "code", onedrive, tables.for_connector("onedrive")["files"], {}, top)


def test_the_next_page_is_asked_for_before_this_ones_rows_are_handed_on() -> None:
    resource = Resource()
    rows = pages(resource).rows()
    assert next(rows)["id"] == "1-a"
    assert resource.asked == [1, 2] and resource.read == [1]  # page 2 on its way, unread
    assert [row["id"] for row in rows] == ["1-b", "2-a", "2-b", "3-a", "3-b"]
    assert resource.asked == resource.read == [1, 2, 3] and resource.closed


def test_no_page_is_asked_for_once_top_is_filled() -> None:
    resource = Resource()  # pages end at the page that fills top= (the caller cuts the rest)
    assert [row["id"] for row in pages(resource, top=2).rows()] == ["1-a", "1-b"]
    assert resource.asked == [1]
    resource = Resource()
    assert [row["id"] for row in pages(resource, top=3).rows()] == ["1-a", "1-b", "2-a", "2-b"]
    assert resource.asked == [1, 2]


def test_an_export_left_early_closes_its_connection() -> None:
    resource = Resource()
    rows = pages(resource).rows()
    next(rows)
    assert isinstance(rows, Generator)
    rows.close()
    assert resource.closed and resource.read == [1]
