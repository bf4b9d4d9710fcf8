"""Helpdesk: who may enter, sharing links end to end, lookups and tests (issue 5)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import update

from app.extensions import db
from app.flows import FLOWS_KEY
from app.models import AuditEvent
from app.models import HelpdeskLink
from app.models import utcnow

LINK_URL = re.compile(r'id="link-url"[^>]*value="([^"]+)"')
REFERENCE = re.compile(r"Reference for the helpdesk: [0-9a-f]+")


def sign_in(web: Any, username: str) -> None:
    """Sign in to the portal itself as this emulator account."""
    answer = web.client.post("/sign-in", data={"csrf_token": web.csrf("/sign-in")})
    assert answer.status_code == 303
    assert web.callback(web.entra.sign_in(answer.headers["Location"], username)).status_code == 303


def create_link(web: Any, **form: str) -> tuple[str, str]:
    """Create a link on the helpdesk page; return its id and the URL shown once."""
    data = {"kind": "authenticate", "connector": "onedrive", "days": "7"} | form
    answer = web.client.post("/helpdesk/links", data={"csrf_token": web.csrf("/helpdesk"), **data})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    page = web.client.get(answer.headers["Location"]).get_data(as_text=True)
    match = LINK_URL.search(page)
    assert match, page
    return answer.headers["Location"].rsplit("/", 1)[1], match.group(1)


def path_of(url: str) -> str:
    """Return the path of an absolute portal URL."""
    return urlsplit(url).path


def audit_actions(app: Flask) -> list[str]:
    """Return every audit action recorded so far."""
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEvent))]


@pytest.fixture
def helpdesk(web: Any) -> Any:
    """Return a browser signed in as helpdesk@contoso.test (app role Helpdesk)."""
    sign_in(web, "helpdesk@contoso.test")
    return web


def test_someone_without_the_role_gets_403_everywhere(web: Any, app: Flask, entra: Any) -> None:
    assert web.client.get("/helpdesk").status_code == 302  # anonymous: sign in first
    assert web.client.post("/helpdesk/links", data={"kind": "authenticate"}).status_code == 403
    sign_in(web, "user@contoso.test")
    assert web.client.get("/helpdesk").status_code == 403
    assert web.client.get("/helpdesk/users?q=user@contoso.test").status_code == 403
    assert web.client.get("/helpdesk/troubleshoot").status_code == 403
    forged = {"kind": "authenticate", "connector": "onedrive"}  # no CSRF token at all
    assert web.client.post("/helpdesk/links", data=forged).status_code == 403
    token = web.csrf("/connectors/onedrive")
    assert (
        web.client.post("/helpdesk/links", data=forged | {"csrf_token": token}).status_code == 403
    )
    assert web.client.post("/helpdesk/connections/x/test").status_code == 403
    assert web.client.post("/helpdesk/connections/x/reconnect-link").status_code == 403
    with app.app_context():
        assert db.session.scalars(select(HelpdeskLink)).first() is None
    assert "Helpdesk" not in web.client.get("/").get_data(as_text=True)


def test_helpdesk_posts_still_need_csrf_and_same_origin(helpdesk: Any) -> None:
    form = {"kind": "authenticate", "connector": "onedrive"}
    assert helpdesk.client.post("/helpdesk/links", data=form).status_code == 400
    token = helpdesk.csrf("/helpdesk")
    cross = helpdesk.client.post(
        "/helpdesk/links",
        data=form | {"csrf_token": token},
        headers={"Origin": "https://evil.test"},
    )
    assert cross.status_code == 403


def test_configured_helpdesk_users_get_in(web: Any, app: Flask) -> None:
    app.config["HELPDESK_USERS"] = ["USER@fabrikam.test"]
    sign_in(web, "user@fabrikam.test")
    page = web.client.get("/helpdesk")
    assert page.status_code == 200 and "Create a sharing link" in page.get_data(as_text=True)


def test_authenticate_link_from_creation_to_completed(helpdesk: Any, app: Flask) -> None:
    link_id, url = create_link(helpdesk, login_hint="user@fabrikam.test")
    assert url.startswith(f"{app.config['PUBLIC_URL']}/l/") and len(path_of(url)) >= 3 + 43
    page = helpdesk.client.get(f"/helpdesk/links/{link_id}").get_data(as_text=True)
    assert "Not opened" in page and path_of(url) not in page  # the URL is shown once
    with app.app_context():
        stored = db.session.get(HelpdeskLink, link_id)
        assert stored is not None and path_of(url).rsplit("/", 1)[1] not in stored.token_hash

    person = helpdesk.other()
    landing = person.client.get(path_of(url)).get_data(as_text=True)
    assert "Your helpdesk asked you to connect OneDrive as user@fabrikam.test" in landing
    with person.client.session_transaction() as session:
        assert not session.get(FLOWS_KEY)  # opening starts nothing
    start = person.client.post(path_of(url), data={"csrf_token": person.csrf(path_of(url))})
    assert start.status_code == 303
    assert parse_qs(urlsplit(start.headers["Location"]).query)["login_hint"] == [
        "user@fabrikam.test"
    ]
    done = person.callback(helpdesk.entra.sign_in(start.headers["Location"], "user@fabrikam.test"))
    assert person.code(done).startswith("ccp_")

    listing = helpdesk.client.get("/helpdesk").get_data(as_text=True)
    assert "Completed" in listing
    again = person.client.get(path_of(url))
    assert again.status_code == 404 and "This link cannot be used" in again.get_data(as_text=True)
    actions = audit_actions(app)
    assert {"link.created", "link.used", "link.completed"} <= set(actions)


def test_unusable_links_all_get_the_same_page_and_start_nothing(
    helpdesk: Any, app: Flask, entra: Any
) -> None:
    expired_id, expired = create_link(helpdesk)
    revoked_id, revoked = create_link(helpdesk)
    used_id, used = create_link(helpdesk)
    _, valid = create_link(helpdesk)
    with app.app_context():
        db.session.execute(
            update(HelpdeskLink)
            .where(HelpdeskLink.id == expired_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.execute(
            update(HelpdeskLink).where(HelpdeskLink.id == used_id).values(completed_at=utcnow())
        )
        db.session.commit()
    revoke = helpdesk.client.post(
        f"/helpdesk/links/{revoked_id}/revoke", data={"csrf_token": helpdesk.csrf("/helpdesk")}
    )
    assert revoke.status_code == 303
    entra.control("DELETE", "/_emulator/requests")
    never = f"/l/{secrets.token_urlsafe(32)}"
    truncated = path_of(valid)[:-6]
    person = helpdesk.other()
    token = person.csrf("/sign-in")
    bodies = set()
    for target in (path_of(expired), path_of(revoked), path_of(used), truncated, never):
        shown = person.client.get(target)
        started = person.client.post(target, data={"csrf_token": token})
        for answer in (shown, started):
            assert answer.status_code == 404
            bodies.add(REFERENCE.sub("", answer.get_data(as_text=True)))
    assert len(bodies) == 1
    assert "Contact your helpdesk" in bodies.pop()
    with person.client.session_transaction() as session:
        assert not session.get(FLOWS_KEY)
    assert entra.request_log(endpoint="authorize") == []
    assert person.client.get(path_of(valid)).status_code == 200  # the valid one still works


def test_a_failed_flow_shows_on_the_link_and_in_the_lookup(helpdesk: Any, connect: Any) -> None:
    link_id, url = create_link(helpdesk, login_hint="user@fabrikam.test")
    person = helpdesk.other()
    start = person.client.post(path_of(url), data={"csrf_token": person.csrf(path_of(url))})
    declined = helpdesk.entra.sign_in(start.headers["Location"], "user@fabrikam.test", accept=False)
    assert person.callback(declined).status_code in (400, 403)
    page = helpdesk.client.get(f"/helpdesk/links/{link_id}").get_data(as_text=True)
    assert "Failed" in page and "AADSTS65004" in page
    connect("outlook", "user@fabrikam.test")  # the lookup lists people with connections
    lookup = helpdesk.client.get("/helpdesk/users?q=user@fabrikam.test").get_data(as_text=True)
    assert "Recent failed sign-ins" in lookup and "AADSTS65004" in lookup


def test_lookup_shows_health_and_test_connection_calls_graph(
    helpdesk: Any, app: Flask, connect: Any, entra: Any
) -> None:
    connection_id, _ = connect("onedrive", "user@fabrikam.test")
    page = helpdesk.client.get("/helpdesk/users?q=USER@fabrikam.test").get_data(as_text=True)
    assert "OneDrive" in page and "Active" in page and "Test connection" in page
    token = helpdesk.csrf("/helpdesk")
    answer = helpdesk.client.post(
        f"/helpdesk/connections/{connection_id}/test", data={"csrf_token": token}
    )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "HTTP 200" in text and "works end to end" in text and "HTTP 4" not in text
    assert {"helpdesk.lookup", "helpdesk.test_connection"} <= set(audit_actions(app))


def test_storage_without_a_data_role_explains_the_missing_role(helpdesk: Any, connect: Any) -> None:
    connection_id, _ = connect("azure-storage", "user@contoso.test")
    token = helpdesk.csrf("/helpdesk")
    answer = helpdesk.client.post(
        f"/helpdesk/connections/{connection_id}/test", data={"csrf_token": token}
    )
    text = answer.get_data(as_text=True)
    assert "HTTP 403 AuthorizationPermissionMismatch" in text
    assert "Storage Blob Data Reader" in text and "Consent alone is not enough" in text


def test_send_reconnect_link_without_smtp_shows_the_link(helpdesk: Any, connect: Any) -> None:
    connection_id, _ = connect("onedrive", "user@fabrikam.test")
    answer = helpdesk.client.post(
        f"/helpdesk/connections/{connection_id}/reconnect-link",
        data={"csrf_token": helpdesk.csrf("/helpdesk")},
    )
    page = helpdesk.client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "E-mail is not configured" in page
    match = LINK_URL.search(page)
    assert match
    landing = helpdesk.other().client.get(path_of(match.group(1))).get_data(as_text=True)
    assert "Your helpdesk asked you to reconnect OneDrive as user@fabrikam.test" in landing


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("50105", "AADSTS50105"),
        ("AADSTS65001: The user or administrator has not consented.", "AADSTS65001"),
        ("Time (UTC): 2025-01-01 10:00:00Z\nAADSTS code: AADSTS50173\nRequest ID: ab12", "50173"),
    ],
)
def test_troubleshoot_reads_codes_messages_and_support_blocks(
    helpdesk: Any, pasted: str, expected: str
) -> None:
    token = helpdesk.csrf("/helpdesk/troubleshoot")
    page = helpdesk.client.post(
        "/helpdesk/troubleshoot", data={"csrf_token": token, "text": pasted}
    ).get_data(as_text=True)
    assert expected in page and "What you can do" in page or "administrator" in page
    assert f"/help/aadsts/{expected.removeprefix('AADSTS')}" in page


def test_link_form_refuses_a_lifetime_beyond_the_maximum(helpdesk: Any, app: Flask) -> None:
    token = helpdesk.csrf("/helpdesk")
    form = {"csrf_token": token, "kind": "authenticate", "connector": "onedrive", "days": "31"}
    answer = helpdesk.client.post("/helpdesk/links", data=form, follow_redirects=True)
    assert "at most 30 days" in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(HelpdeskLink)).first() is None


def test_shareable_aadsts_pages_need_no_sign_in(client: Any) -> None:
    known = client.get("/help/aadsts/50105").get_data(as_text=True)
    assert "AADSTS50105" in known and "assign" in known.lower()
    unknown = client.get("/help/aadsts/12345678")
    assert unknown.status_code == 200 and "AADSTS12345678" in unknown.get_data(as_text=True)
