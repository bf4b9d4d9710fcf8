"""What a helpdesk link may point at, for whom and for how long: its checked form fields."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.connectors import Connector
from app.errors import LinkRefused
from app.identity import roles
from app.models import DB
from app.models import REVOKED
from app.models import Connection
from app.models import ConsentRequest

AUTHENTICATE = "authenticate"
RECONNECT = "reconnect"
ADMIN_CONSENT = "admin_consent"
CONSENT_REQUEST = "consent_request"
KINDS = {
    AUTHENTICATE: "Authenticate a connector",
    RECONNECT: "Reconnect a connection",
    ADMIN_CONSENT: "Admin consent for a tenant",
    CONSENT_REQUEST: "Consent request status",
}
# Kinds that start a sign-in; the others only show a page, so they are never "used up".
FLOW_KINDS = frozenset({AUTHENTICATE, RECONNECT})
# The form's fields of each kind, in order (the lifetime and the note belong to every kind).
FIELDS = {
    AUTHENTICATE: ("connector", "login_hint", "tenant", "account_type"),
    RECONNECT: ("connection_id",),
    ADMIN_CONSENT: ("connector", "tenant", "login_hint"),
    CONSENT_REQUEST: ("consent_request_id", "login_hint"),
}
DEFAULT_DAYS = 7
GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}")
DURATION = re.compile(r"(\d{1,4})\s*([dhw]?)")


def parse_days(text: str) -> float:
    """Return days from "7d", "36h", "2w" or "7"; raise LinkRefused otherwise."""
    match = DURATION.fullmatch((text or "").strip().lower())
    if not match:
        raise LinkRefused("Give the expiry as days (7d), hours (36h) or weeks (2w).", field="days")
    number, unit = int(match.group(1)), match.group(2) or "d"
    return {"h": number / 24, "d": number, "w": number * 7}[unit]


def target(
    db: DB,
    known: Mapping[str, Connector],
    kind: str,
    connector: str | None,
    connection_id: str | None,
    request_id: str | None,
    scope: frozenset[str] | None,
) -> dict[str, Any]:
    """Return the columns naming what the link points at, checking it exists within scope."""
    if kind == RECONNECT:
        if not (connection_id or "").strip():
            raise LinkRefused(
                "Give the connection id: Find a user shows it on each of their connections.",
                field="connection_id",
            )
        connection = db.get(Connection, (connection_id or "").strip()[:64])
        if (
            connection is None
            or connection.status == REVOKED
            or not roles.in_scope(connection.tenant_id, scope)
        ):
            raise LinkRefused("There is no live connection with that id.", field="connection_id")
        return {"connection_id": connection.id, "connector": connection.connector}
    if kind == CONSENT_REQUEST:
        request_id = (request_id or "").strip()[:36]
        if not request_id:
            raise LinkRefused(
                "Give the consent request id: it ends the request's address "
                "(/consent-requests/<id>).",
                field="consent_request_id",
            )
        found = db.get(ConsentRequest, request_id)
        if found is None or not roles.in_scope(found.tenant_id, scope):
            raise LinkRefused(
                "There is no consent request with that id.", field="consent_request_id"
            )
        return {"consent_request_id": request_id}
    if (connector or "") not in known:
        raise LinkRefused("Choose one of the connectors.", field="connector")
    return {"connector": connector}


def admin_tenant(tenant: str | None, scope: frozenset[str] | None) -> str | None:
    """Return the admin-consent link's tenant; a one-tenant helpdesk may only name its own."""
    if scope is None:
        return tenant
    if tenant is None and len(scope) == 1:
        return next(iter(scope))
    if tenant not in scope:
        raise LinkRefused(
            "An admin consent link can only be for your own organization: leave the tenant "
            "empty or give your tenant id.",
            field="tenant",
        )
    return tenant


def own_domains(db: DB, created_by: str, scope: frozenset[str]) -> frozenset[str]:
    """Return the domains a one-tenant helpdesk may address: its own and its tenants' people's."""
    usernames = db.scalars(
        select(Connection.username).where(Connection.tenant_id.in_(sorted(scope))).distinct()
    )
    names = [created_by, *usernames]
    return frozenset(name.rpartition("@")[2].lower() for name in names if "@" in name)


def addressed_within(
    tenant: str | None,
    scope: frozenset[str] | None,
    domains: frozenset[str],
    hint: str | None = None,
) -> None:
    """Refuse a link a one-tenant helpdesk addresses to another tenant (id, domain or person)."""
    if scope is None:
        return
    refused = LinkRefused(
        "A link can only be addressed to your own organization: give one of your tenant's "
        "domains or your tenant id, or leave the tenant empty.",
        field="tenant",
    )
    if tenant is not None and (
        tenant not in scope if is_tenant_id(tenant) else tenant not in domains
    ):
        raise refused
    if hint is not None and hint.rpartition("@")[2].lower() not in domains:
        raise LinkRefused(
            "A link can only be made for someone in your own organization: give an address in "
            "one of your tenant's domains.",
            field="login_hint",
        )


def login_hint(value: str | None) -> str | None:
    """Return a plausible e-mail address, None when empty, or refuse."""
    hint = (value or "").strip()
    if not hint:
        return None
    if len(hint) > 254 or "@" not in hint or any(ch.isspace() or ord(ch) < 32 for ch in hint):
        raise LinkRefused(
            "The login hint must be an e-mail address such as user@contoso.com.", field="login_hint"
        )
    return hint


def tenant(value: str | None) -> str | None:
    """Return a tenant id or domain, None when empty, or refuse."""
    tenant = (value or "").strip().lower()
    if not tenant:
        return None
    if not (GUID.fullmatch(tenant) or DOMAIN.fullmatch(tenant)):
        raise LinkRefused(
            "The tenant must be a domain such as contoso.com or a tenant id.", field="tenant"
        )
    return tenant


def account_type(value: str | None) -> str | None:
    """Return work, personal or None."""
    if value in (None, "", "any"):
        return None
    if value not in ("work", "personal"):
        raise LinkRefused("The account type must be work or personal.", field="account_type")
    return value


def lifetime(days: float, most: int) -> timedelta:
    """Return the link's lifetime, refusing anything beyond `most` days (PORTAL_LINK_MAX_DAYS)."""
    if not math.isfinite(days):  # nan passes every comparison below; inf breaks timedelta
        raise LinkRefused("The lifetime must be a number of days.", field="days")
    if not days or days <= 0:
        raise LinkRefused("A link must live for some time.", field="days")
    if days > most:
        raise LinkRefused(f"A link can live at most {most} days.", field="days")
    return timedelta(days=days)


def is_tenant_id(value: str | None) -> bool:
    """Tell whether a tenant value is a GUID (used as the authority) rather than a domain."""
    return bool(value and GUID.fullmatch(value))
