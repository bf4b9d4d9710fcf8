"""Remember every secret the emulator hands out, so tests can prove none leaked (C36, C40)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from flask import Response

TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
FORM_CODE = re.compile(r'name="code" value="([^"]+)"')


def secrets_in(response: Response) -> list[str]:
    """Return the codes and tokens this response carries to a client."""
    found: list[str] = []
    location = response.headers.get("Location")
    if location:
        found += parse_qs(urlsplit(location).query).get("code", [])
    if response.mimetype == "application/json" and not response.direct_passthrough:
        try:
            body = json.loads(response.get_data())
        except ValueError:
            body = None
        if isinstance(body, dict):
            found += [str(body[f]) for f in TOKEN_FIELDS if body.get(f)]
    elif response.mimetype == "text/html" and not response.direct_passthrough:
        found += FORM_CODE.findall(response.get_data(as_text=True))
    return found
