"""The mail that tells a connection's owner it needs a sign-in, beside the webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.connectors import Connector
from app.diagnosis.catalogue import Actor
from app.helpdesk import keepalive
from app.helpdesk.lookup import explain_code
from app.notify.deliveries import Notifier
from app.notify.senders import Mail
from app.tokens.writes import OWNER
from app.tokens.writes import Events

NEEDS_SIGN_IN = "connection.reauthentication_required"


def connection_events(
    notifier: Notifier, public_url: str, connectors: Mapping[str, Connector]
) -> Events:
    """Return the broker's event sink: webhooks as given, plus the owner's mail for a sign-in.

    The owner's address travels in the event only to this sink; webhooks never carry it.
    """

    def events(event: str, data: dict[str, Any]) -> None:
        owner = str(data.pop(OWNER, ""))
        mails: list[Mail] = []
        mailed_elsewhere = keepalive.MAILS_THE_OWNER.get()
        if (
            event == NEEDS_SIGN_IN
            and notifier.settings.smtp_url
            and "@" in owner
            and not mailed_elsewhere
        ):
            connector = connectors.get(str(data.get("connector")))
            name = connector.name if connector else str(data.get("connector"))
            mails.append(sign_in_mail(public_url, owner, name, data))
        notifier.publish(event, data, mails)

    return events


def sign_in_mail(public_url: str, owner: str, connector: str, data: Mapping[str, Any]) -> Mail:
    """Return the mail that says why a connection stopped and how its owner restores it."""
    found = explain_code(str(data.get("code") or ""), connector, at_refresh=True)
    steps = found.steps_for(Actor.USER)
    paragraphs = [
        f"Your {connector} connection ({owner}) stopped refreshing: {found.title}.",
        found.summary,
        *steps[:1],
        "Until then your data tool cannot read new data. Nothing was deleted: the connection "
        "code keeps working once you reconnect.",
    ]
    link = f"{public_url}/connections/{data['connection_id']}/reconnect"
    return Mail.of(owner, f"Reconnect {connector} to keep your data tool working", paragraphs, link,
                 f"Reconnect {connector}")  # fmt: skip
