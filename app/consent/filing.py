"""Filing a consent request: open or join it, and announce a new one to the tenant's admins."""

from __future__ import annotations

from app.connectors import Connector
from app.consent import notices
from app.consent import records
from app.consent.records import Requester
from app.errors import NoAdministrator
from app.identity import roles
from app.models import DB
from app.models import ConsentRequest
from app.notify.deliveries import Notifier


def file_request(
    db: DB,
    notifier: Notifier,
    public_url: str,
    who: Requester,
    connector: Connector,
    days: int,
) -> ConsentRequest:
    """Create or join the open request for the connector; commit and return it."""
    if who.tenant_id == roles.MSA_TENANT:
        raise NoAdministrator()
    found, created = records.open_request(db, who, connector.id, connector.scopes, days)
    if created:
        justification = who.justification.strip()
        notices.announce_new(
            db, notifier, public_url, found, connector.name, who.username, justification
        )
    db.commit()
    notifier.kick()
    return found
