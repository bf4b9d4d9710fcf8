"""Bounded growth: a user filing requests in a loop, mail scanners opening a link (issue 15)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from app.models import AuditEvent
from app.models import ConsentRequest
from app.models import ConsentRequester
from app.models import Delivery
from app.models import HelpdeskLink
from app.models import LinkEvent
from app.models import ServerSession
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.blueprints.test_consent import send_request
from tests.blueprints.test_helpdesk import create_link
from tests.blueprints.test_helpdesk import grant_onedrive_in_contoso
from tests.blueprints.test_helpdesk import path_of
from tests.conftest import ALL_BACKENDS
from tests.signins import Web

pytestmark = ALL_BACKENDS


def count(app: Flask, model: Any, *where: Any) -> int:
    """Return how many rows of a table match."""
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_user_filing_in_a_loop_keeps_one_request_and_one_requester_row(
    app: Flask, person: Any
) -> None:
    user = person("user@contoso.test")
    user.sign_in()
    first = send_request(user, why="first reason")
    deliveries = count(app, Delivery)  # mails and webhooks, where configured
    for number in range(30):
        assert send_request(user, why=f"reason {number}") == first
    assert count(app, ConsentRequest) == 1
    assert count(app, ConsentRequester) == 1
    assert count(app, Delivery) == deliveries  # filing again tells nobody again
    assert count(app, AuditEvent, AuditEvent.action == "consent_request.created") == 1
    with app.app_context():
        requester = db.session.scalars(select(ConsentRequester)).one()
        assert requester.justification == "reason 29"  # a repeat updates the one request
    page = user.page(f"/consent-requests/{first}")
    assert "reason 29" in page and ">Pending<" in page


def test_mail_scanners_opening_a_link_neither_use_it_nor_add_rows(
    web: Web, app: Flask, entra: Emulator
) -> None:
    grant_onedrive_in_contoso(app, entra)
    web.sign_in("helpdesk@contoso.test")
    link_id, url = create_link(web, login_hint="user@contoso.test")
    sessions = count(app, ServerSession)
    for _ in range(50):  # each scanner fetch comes without cookies, like a fresh client
        answer = app.test_client().get(path_of(url))
        assert answer.status_code == 200
        assert "Your helpdesk asked you to connect OneDrive" in answer.get_data(as_text=True)
    opened = (LinkEvent.link_id == link_id, LinkEvent.event == "opened")
    assert count(app, LinkEvent, *opened) == 1
    assert count(app, LinkEvent, LinkEvent.link_id == link_id) == 1  # nothing else either
    assert count(app, ServerSession) == sessions  # and no session for any of them
    with app.app_context():
        link = db.session.get(HelpdeskLink, link_id)
        assert link is not None
        assert link.uses == 0 and link.completed_at is None and link.opened_at is not None
    assert "Opened" in web.page(f"/helpdesk/links/{link_id}")

    owner = web.other()  # the person it was made for, after the scanners: the link still works
    start = owner.client.post(path_of(url), data={"csrf_token": owner.csrf(path_of(url))})
    assert start.status_code == 303
    done = owner.callback(entra.sign_in(start.headers["Location"], "user@contoso.test"))
    assert owner.code(done).startswith("ccp_")
    with app.app_context():
        link = db.session.get(HelpdeskLink, link_id)
        assert link is not None and link.uses == 1 and link.completed_at is not None
