"""The keep-alive job and the links CLI, against the real emulator and a real SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import update

from app import keepalive
from app import links
from app.extensions import db
from app.models import REAUTHENTICATION_REQUIRED
from app.models import Connection
from app.models import utcnow


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
    app: Flask, entra: Any, connect: Any, read_row: Any, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    idle, _ = connect("onedrive", "user@fabrikam.test")
    revoked, _ = connect("onedrive", "admin@fabrikam.test")
    fresh, _ = connect("outlook", "user@fabrikam.test")
    age(app, idle, 20)
    age(app, revoked, 80)
    entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", json={"username": "admin@fabrikam.test"}
    )
    entra.control("DELETE", "/_emulator/requests")
    with app.app_context():
        assert keepalive.near_limit(read_row(revoked))
        report = keepalive.run()
    assert report.refreshed == [idle] and report.flagged == [revoked] and report.mailed == [revoked]
    refreshes = entra.request_log(endpoint="token", grant_type="refresh_token")
    assert {(r["username"], r["status"]) for r in refreshes} == {
        ("user@fabrikam.test", 200),
        ("admin@fabrikam.test", 400),
    }
    assert links.aware(read_row(idle).last_refresh_at) > utcnow() - timedelta(minutes=1)
    assert read_row(revoked).status == REAUTHENTICATION_REQUIRED
    assert read_row(fresh).status == "active"

    ((recipients, message),) = inbox.messages
    assert recipients == ["admin@fabrikam.test"] and "Reconnect OneDrive" in message
    link = next(w for w in message.split() if "/l/" in w)
    landing = app.test_client().get(urlsplit(link).path).get_data(as_text=True)
    assert "Your helpdesk asked you to reconnect OneDrive as admin@fabrikam.test" in landing


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
