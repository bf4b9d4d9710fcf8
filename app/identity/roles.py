"""Who may approve and who may look: consent-granting directory roles, portal admins, helpdesk.

The operator names portal staff by tenant id and object id (PORTAL_ADMIN_USERS,
PORTAL_HELPDESK_USERS), never by username: Microsoft documents preferred_username and email as
mutable and not for authorization (a renamed account, a guest showing their home UPN, a personal
account with a chosen name). A guest's pair is the guest object in the resource tenant, so a guest
is staff by configuration only when that very pair is listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

# Directory role template IDs that can grant tenant-wide delegated consent (entra-protocol §4.5).
CONSENT_ROLES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
}
HELPDESK_ROLE = "Helpdesk"  # the portal app's app role, in the ID token's roles claim
MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def staff_id(user: Mapping[str, Any] | None) -> str | None:
    """Return an account's immutable id as the staff settings name it: tenant-id/object-id."""
    tenant, oid = str((user or {}).get("tenant_id") or ""), str((user or {}).get("oid") or "")
    if not tenant or not oid:
        return None
    return f"{tenant}/{oid}".lower()


def _listed(user: Mapping[str, Any] | None, configured: Iterable[str]) -> bool:
    """Tell whether the operator lists this account's tenant-id/object-id pair."""
    pair = staff_id(user)
    return pair is not None and pair in {entry.strip().lower() for entry in configured}


def admin_basis(user: Mapping[str, Any] | None, portal_admins: Iterable[str]) -> str | None:
    """Return why this account administers its tenant here, or None when it does not."""
    if not user or user.get("tenant_id") == MSA_TENANT:
        return None  # personal accounts have no organization to administer
    held = [CONSENT_ROLES[w] for w in user.get("wids") or () if w in CONSENT_ROLES]
    if held:
        return f"your Microsoft Entra role {held[0]} (from your sign-in)"
    if _listed(user, portal_admins):
        return (
            "the portal's operator lists your account's ids as a portal admin (PORTAL_ADMIN_USERS)"
        )
    return None


def helpdesk_scope(
    user: Mapping[str, Any] | None, helpdesk_users: Iterable[str]
) -> frozenset[str] | None:
    """Return the tenants this account may help: None for every tenant, empty when not helpdesk.

    Only the operator's own helpdesk (PORTAL_HELPDESK_USERS, by tenant-id/object-id) sees every
    tenant. The Helpdesk app role can be assigned by any tenant's admin of a multi-tenant app, so
    it is good only for the account's own tenant. A personal account is never helpdesk.
    """
    tenant = str((user or {}).get("tenant_id") or "")
    if not user or not tenant or tenant == MSA_TENANT:
        return frozenset()
    if _listed(user, helpdesk_users):
        return None
    if HELPDESK_ROLE in (user.get("roles") or ()):
        return frozenset({tenant})
    return frozenset()


def in_scope(tenant_id: str | None, scope: frozenset[str] | None) -> bool:
    """Tell whether a row of this tenant is within a helpdesk scope (None: every tenant)."""
    return scope is None or (tenant_id is not None and tenant_id in scope)


def is_helpdesk(user: Mapping[str, Any] | None, helpdesk_users: Iterable[str]) -> bool:
    """Tell whether this account is the portal's helpdesk (app role or configured)."""
    return helpdesk_scope(user, helpdesk_users) != frozenset()
