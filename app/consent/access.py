"""Who may look at a consent request: its tenant's admins, the helpdesk, its requesters."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from app.consent import records
from app.errors import NotFound
from app.identity import roles
from app.models import DB
from app.models import ConsentRequest


def viewer_role(
    db: DB,
    found: ConsentRequest,
    user: Mapping[str, Any],
    admin_users: Iterable[str],
    helpdesk_users: Iterable[str],
) -> str | None:
    """Return how this account may see the request: admin, helpdesk, requester, or None."""
    same_tenant = user["tenant_id"] == found.tenant_id
    if same_tenant and roles.admin_basis(user, admin_users):
        return "admin"
    if roles.in_scope(found.tenant_id, roles.helpdesk_scope(user, helpdesk_users)):
        return "helpdesk"  # the operator's own helpdesk sees every tenant, the app role its own
    if same_tenant and any(r.oid == user["oid"] for r in records.requesters(db, found.id)):
        return "requester"
    return None


def visible(
    db: DB,
    request_id: str,
    user: Mapping[str, Any] | None,
    admin_users: Iterable[str],
    helpdesk_users: Iterable[str],
) -> tuple[ConsentRequest, str]:
    """Return the request and the viewer's role; NotFound for everyone else, known or not."""
    found = db.get(ConsentRequest, request_id) if len(request_id) <= 36 else None
    role = None
    if found is not None and user is not None:
        role = viewer_role(db, found, user, admin_users, helpdesk_users)
    if found is None or role is None:
        raise NotFound()  # the same answer whether the request exists or not
    return found, role
