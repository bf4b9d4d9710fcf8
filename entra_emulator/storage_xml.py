"""Blob Storage's listings: the blobs of a container and the XML the REST API answers with.

Element names follow the List Containers and List Blobs REST pages, and the names the
azure-storage-blob client deserializes (EnumerationResults, Containers/Container,
Blobs/Blob/Properties, BlobPrefix, NextMarker).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape
from xml.sax.saxutils import quoteattr

from werkzeug.http import http_date

from entra_emulator import content
from entra_emulator.dataset import stamp
from entra_emulator.runtime import current

XML = '<?xml version="1.0" encoding="utf-8"?>'


@dataclass(frozen=True)
class BlobItem:
    """A block blob whose bytes are generated from "<container>/<name>"."""

    container: str
    name: str
    size: int

    @property
    def seed(self) -> str:
        """Return the content seed of this blob."""
        return f"{self.container}/{self.name}"

    @property
    def etag(self) -> str:
        """Return the quoted ETag, which changes when the size does."""
        digest = hashlib.sha256(f"{self.seed}:{self.size}".encode()).hexdigest()
        return f'"0x8DD{digest[:13].upper()}"'

    @property
    def created(self) -> dt.datetime:
        """Return the creation time."""
        return stamp("blob", self.seed)

    @property
    def modified(self) -> dt.datetime:
        """Return the last-modified time (never before creation)."""
        return max(self.created, stamp("blob", self.seed, str(self.size)))

    @property
    def content_type(self) -> str:
        """Return the blob's content type."""
        return content.mime_type(self.name)

    def headers(self, properties: bool = False) -> dict[str, str]:
        """Return Get Blob's headers; Get Blob Properties adds the access tier."""
        headers = {
            "Content-Type": self.content_type,
            "ETag": self.etag,
            "Last-Modified": http_date(self.modified),
            "x-ms-creation-time": http_date(self.created),
            "x-ms-blob-type": "BlockBlob",
            "x-ms-lease-status": "unlocked",
            "x-ms-lease-state": "available",
            "x-ms-server-encrypted": "true",
        }
        if properties:
            headers |= {"x-ms-access-tier": "Hot", "x-ms-access-tier-inferred": "true"}
        return headers


def blobs_of(account: str, container: str) -> list[BlobItem]:
    """Return a container's blobs, configured and generated, sorted by name."""
    data = current().state.world.data
    key = f"{account}/{container}"
    found = [
        BlobItem(container, e.path, data.big_file_bytes if e.size is None else e.size)
        for e in data.blobs.get(key, [])
        if not e.path.endswith("/")
    ]
    for i in range(1, data.generated_blobs.get(key, 0) + 1):
        found.append(BlobItem(container, f"generated/{i:06d}.bin", 512 + i % 512))
    return sorted(found, key=lambda b: b.name)


def listing(
    blobs: list[BlobItem], prefix: str, delimiter: str, after: str, limit: int
) -> tuple[list[BlobItem | str], str]:
    """Return up to limit blobs and prefixes (str) from name after, and the next name."""
    items: list[BlobItem | str] = []
    for item in blobs:
        if not item.name.startswith(prefix) or item.name < after:
            continue
        entry: BlobItem | str = item
        rest = item.name[len(prefix) :]
        if delimiter and delimiter in rest:
            entry = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if items and items[-1] == entry:
                continue  # one BlobPrefix stands for every blob under it
        if len(items) == limit:
            return items, item.name
        items.append(entry)
    return items, ""


def container_tags(account: str, name: str) -> tuple[str, str]:
    """Return a container's quoted ETag and Last-Modified (HTTP date)."""
    digest = hashlib.sha256(f"{account}/{name}".encode()).hexdigest()
    return f'"0x8DC{digest[:13].upper()}"', http_date(stamp("container", account, name))


def container_headers(account: str, name: str) -> dict[str, str]:
    """Return Get Container Properties' headers."""
    etag, modified = container_tags(account, name)
    return {"ETag": etag, "Last-Modified": modified, "x-ms-lease-status": "unlocked",
            "x-ms-lease-state": "available", "x-ms-has-immutability-policy": "false",
            "x-ms-has-legal-hold": "false"}  # fmt: skip


def marker_name(value: str | None) -> str:
    """Return the name a NextMarker points at ("" for none); raise ValueError if unreadable."""
    if not value:
        return ""
    try:
        return base64.urlsafe_b64decode(value.removeprefix("2!") + "==").decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a marker") from None


def new_marker(name: str) -> str:
    """Return the (opaque to clients) marker of the listing that starts at name."""
    return "2!" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def echo(args: Mapping[str, str], *names: str) -> dict[str, str]:
    """Return the listing parameters the XML repeats, by element name (Prefix, Marker, ...)."""
    tags = {"prefix": "Prefix", "marker": "Marker", "maxresults": "MaxResults",
            "delimiter": "Delimiter"}  # fmt: skip
    return {tags[n]: args.get(n, "") for n in names}


def _echo(*pairs: tuple[str, str]) -> str:
    """Return the request parameters a listing echoes (only those the client sent)."""
    return "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in pairs if value)


def _endpoint(account: str) -> str:
    """Return the ServiceEndpoint attribute: this emulator's address of the account."""
    return quoteattr(f"{current().base_url}/storage/{account}/")


def containers(account: str, names: list[str], next_marker: str, echo: dict[str, str]) -> str:
    """Return the List Containers XML."""
    items = []
    for name in names:
        etag, modified = container_tags(account, name)
        items.append(
            f"<Container><Name>{escape(name)}</Name><Properties>"
            f"<Last-Modified>{modified}</Last-Modified><Etag>{escape(etag)}</Etag>"
            "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
            "<HasImmutabilityPolicy>false</HasImmutabilityPolicy>"
            "<HasLegalHold>false</HasLegalHold></Properties></Container>"
        )
    return (
        f"{XML}<EnumerationResults ServiceEndpoint={_endpoint(account)}>"
        f"{_echo(*echo.items())}<Containers>{''.join(items)}</Containers>"
        f"<NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>"
    )


def _blob_xml(item: BlobItem) -> str:
    """Return one <Blob> element of a listing."""
    return (
        f"<Blob><Name>{escape(item.name)}</Name><Properties>"
        f"<Creation-Time>{http_date(item.created)}</Creation-Time>"
        f"<Last-Modified>{http_date(item.modified)}</Last-Modified>"
        f"<Etag>{escape(item.etag.strip(chr(34)))}</Etag>"
        f"<Content-Length>{item.size}</Content-Length>"
        f"<Content-Type>{escape(item.content_type)}</Content-Type>"
        "<Content-Encoding /><Content-Language /><Cache-Control /><Content-Disposition />"
        "<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier>"
        "<AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus>"
        "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted>"
        "</Properties></Blob>"
    )


def blob_list(
    account: str, name: str, items: list[BlobItem | str], next_marker: str, echo: dict[str, str]
) -> str:
    """Return the List Blobs XML: <Blob> elements and <BlobPrefix> for delimited names."""
    body = "".join(
        f"<BlobPrefix><Name>{escape(i)}</Name></BlobPrefix>" if isinstance(i, str) else _blob_xml(i)
        for i in items
    )
    return (
        f"{XML}<EnumerationResults ServiceEndpoint={_endpoint(account)} "
        f"ContainerName={quoteattr(name)}>{_echo(*echo.items())}<Blobs>{body}</Blobs>"
        f"<NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>"
    )
