"""The keep-alive job and the links CLI, against the real emulator and a real SMTP server."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import update

from app.helpdesk import keepalive
from app.models import REAUTHENTICATION_REQUIRED
from app.models import Connection
from app.models import Delivery
from app.models import aware
from app.models import utcnow
from app.notify import deliveries
from app.platform import extensions
from app.platform.extensions import db
from entra_emulator import Emulator

LINK = re.compile(rb"/l/[A-Za-z0-9_-]{20,}")


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Store the message (aiosmtpd's hook name)."""
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """Run a real SMTP server on a free loopback port."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def use_smtp(app: Flask, port: int, **settings: Any) -> None:
    """Point the app's own notifier at the test SMTP server."""
    notifier = app.extensions["portal.notifier"]
    notifier.settings = dataclasses.replace(
        notifier.settings, smtp_url=f"smtp://127.0.0.1:{port}", **settings
    )


def database_bytes(app: Flask) -> bytes:
    """Return the SQLite database's bytes on disk, with its write-ahead log."""
    path = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*") if p.is_file())


def mail_payloads(app: Flask) -> list[dict[str, Any]]:
    """Return every mail delivery's stored payload."""
    with app.app_context():
        query = select(Delivery).where(Delivery.channel == "mail")
        return [dict(d.payload) for d in db.session.scalars(query)]


def age(app: Flask, connection_id: str, days: int) -> None:
    """Pretend the connection's refresh token was last used `days` ago."""
    with app.app_context():
        old = utcnow() - timedelta(days=days)
        db.session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(last_refresh_at=old, created_at=old)
        )
        db.session.commit()


def test_keep_alive_refreshes_idle_and_flags_revoked_with_a_mail(
    app: Flask,
    entra: Emulator,
    connect: Any,
    read_row: Any,
    smtp: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    use_smtp(app, port)
    idle, _ = connect("onedrive", "user@fabrikam.test")
    revoked, _ = connect("onedrive", "admin@fabrikam.test")
    fresh, _ = connect("outlook", "user@fabrikam.test")
    age(app, idle, 20)
    age(app, revoked, 80)
    entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", json={"username": "admin@fabrikam.test"}
    )
    entra.control("DELETE", "/_emulator/requests")

    def no_new_notifier(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the job must use the app's notifier")

    monkeypatch.setattr(deliveries.Notifier, "__init__", no_new_notifier)
    with app.app_context():
        assert keepalive.near_limit(read_row(revoked))
        report = extensions.keepalive().run(db.session)
    assert report.refreshed == [idle] and report.flagged == [revoked] and report.mailed == [revoked]
    refreshes = entra.request_log(endpoint="token", grant_type="refresh_token")
    assert {(r["username"], r["status"]) for r in refreshes} == {
        ("user@fabrikam.test", 200),
        ("admin@fabrikam.test", 400),
    }
    assert aware(read_row(idle).last_refresh_at) > utcnow() - timedelta(minutes=1)
    assert read_row(revoked).status == REAUTHENTICATION_REQUIRED
    assert read_row(fresh).status == "active"

    ((recipients, message),) = inbox.messages
    assert recipients == ["admin@fabrikam.test"] and "Reconnect OneDrive" in message
    link = next(w for w in message.split() if "/l/" in w)
    # The working link is nowhere at rest: not in the database, not in its write-ahead log.
    token = urlsplit(link).path.rsplit("/", 1)[1].encode()
    stored = database_bytes(app)
    assert token not in stored and LINK.search(stored) is None
    (payload,) = mail_payloads(app)
    assert payload == {"to": "admin@fabrikam.test", "subject": payload["subject"]}  # wiped
    landing = app.test_client().get(urlsplit(link).path).get_data(as_text=True)
    assert "Your helpdesk asked you to reconnect OneDrive as admin@fabrikam.test" in landing


def test_a_queued_reconnect_mail_is_sealed_and_wiped_once_sent_or_failed(
    app: Flask, connect: Any, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    use_smtp(app, port, background=False)  # queued only: the test sends it
    connection_id, _ = connect("onedrive", "user@fabrikam.test")
    with app.test_request_context():
        notifier = extensions.notifier()
        url = extensions.keepalive().reconnect_mail(
            db.session, connection_id, created_by="helpdesk@contoso.test"
        )
        assert url is not None
        token = url.rsplit("/", 1)[1].encode()
        (pending,) = mail_payloads(app)
        assert set(pending) == {"to", "subject", "sealed"}
        stored = database_bytes(app)
        assert token not in stored and LINK.search(stored) is None
        assert notifier.run_due() == 1
    ((_, message),) = inbox.messages
    assert url in message
    assert mail_payloads(app) == [{"to": "user@fabrikam.test", "subject": pending["subject"]}]

    use_smtp(app, 1, background=False, max_attempts=1)  # nothing listens on port 1
    with app.test_request_context():
        assert extensions.keepalive().reconnect_mail(
            db.session, connection_id, created_by="helpdesk@contoso.test"
        )
        assert notifier.run_due() == 1
    assert len(inbox.messages) == 1
    assert all(set(p) == {"to", "subject"} for p in mail_payloads(app))
    assert LINK.search(database_bytes(app)) is None


def test_jobs_run_from_the_command_line(app: Flask, connect: Any) -> None:
    idle, _ = connect("onedrive", "user@fabrikam.test")
    age(app, idle, 15)
    result = app.test_cli_runner().invoke(args=["jobs", "run"])
    assert result.exit_code == 0, result.output
    assert "refreshed 1" in result.output


def test_links_cli_creates_lists_and_revokes(app: Flask) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "links",
            "create",
            "--kind",
            "authenticate",
            "--connector",
            "sharepoint",
            "--login-hint",
            "user@contoso.test",
            "--expires",
            "7d",
        ]
    )
    assert made.exit_code == 0, made.output
    url = made.stdout.strip()
    assert url.startswith(f"{app.config['PUBLIC_URL']}/l/")
    client = app.test_client()
    page = client.get(urlsplit(url).path).get_data(as_text=True)
    assert "Your helpdesk asked you to connect SharePoint as user@contoso.test" in page
    listed = runner.invoke(args=["links", "list"])
    assert "authenticate" in listed.stdout and "Opened" in listed.stdout
    link_id = listed.stdout.split()[0]
    assert runner.invoke(args=["links", "revoke", link_id]).exit_code == 0
    assert client.get(urlsplit(url).path).status_code == 404
    too_long = runner.invoke(
        args=["links", "create", "--connector", "onedrive", "--expires", "90d"]
    )
    assert too_long.exit_code != 0 and "at most 30 days" in too_long.output
