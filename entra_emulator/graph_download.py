"""Graph's file bytes: the answer of .../content and of pre-authenticated download URLs."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import quote

import jwt
from flask import request
from werkzeug.http import http_date
from werkzeug.wrappers import Response

from entra_emulator import content
from entra_emulator.graph_common import error_response
from entra_emulator.runtime import current

DOWNLOAD_AUDIENCE = "urn:entra-emulator:download"
DOWNLOAD_SECONDS = 600  # "valid for a short period of time (a few minutes)": inferred length


def download_url(file: dict[str, Any]) -> str:
    """Return a pre-authenticated URL for this version of a file (seed, size, name, eTag)."""
    claims = file | {"aud": DOWNLOAD_AUDIENCE, "exp": int(time.time()) + DOWNLOAD_SECONDS}
    return f"{current().base_url}/graph/_download/{current().keys.sign(claims)}"


def download(token: str) -> Response:
    """Serve a download URL: no Authorization header, the URL itself is the credential."""
    try:
        claims = current().keys.verify(token, DOWNLOAD_AUDIENCE)
    except jwt.InvalidTokenError:
        return error_response(401, "unauthenticated", "The download URL is invalid or expired.")
    return serve(claims)


def serve(file: dict[str, Any]) -> Response:
    """Stream a file as Graph's download endpoint does: 200, 206, 304 or 416."""
    etag, size = f'"{file["etag"]}"', int(file["size"])
    # A cTag ("c:{...},1") names the same content as the eTag it is built from.
    match_header = request.headers.get("If-None-Match", "").replace('"c:', '"')
    plan = content.plan(size, etag, request.headers.get("Range"), match_header)
    if plan.status == 416:
        answer = error_response(416, "invalidRange", "The requested range is not satisfiable.")
        answer.headers["Content-Range"] = content.content_range(plan, size)
        return answer
    disposition = f"attachment; filename*=UTF-8''{quote(file['name'])}"
    headers = {
        "Content-Type": content.mime_type(file["name"]),
        "ETag": etag,
        "Last-Modified": http_date(dt.datetime.fromisoformat(file["modified"])),
        "Content-Disposition": disposition,
    }
    return content.respond(plan, file["seed"], size, headers)
