"""Generated file contents: bytes computed from the offset, served in chunks with ranges.

The content of a file is a pure function of its seed, so tests can compute the bytes of any
range without the emulator storing the file:

    byte[i] = sha256(f"{seed}:{i // 32}".encode()).digest()[i % 32]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from werkzeug.http import parse_etags
from werkzeug.http import parse_range_header
from werkzeug.wrappers import Response

BLOCK = 32  # bytes per sha256 digest
CHUNK = 64 * 1024  # bytes per write while streaming
OFFICE = "application/vnd.openxmlformats-officedocument"
MIME_TYPES = {"csv": "text/csv", "txt": "text/plain", "json": "application/json",
              "jsonl": "application/x-ndjson", "pdf": "application/pdf", "jpg": "image/jpeg",
              "docx": f"{OFFICE}.wordprocessingml.document",
              "xlsx": f"{OFFICE}.spreadsheetml.sheet"}  # fmt: skip


def mime_type(name: str) -> str:
    """Return the content type of a file name (not the host's mime.types: stable everywhere)."""
    return MIME_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def _block(seed: str, index: int) -> bytes:
    """Return the 32 bytes of one block of a seed's content."""
    return hashlib.sha256(f"{seed}:{index}".encode()).digest()


def expected(seed: str, offset: int, length: int) -> bytes:
    """Return length bytes of a seed's content from offset (what tests compare against)."""
    out = bytearray()
    first, last = offset // BLOCK, (offset + length - 1) // BLOCK
    for index in range(first, last + 1):
        out += _block(seed, index)
    start = offset - first * BLOCK
    return bytes(out[start : start + length])


def stream(seed: str, start: int, stop: int) -> Iterator[bytes]:
    """Yield the bytes [start, stop) of a seed's content in chunks; never the whole file."""
    position = start
    while position < stop:
        length = min(CHUNK, stop - position)
        yield expected(seed, position, length)
        position += length


@dataclass(frozen=True)
class Plan:
    """What a GET of generated content answers: status and the byte span [start, stop)."""

    status: int  # 200, 206, 304, 412 or 416
    start: int = 0
    stop: int = 0

    @property
    def length(self) -> int:
        """Return the number of bytes in the body."""
        return self.stop - self.start if self.status in (200, 206) else 0


def _matches(header: str | None, etag: str) -> bool:
    """Return True if an If-Match / If-None-Match header names etag (or is "*")."""
    if not header:
        return False
    tags = parse_etags(header)  # quoted tags may hold commas: Graph's read "{GUID},1"
    return tags.star_tag or tags.contains_weak(etag.strip('"'))


def plan(
    size: int,
    etag: str,
    range_header: str | None,
    if_none_match: str | None = None,
    if_match: str | None = None,
) -> Plan:
    """Return the answer to a read: 304 / 412 first, then 206 for one satisfiable range."""
    if if_match and not _matches(if_match, etag):
        return Plan(412)
    if _matches(if_none_match, etag):
        return Plan(304)
    if not range_header:
        return Plan(200, 0, size)
    parsed = parse_range_header(range_header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return Plan(200, 0, size)  # RFC 9110 §14.2: a server may ignore a range it won't serve
    start, stop = parsed.ranges[0]
    if start < 0:  # a suffix range: the last -start bytes, or all of a shorter file
        start = max(0, size + start)
    stop = size if stop is None else min(stop, size)
    if start >= size or start >= stop:
        return Plan(416)
    return Plan(206, start, stop)


def content_range(plan: Plan, size: int) -> str:
    """Return the Content-Range value of a 206 or 416 answer."""
    if plan.status == 416:
        return f"bytes */{size}"
    return f"bytes {plan.start}-{plan.stop - 1}/{size}"


def respond(plan: Plan, seed: str, size: int, headers: dict[str, str]) -> Response:
    """Return the streamed 200 / 206 answer of a plan (or an empty 304) with its headers."""
    body = stream(seed, plan.start, plan.stop) if plan.length else iter(())
    response = Response(body, status=plan.status, direct_passthrough=True)
    response.headers.update(headers)
    response.headers["Accept-Ranges"] = "bytes"
    if plan.status in (200, 206):
        response.headers["Content-Length"] = str(plan.length)
    if plan.status == 206:
        response.headers["Content-Range"] = content_range(plan, size)
    return response
