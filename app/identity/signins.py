"""Sign-ins, Flask-free: the flow keys the portal adds and the verified SignIn it yields."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msal

from app.connectors import account_type_for_tenant

# Flow keys the portal adds to MSAL's flow dict; stripped before MSAL sees the flow again.
CONNECTOR_KEY = "portal.connector"
AUTHORITY_KEY = "portal.authority_tenant"
CREATED_KEY = "portal.created_at"
SCOPES_KEY = "portal.scopes"
TENANT_DOMAIN_KEY = "portal.tenant_domain"  # the domain that named the tenant, for the pages


@dataclass(frozen=True)
class SignIn:
    """A verified sign-in: who signed in, for which connector, and their fresh token cache."""

    home_account_id: str
    username: str
    name: str
    oid: str
    tenant_id: str
    account_type: str
    wids: tuple[str, ...]
    roles: tuple[str, ...]
    scopes_granted: tuple[str, ...]
    connector_id: str
    cache_blob: str
    authority_tenant: str = "organizations"
    tenant_domain: str = ""  # the domain the person (or a link) named the tenant by, if any


def sign_in(
    result: Mapping[str, Any],
    claims: Mapping[str, Any],
    flow: Mapping[str, Any],
    authority: str,
    cache: msal.SerializableTokenCache,
) -> SignIn:
    """Assemble the SignIn from a verified token response."""
    tid = str(claims["tid"])
    return SignIn(
        home_account_id=home_account_id(result, claims),
        username=str(claims.get("preferred_username") or claims.get("upn") or ""),
        name=str(claims.get("name") or ""),
        oid=str(claims.get("oid") or claims.get("sub")),
        tenant_id=tid,
        account_type=account_type_for_tenant(tid),
        wids=tuple(str(w) for w in claims.get("wids") or ()),
        roles=tuple(str(r) for r in claims.get("roles") or ()),
        scopes_granted=tuple(str(result.get("scope") or "").split()),
        connector_id=str(flow.get(CONNECTOR_KEY) or ""),
        cache_blob=cache.serialize(),
        authority_tenant=authority,
        tenant_domain=str(flow.get(TENANT_DOMAIN_KEY) or ""),
    )


def home_account_id(result: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """Return MSAL's home account id: uid.utid from client_info, else the ID token's sub."""
    raw = str(result.get("client_info") or "")
    if raw:
        try:
            info = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            return f"{info['uid']}.{info['utid']}"
        except (ValueError, KeyError, TypeError):
            pass
    return str(claims.get("sub") or "")
