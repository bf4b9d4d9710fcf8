"""The portal's own app registration read from Graph: when its secrets expire; no Flask.

Needs the application permission Application.Read.All in the tenant where the app is registered
(PORTAL_APP_TENANT). Graph never returns a secret's value, only its first three characters
(`hint`), so a configured secret is matched to its passwordCredential by those.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC
from datetime import datetime
from typing import Any

import requests

log = logging.getLogger(__name__)
SCOPES = ["https://graph.microsoft.com/.default"]
LOOKUP_SECONDS = 3600.0  # Graph is asked at most this often per process
LOOKUP_TIMEOUT = 3.0  # an answer comes in well under a second; the page must not hang on it


def secret_expiries(
    http: requests.Session, graph_url: str, token: str, client_id: str
) -> dict[str, datetime]:
    """Return the end of each secret by its hint; a hint two secrets share is left out."""
    response = http.get(
        f"{graph_url}/v1.0/applications",
        params={"$filter": f"appId eq '{client_id}'", "$select": "appId,passwordCredentials"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=LOOKUP_TIMEOUT,
    )
    if response.status_code != 200:
        log.info("Graph did not list the app's secrets: HTTP %s", response.status_code)
        return {}
    found: list[dict[str, Any]] = []
    for application in response.json().get("value") or ():
        found += list(application.get("passwordCredentials") or ())
    shared = Counter(str(p.get("hint") or "") for p in found)
    out: dict[str, datetime] = {}
    for password in found:
        hint, end = str(password.get("hint") or ""), _moment(password.get("endDateTime"))
        if hint and end is not None and shared[hint] == 1:
            out[hint] = end
    return out


def _moment(text: Any) -> datetime | None:
    """Return Graph's ISO 8601 UTC time as a datetime, or None."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
