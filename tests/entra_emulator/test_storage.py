"""Blob Storage: listing XML and its markers, Get Blob ranges, conditional reads, the SDK."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient  # the client-tests extra: make test installs it

from entra_emulator import Emulator
from entra_emulator.content import expected

Token = Callable[[str, list[str]], str]
STORAGE = "https://storage.azure.com/user_impersonation"
Get = Callable[..., requests.Response]


@pytest.fixture
def reader_token(token: Token) -> str:
    """Return a Storage token of user@fabrikam.test (Storage Blob Data Reader)."""
    return token("user@fabrikam.test", [STORAGE])


@pytest.fixture
def blobs(emu: Emulator, http: requests.Session, reader_token: str) -> Get:
    """Return a request helper for the demostorage account (GET unless method= says)."""
    headers = {"Authorization": f"Bearer {reader_token}", "x-ms-version": "2021-08-06"}

    def call(path: str, method: str = "GET", **extra: str) -> requests.Response:
        url = f"{emu.base_url}/storage/demostorage/{path}"
        return http.request(method, url, headers=headers | extra, timeout=10)

    return call


def names(answer: requests.Response, tag: str) -> list[str]:
    """Return the Name of every element with this tag in a listing."""
    tree = ElementTree.fromstring(answer.content)
    return [str(e.findtext("Name")) for e in tree.iter(tag)]


def test_list_containers_xml(blobs: Get) -> None:
    answer = blobs("?comp=list")
    assert answer.headers["Content-Type"].startswith("application/xml")
    assert answer.headers["x-ms-request-id"] and answer.headers["x-ms-version"] == "2021-08-06"
    tree = ElementTree.fromstring(answer.content)
    assert tree.tag == "EnumerationResults" and tree.get("ServiceEndpoint", "").endswith("/")
    assert names(answer, "Container") == ["exports", "raw", "reports"]  # alphabetical
    properties = tree.find("Containers/Container/Properties")
    assert properties is not None and properties.findtext("Etag", "").startswith('"0x8D')
    assert properties.findtext("Last-Modified", "").endswith(" GMT")
    first = blobs("?comp=list&maxresults=2")
    marker = ElementTree.fromstring(first.content).findtext("NextMarker")
    assert names(first, "Container") == ["exports", "raw"] and marker
    rest = blobs(f"?comp=list&maxresults=2&marker={marker}")
    assert names(rest, "Container") == ["reports"]
    assert ElementTree.fromstring(rest.content).findtext("NextMarker") == ""
    assert ElementTree.fromstring(rest.content).findtext("MaxResults") == "2"
    assert blobs("?comp=list&maxresults=0").status_code == 400


def test_list_blobs_prefix_delimiter_and_markers(emu: Emulator, blobs: Get) -> None:
    listing = blobs("reports?restype=container&comp=list")
    tree = ElementTree.fromstring(listing.content)
    assert tree.get("ContainerName") == "reports"
    assert names(listing, "Blob") == [
        "2025/10/summary.csv", "2025/11/details.json", "2025/11/summary.csv", "readme.txt",
    ]  # fmt: skip
    blob = tree.find("Blobs/Blob/Properties")
    assert blob is not None and blob.findtext("Content-Length") == "18432"
    assert blob.findtext("Content-Type") == "text/csv" and blob.findtext("BlobType") == "BlockBlob"
    november = blobs("reports?restype=container&comp=list&prefix=2025/11/")
    assert names(november, "Blob") == ["2025/11/details.json", "2025/11/summary.csv"]
    folders = blobs("reports?restype=container&comp=list&delimiter=/")
    assert names(folders, "BlobPrefix") == ["2025/"] and names(folders, "Blob") == ["readme.txt"]
    emu.control("POST", "/_emulator/data", json={"generated_blobs": {"raw": 12}})
    seen, marker, pages = [], "", 0
    while True:
        page = blobs(f"raw?restype=container&comp=list&maxresults=5&marker={marker}")
        seen += names(page, "Blob")
        pages += 1
        marker = ElementTree.fromstring(page.content).findtext("NextMarker") or ""
        if not marker:
            break
    assert len(seen) == 14 and pages == 3 and seen == sorted(seen)
    assert seen[-1] == "generated/000012.bin"
    missing = blobs("nope?restype=container&comp=list")
    assert missing.status_code == 404 and missing.headers["x-ms-error-code"] == "ContainerNotFound"


def test_get_blob_ranges_and_conditions(blobs: Get) -> None:
    whole = blobs("reports/readme.txt")
    assert whole.status_code == 200 and whole.content == expected("reports/readme.txt", 0, 512)
    assert (
        whole.headers["Content-Length"] == "512" and whole.headers["x-ms-blob-type"] == "BlockBlob"
    )
    assert whole.headers["Content-Type"] == "text/plain" and whole.headers["x-ms-request-id"]
    size = 4 * 1024 * 1024
    part = blobs("exports/big.bin", **{"x-ms-range": "bytes=1048576-1049599", "Range": "bytes=0-1"})
    assert part.status_code == 206 and part.content == expected("exports/big.bin", 1048576, 1024)
    assert part.headers["Content-Range"] == f"bytes 1048576-1049599/{size}"
    plain = blobs("exports/big.bin", Range="bytes=10-")
    assert plain.status_code == 206 and len(plain.content) == size - 10
    etag = whole.headers["ETag"]
    assert blobs("reports/readme.txt", **{"If-None-Match": etag}).status_code == 304
    changed = blobs("reports/readme.txt", **{"If-Match": '"0x8D000"'})
    assert changed.status_code == 412 and changed.headers["x-ms-error-code"] == "ConditionNotMet"
    beyond = blobs("reports/readme.txt", Range="bytes=512-")
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */512"
    assert blobs("reports/nope.txt").headers["x-ms-error-code"] == "BlobNotFound"


def test_blob_properties_by_head(blobs: Get) -> None:
    head = blobs("exports/big.bin", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(4 * 1024 * 1024)
    assert head.headers["x-ms-access-tier"] == "Hot" and head.headers["ETag"].startswith('"0x8D')
    assert blobs("exports", method="HEAD").status_code == 404  # no restype: a $root blob
    container = blobs("exports?restype=container", method="HEAD")
    assert container.status_code == 200 and container.headers["ETag"]


def test_the_azure_sdk_parses_the_answers(emu: Emulator, reader_token: str) -> None:

    class Credential:
        def get_token(self, *scopes: str, **options: Any) -> Any:
            return AccessToken(reader_token, int(time.time()) + 3000)

    emu.control("POST", "/_emulator/data", json={"generated_blobs": {"raw": 3}})
    service = BlobServiceClient(
        f"{emu.base_url}/storage/demostorage",
        credential=Credential(),
        connection_verify=str(emu.ca_path),
        max_single_get_size=1024 * 1024,
        max_chunk_get_size=1024 * 1024,
    )
    assert [c.name for c in service.list_containers(results_per_page=2)] == [
        "exports", "raw", "reports",
    ]  # fmt: skip
    raw = service.get_container_client("raw")
    listed = list(raw.list_blobs(results_per_page=2))
    assert [b.name for b in listed][-1] == "generated/000003.bin" and listed[0].size == 40960
    assert [p.name for p in raw.walk_blobs()] == ["events/", "generated/"]
    big = service.get_blob_client("exports", "big.bin")
    assert big.get_blob_properties().size == 4 * 1024 * 1024
    data = big.download_blob(max_concurrency=2).readall()  # 1 MiB chunks with x-ms-range
    assert data == expected("exports/big.bin", 0, 4 * 1024 * 1024)
    assert big.download_blob(offset=7, length=9).readall() == expected("exports/big.bin", 7, 9)
