"""Pending sign-in flows, kept server-side in the session and keyed by their state."""

from __future__ import annotations

import time
from collections.abc import Mapping
from collections.abc import MutableMapping
from typing import Any

from app.errors import SignInRejected

FLOWS_KEY = "app.flows.pending"  # a live session key: its name outlives module moves
# The login hint of a trip Microsoft turned away, for the quiet trip that files the request.
REFUSED_HINT_KEY = "app.consent.login_hint"
# ... and the tenant it was at (a guest's resource tenant), so the request is filed there.
REFUSED_TENANT_KEY = "app.consent.tenant"
MAX_PENDING = 5  # a few tabs at once; older attempts are dropped
FLOW_TTL_SECONDS = 600  # PORTAL_FLOW_TTL's default
MAX_PARAM = 4096  # Entra's codes are ~1-2 kB; anything far larger is not from Entra (C9)
MAX_CODE = 8192
ALLOWED = frozenset(
    {
        "code",
        "state",
        "session_state",
        "client_info",
        "error",
        "error_description",
        "error_subcode",
        "error_uri",
        "admin_consent",
        "tenant",
        "scope",
        "error_codes",
    }
)


def remember(
    session: MutableMapping[str, Any], flow: Mapping[str, Any], purpose: Mapping[str, Any]
) -> None:
    """Store a new flow (MSAL's dict, secrets included) and what it is for."""
    pending = dict(session.get(FLOWS_KEY) or {})
    # The authorize URL is only for this redirect; kept, it would be most of every session read
    # and write while flows are pending, and it carries the login hint.
    kept = {key: value for key, value in flow.items() if key != "auth_uri"}
    entry = {"flow": kept, "purpose": dict(purpose), "created": time.time()}
    pending[str(flow["state"])] = entry
    newest = sorted(pending.items(), key=lambda item: item[1]["created"])[-MAX_PENDING:]
    session[FLOWS_KEY] = dict(newest)


def take(
    session: MutableMapping[str, Any], state: str | None, ttl: float = FLOW_TTL_SECONDS
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Pop the flow for this state (single use); None when missing, foreign or older than ttl."""
    pending = dict(session.get(FLOWS_KEY) or {})
    entry = pending.pop(state, None) if state else None
    session[FLOWS_KEY] = pending  # consumed before redeeming, so a replay finds nothing (C3)
    if entry is None or time.time() - entry["created"] > ttl:
        return None, {}
    return entry["flow"], entry["purpose"]


def pending(session: Mapping[str, Any]) -> dict[str, Any]:
    """Return the pending flows so they survive a session id change."""
    return dict(session.get(FLOWS_KEY) or {})


def restore(session: MutableMapping[str, Any], saved: Mapping[str, Any]) -> None:
    """Put pending flows back after the session was renewed."""
    if saved:
        session[FLOWS_KEY] = dict(saved)


def checked_query(args: Mapping[str, str]) -> dict[str, str]:
    """Return the callback's known parameters, refusing oversized or binary values (C9)."""
    query: dict[str, str] = {}
    for name in ALLOWED:
        value = args.get(name)
        if value is None:
            continue
        limit = MAX_CODE if name == "code" else MAX_PARAM
        if len(value) > limit or any(ord(ch) < 32 and ch not in "\r\n\t" for ch in value):
            raise SignInRejected()
        query[name] = value
    return query
