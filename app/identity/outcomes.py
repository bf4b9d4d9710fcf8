"""Access-token outcomes, Flask-free: read MSAL's cache blob and its silent-call errors."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.connectors import RESERVED_SCOPES
from app.errors import TemporarilyUnavailable
from app.identity.transport import last_retry_after

log = logging.getLogger(__name__)

MSAL_EXPIRY_MARGIN = 300  # MSAL treats an access token with < 5 minutes left as expired
REFUSED_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required", "invalid_scope"}
)
# unauthorized_client with these codes names the app's state in the connection's own tenant (its
# enterprise app deleted or disabled there): that connection needs its admin, the others work.
TENANT_APP_CODES = frozenset({700016, 7000112})


class RefreshRefused(Exception):
    """Entra refused the refresh token; the broker decides after re-reading the row."""

    def __init__(self, error: str, codes: tuple[int, ...] = (), suberror: str | None = None):
        super().__init__(error)
        self.error = error
        self.codes = codes
        self.suberror = suberror


@dataclass(frozen=True)
class TokenOutcome:
    """An access token and, when MSAL's cache changed, the blob to store."""

    access_token: str
    expires_at: int
    scope: str
    source: str
    cache_blob: str | None


def cached_token(
    cache_blob: str, client_id: str, home_account_id: str, scopes: Sequence[str]
) -> TokenOutcome | None:
    """Return a still-fresh access token from the blob without MSAL or I/O, else None."""
    try:
        entries = json.loads(cache_blob).get("AccessToken", {})
    except (ValueError, AttributeError):
        return None
    wanted = set(scopes)
    now = time.time()
    for entry in entries.values():
        if entry.get("home_account_id") != home_account_id:
            continue
        if entry.get("client_id") != client_id:
            continue
        target = str(entry.get("target") or "")
        if not wanted <= set(target.split()):
            continue
        expires_on = int(entry.get("expires_on") or 0)
        refresh_on = int(entry.get("refresh_on") or expires_on)
        if expires_on - now <= MSAL_EXPIRY_MARGIN or refresh_on <= now:
            continue  # MSAL would refresh this one; so do we, under the lock
        return TokenOutcome(
            str(entry["secret"]), expires_on, resource_scopes(target), "cache", None
        )
    return None


def resource_scopes(scope: str) -> str:
    """Return a scope string without the OpenID Connect scopes MSAL adds."""
    return " ".join(s for s in scope.split() if s not in RESERVED_SCOPES)


def refresh_error(result: Mapping[str, Any]) -> Exception:
    """Turn MSAL's error dict from a silent call into RefreshRefused or a retryable error."""
    error = str(result.get("error") or "")
    codes = tuple(int(c) for c in result.get("error_codes") or () if str(c).isdigit())
    if error in REFUSED_ERRORS or (
        error == "unauthorized_client" and TENANT_APP_CODES & set(codes)
    ):
        return RefreshRefused(error, codes, result.get("suberror"))
    # invalid_client and friends are the operator's problem, not the connection's: retry later.
    log.warning("token endpoint error %r codes=%s", error[:64], codes[:3])
    return TemporarilyUnavailable(retry_after=last_retry_after())
