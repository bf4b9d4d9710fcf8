"""Whom a helpdesk link was made for, and whether the account that signed in is that person.

A reconnect link is for the connection's account: its tenant id and object id. A link made with
a login hint is for the person of that address: the accounts the portal already knows under it
(their tenant-id/object-id pairs), or, before their first connection, the username of the
validated ID token. A link naming a tenant id accepts only that tenant's accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select

from app.helpdesk import link_events
from app.helpdesk.link_fields import RECONNECT
from app.helpdesk.link_fields import is_tenant_id
from app.identity.signins import SignIn
from app.models import DB
from app.models import Connection
from app.models import HelpdeskLink


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused by a link: whom the link was made for and who signed in instead."""

    link: HelpdeskLink
    made_for: str
    signed_in_as: str


def check(db: DB, link_id: str, signed: SignIn) -> Refusal | None:
    """Return why this sign-in may not complete the link, or None when it may."""
    link = db.get(HelpdeskLink, link_id[:36])
    if link is None:
        return None  # no link to bind to: the flow is an ordinary connect
    made_for = _person(db, link, signed)
    if made_for is None:
        return None
    return Refusal(link, made_for, signed.username or signed.oid)


def refuse(db: DB, refusal: Refusal) -> None:
    """Record the refused attempt on the link and in the audit log; nothing else is written."""
    who = refusal.signed_in_as[:200]
    link_events.record(db, refusal.link, "refused", f"signed in as {who}")
    link_events.audit(db, who, "link.refused", refusal.link.id, kind=refusal.link.kind)
    db.commit()


def _person(db: DB, link: HelpdeskLink, signed: SignIn) -> str | None:
    """Return whom the link was made for if the sign-in is someone else, else None."""
    pair = (signed.tenant_id, signed.oid)
    if link.kind == RECONNECT:
        connection = db.get(Connection, link.connection_id or "")
        if connection is not None and (connection.tenant_id, connection.oid) == pair:
            return None
        return connection.username if connection is not None else "the connection's owner"
    hint = (link.login_hint or "").strip()
    if not hint:
        return None  # made for whoever opens it
    if is_tenant_id(link.tenant) and signed.tenant_id != link.tenant:
        return hint
    known = _known_pairs(db, hint, link.tenant if is_tenant_id(link.tenant) else None)
    if known:
        return None if pair in known else hint
    same_name = signed.username.strip().casefold() == hint.casefold()
    return None if same_name else hint


def _known_pairs(db: DB, username: str, tenant: str | None) -> set[tuple[str, str]]:
    """Return the tenant-id/object-id pairs of the accounts connected under this username."""
    query = select(Connection.tenant_id, Connection.oid).where(
        func.lower(Connection.username) == username.lower()
    )
    if tenant is not None:
        query = query.where(Connection.tenant_id == tenant)
    return {(str(tid), str(oid)) for tid, oid in db.execute(query.distinct())}
