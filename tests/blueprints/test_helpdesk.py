"""Helpdesk: who may enter, sharing links end to end, lookups and tests (issue 5)."""

from __future__ import annotations

import math
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

from app.consent import records
from app.errors import LinkRefused
from app.identity import roles
from app.identity.flows import FLOWS_KEY
from app.models import AuditEvent
from app.models import HelpdeskLink
from app.models import utcnow
from app.platform import extensions
from app.platform.extensions import db
from app.web import held
from entra_emulator import Emulator
from tests.signins import Web
from tests.signins import staff_id

LINK_URL = re.compile(r'id="link-url"[^>]*value="([^"]+)"')
REFERENCE = re.compile(r"Reference for the helpdesk: [0-9a-f]+")
GRAPH = "https://graph.microsoft.com"
CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"
FABRIKAM = "7a2e4c6b-9d1f-4b3a-8e5c-0f2d4b6a8c1e"


def grant_onedrive_in_contoso(app: Flask, entra: Emulator) -> None:
    """Let contoso users connect OneDrive (a contoso admin granted its scope tenant-wide)."""
    grant = {
        "tenant": "contoso.test",
        "client_id": app.config["CLIENT_ID"],
        "resource": GRAPH,
        "scopes": [f"{GRAPH}/Files.Read.All"],
        "principal": None,
    }
    assert entra.control("POST", "/_emulator/grants", json=grant).status_code == 201


def create_link(web: Web, **form: str) -> tuple[str, str]:
    """Create a link on the helpdesk page; return its id and the URL shown once."""
    data = {"kind": "authenticate", "connector": "onedrive", "days": "7"} | form
    answer = web.client.post("/helpdesk/links", data={"csrf_token": web.csrf("/helpdesk"), **data})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    page = web.client.get(answer.headers["Location"]).get_data(as_text=True)
    match = LINK_URL.search(page)
    assert match, page
    return answer.headers["Location"].rsplit("/", 1)[1], match.group(1)


def send_reconnect_link(web: Web, connection_id: str) -> str:
    """Press Send reconnect link in the lookup; return where it leads (the link's page)."""
    answer = web.client.post(
        f"/helpdesk/connections/{connection_id}/reconnect-link",
        data={"csrf_token": web.csrf("/helpdesk")},
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return str(answer.headers["Location"])


def path_of(url: str) -> str:
    """Return the path of an absolute portal URL."""
    return urlsplit(url).path


def audit_actions(app: Flask) -> list[str]:
    """Return every audit action recorded so far."""
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEvent))]


def test_someone_without_the_role_gets_403_everywhere(
    web: Web, app: Flask, entra: Emulator
) -> None:
    assert web.client.get("/helpdesk").status_code == 302  # anonymous: sign in first
    assert web.client.post("/helpdesk/links", data={"kind": "authenticate"}).status_code == 403
    web.sign_in("user@contoso.test")
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


def test_helpdesk_posts_still_need_csrf_and_same_origin(helpdesk: Web) -> None:
    form = {"kind": "authenticate", "connector": "onedrive"}
    assert helpdesk.client.post("/helpdesk/links", data=form).status_code == 400
    token = helpdesk.csrf("/helpdesk")
    cross = helpdesk.client.post(
        "/helpdesk/links",
        data=form | {"csrf_token": token},
        headers={"Origin": "https://evil.test"},
    )
    assert cross.status_code == 403


def test_configured_helpdesk_users_get_in(web: Web, app: Flask, entra: Emulator) -> None:
    app.config["HELPDESK_USERS"] = [staff_id(entra, "user@fabrikam.test").upper()]
    web.sign_in("user@fabrikam.test")
    page = web.client.get("/helpdesk")
    assert page.status_code == 200 and "Create a sharing link" in page.get_data(as_text=True)


def test_authenticate_link_from_creation_to_completed(helpdesk: Web, app: Flask) -> None:
    link_id, url = create_link(helpdesk, login_hint="admin@contoso.test")
    assert url.startswith(f"{app.config['PUBLIC_URL']}/l/") and len(path_of(url)) >= 3 + 43
    page = helpdesk.client.get(f"/helpdesk/links/{link_id}").get_data(as_text=True)
    assert "Not opened" in page and path_of(url) not in page  # the URL is shown once
    with app.app_context():
        stored = db.session.get(HelpdeskLink, link_id)
        assert stored is not None and path_of(url).rsplit("/", 1)[1] not in stored.token_hash

    person = helpdesk.other()
    landing = person.client.get(path_of(url)).get_data(as_text=True)
    assert "Your helpdesk asked you to connect OneDrive as admin@contoso.test" in landing
    with person.client.session_transaction() as session:
        assert not session.get(FLOWS_KEY)  # opening starts nothing
    start = person.client.post(path_of(url), data={"csrf_token": person.csrf(path_of(url))})
    assert start.status_code == 303
    assert parse_qs(urlsplit(start.headers["Location"]).query)["login_hint"] == [
        "admin@contoso.test"
    ]
    done = person.callback(helpdesk.entra.sign_in(start.headers["Location"], "admin@contoso.test"))
    assert person.code(done).startswith("ccp_")

    listing = helpdesk.client.get("/helpdesk").get_data(as_text=True)
    assert "Completed" in listing
    again = person.client.get(path_of(url))
    assert again.status_code == 404 and "This link cannot be used" in again.get_data(as_text=True)
    actions = audit_actions(app)
    assert {"link.created", "link.used", "link.completed"} <= set(actions)


def test_unusable_links_all_get_the_same_page_and_start_nothing(
    helpdesk: Web, app: Flask, entra: Emulator
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


def test_a_failed_flow_shows_on_the_link_and_in_the_lookup(
    helpdesk: Web, app: Flask, connect: Any
) -> None:
    app.config["HELPDESK_USERS"] = [
        staff_id(helpdesk.entra, "helpdesk@contoso.test")
    ]  # all tenants
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
    helpdesk: Web, app: Flask, connect: Any, entra: Emulator
) -> None:
    grant_onedrive_in_contoso(app, entra)
    connection_id, _ = connect("onedrive", "user@contoso.test")
    page = helpdesk.client.get("/helpdesk/users?q=USER@contoso.test").get_data(as_text=True)
    assert "OneDrive" in page and "Active" in page and "Test connection" in page
    token = helpdesk.csrf("/helpdesk")
    answer = helpdesk.client.post(
        f"/helpdesk/connections/{connection_id}/test", data={"csrf_token": token}
    )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "HTTP 200" in text and "works end to end" in text and "HTTP 4" not in text
    assert {"helpdesk.lookup", "helpdesk.test_connection"} <= set(audit_actions(app))


def test_storage_without_a_data_role_explains_the_missing_role(helpdesk: Web, connect: Any) -> None:
    connection_id, _ = connect("azure-storage", "user@contoso.test")
    token = helpdesk.csrf("/helpdesk")
    answer = helpdesk.client.post(
        f"/helpdesk/connections/{connection_id}/test", data={"csrf_token": token}
    )
    text = answer.get_data(as_text=True)
    assert "HTTP 403 AuthorizationPermissionMismatch" in text
    assert "Storage Blob Data Reader" in text and "Consent alone is not enough" in text


def test_send_reconnect_link_without_smtp_shows_the_link(
    helpdesk: Web, app: Flask, connect: Any, entra: Emulator
) -> None:
    grant_onedrive_in_contoso(app, entra)
    connection_id, _ = connect("onedrive", "user@contoso.test")
    page = helpdesk.client.get(send_reconnect_link(helpdesk, connection_id)).get_data(as_text=True)
    assert "E-mail is not configured" in page
    match = LINK_URL.search(page)
    assert match
    landing = helpdesk.other().client.get(path_of(match.group(1))).get_data(as_text=True)
    assert "Your helpdesk asked you to reconnect OneDrive as user@contoso.test" in landing


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("50105", "AADSTS50105"),
        ("AADSTS65001: The user or administrator has not consented.", "AADSTS65001"),
        ("Time (UTC): 2025-01-01 10:00:00Z\nAADSTS code: AADSTS50173\nRequest ID: ab12", "50173"),
    ],
)
def test_troubleshoot_reads_codes_messages_and_support_blocks(
    helpdesk: Web, pasted: str, expected: str
) -> None:
    token = helpdesk.csrf("/helpdesk/troubleshoot")
    page = helpdesk.client.post(
        "/helpdesk/troubleshoot", data={"csrf_token": token, "text": pasted}
    ).get_data(as_text=True)
    assert expected in page and "What you can do" in page or "administrator" in page
    assert f"/help/aadsts/{expected.removeprefix('AADSTS')}" in page


def test_link_form_refuses_a_lifetime_beyond_the_maximum(helpdesk: Web, app: Flask) -> None:
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


def fabrikam_link(app: Flask) -> str:
    """Return the id of a link that Fabrikam's own helpdesk (its app role) made."""
    with app.app_context():
        made = extensions.links().create(
            db.session,
            kind="authenticate",
            created_by="helpdesk@fabrikam.test",
            tenant_id=FABRIKAM,
            scope=frozenset({FABRIKAM}),
            connector="onedrive",
            login_hint="user@fabrikam.test",
        )
        return made.link.id


def fabrikam_consent_request(app: Flask) -> str:
    """Return the id of a consent request filed by user@fabrikam.test."""
    with app.app_context():
        who = records.Requester("fabrikam-user-oid", "user@fabrikam.test", FABRIKAM)
        found, _ = records.open_request(db.session, who, "onedrive", ["Files.Read.All"], 7)
        db.session.commit()
        return found.id


def test_app_role_helpdesk_cannot_reach_another_tenant(
    helpdesk: Web, app: Flask, connect: Any, entra: Emulator
) -> None:
    theirs, _ = connect("onedrive", "user@fabrikam.test")
    token = helpdesk.csrf("/helpdesk")
    for query in ("user@fabrikam.test", "user@"):
        page = helpdesk.client.get(f"/helpdesk/users?q={query}").get_data(as_text=True)
        assert "Nobody with connections matches" in page and theirs not in page
    for action in ("test", "reconnect-link"):
        answer = helpdesk.client.post(
            f"/helpdesk/connections/{theirs}/{action}", data={"csrf_token": token}
        )
        assert answer.status_code == 404
    form = {"csrf_token": token, "days": "7"}
    refusals = [
        ({"kind": "reconnect", "connection_id": theirs}, "There is no live connection"),
        ({"kind": "admin_consent", "connector": "onedrive", "tenant": FABRIKAM}, "your own"),
        (
            {"kind": "consent_request", "consent_request_id": fabrikam_consent_request(app)},
            "There is no consent request with that id",
        ),
    ]
    for fields, reason in refusals:
        answer = helpdesk.client.post("/helpdesk/links", data=form | fields, follow_redirects=True)
        assert reason in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(HelpdeskLink)).first() is None
        assert "helpdesk.test_connection" not in audit_actions(app)

    other = fabrikam_link(app)
    assert other not in helpdesk.client.get("/helpdesk").get_data(as_text=True)
    assert helpdesk.client.get(f"/helpdesk/links/{other}").status_code == 404
    revoke = helpdesk.client.post(f"/helpdesk/links/{other}/revoke", data={"csrf_token": token})
    assert revoke.status_code == 404
    with app.app_context():
        stored = db.session.get(HelpdeskLink, other)
        assert stored is not None and stored.revoked_at is None


def test_app_role_helpdesk_works_in_its_own_tenant(
    helpdesk: Web, app: Flask, connect: Any, entra: Emulator
) -> None:
    grant_onedrive_in_contoso(app, entra)
    ours, _ = connect("onedrive", "user@contoso.test")
    page = helpdesk.client.get("/helpdesk/users?q=user@").get_data(as_text=True)
    assert ours in page and "user@contoso.test" in page
    link_id, _ = create_link(helpdesk, kind="reconnect", connection_id=ours)
    admin_id, _ = create_link(helpdesk, kind="admin_consent", connector="onedrive")
    with app.app_context():
        made = [db.session.get(HelpdeskLink, i) for i in (link_id, admin_id)]
        assert [(m.tenant_id, m.tenant) for m in made if m] == [(CONTOSO, None), (CONTOSO, CONTOSO)]
    listing = helpdesk.client.get("/helpdesk").get_data(as_text=True)
    assert link_id in listing and admin_id in listing


def test_helpdesk_scope_is_one_function_for_every_check() -> None:
    oid = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    member = {
        "username": "helpdesk@contoso.test",
        "tenant_id": CONTOSO,
        "oid": oid,
        "roles": ["Helpdesk"],
    }
    assert roles.helpdesk_scope(member, []) == frozenset({CONTOSO})
    assert roles.helpdesk_scope(member, [f"{CONTOSO}/{oid}".upper()]) is None  # the operator's
    assert roles.helpdesk_scope(member, ["helpdesk@contoso.test"]) == frozenset({CONTOSO})
    assert roles.helpdesk_scope(member, [f"{FABRIKAM}/{oid}"]) == frozenset({CONTOSO})
    nobody = {"username": "user@contoso.test", "tenant_id": CONTOSO, "roles": []}
    assert roles.helpdesk_scope(nobody, []) == frozenset() and not roles.is_helpdesk(nobody, [])
    personal = {
        "username": "pat@outlook.test",
        "tenant_id": roles.MSA_TENANT,
        "oid": oid,
        "roles": ["Helpdesk"],
    }
    pat = f"{roles.MSA_TENANT}/{oid}"
    assert roles.helpdesk_scope(personal, ["pat@outlook.test", pat]) == frozenset()
    assert not roles.is_helpdesk(personal, ["pat@outlook.test", pat])
    assert roles.helpdesk_scope(None, [pat]) == frozenset()
    assert roles.in_scope(FABRIKAM, None) and not roles.in_scope(FABRIKAM, frozenset({CONTOSO}))
    assert not roles.in_scope(None, frozenset({CONTOSO}))


def test_helpdesk_of_one_tenant_cannot_see_another_tenants_consent_request(
    helpdesk: Web, app: Flask
) -> None:
    request_id = fabrikam_consent_request(app)
    assert helpdesk.client.get(f"/consent-requests/{request_id}").status_code == 404
    app.config["HELPDESK_USERS"] = [staff_id(helpdesk.entra, "helpdesk@contoso.test")]
    assert helpdesk.client.get(f"/consent-requests/{request_id}").status_code == 200


@pytest.mark.parametrize("days", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_link_form_refuses_a_lifetime_that_is_not_a_number(
    helpdesk: Web, app: Flask, days: str
) -> None:
    token = helpdesk.csrf("/helpdesk")
    form = {"csrf_token": token, "kind": "authenticate", "connector": "onedrive", "days": days}
    answer = helpdesk.client.post("/helpdesk/links", data=form)
    assert answer.status_code == 400  # the form again, as typed, with the field marked
    assert "The lifetime must be a number of days." in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(HelpdeskLink)).first() is None
        for value in (math.nan, math.inf):
            with pytest.raises(LinkRefused, match="number of days"):
                extensions.links().create(
                    db.session,
                    kind="authenticate",
                    created_by="cli:test",
                    tenant_id=None,
                    scope=None,
                    connector="onedrive",
                    days=value,
                )


def test_a_held_link_and_a_held_code_are_shown_once_each(app: Flask) -> None:
    session: dict[str, Any] = {}
    url = f"{app.config['PUBLIC_URL']}/l/{secrets.token_urlsafe(32)}"
    with app.app_context():
        held.keep_for_reveal(session, "connection-1", "the-code")
        held.keep_for_reveal(session, "link-1", url, kind="link")
        assert url not in repr(session) and "the-code" not in repr(session)  # sealed
        assert held.reveal(session, "link-1", kind="link") == url
        assert held.reveal(session, "link-1", kind="link") is None
        assert held.reveal(session, "connection-1") == "the-code"


# --- Issue 14: the link form shows the chosen kind's fields, keeps what was typed, names the field


def field_names(page: str) -> set[str]:
    """Return the names of the link form's inputs (the POST form only)."""
    form = page[page.index('action="/helpdesk/links"') :]
    form = form[: form.index("</form>")]
    return set(re.findall(r'name="([a-z_]+)"', form)) - {"csrf_token", "kind"}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("authenticate", {"connector", "login_hint", "tenant", "account_type", "multi_use"}),
        ("reconnect", {"connection_id", "multi_use"}),
        ("admin_consent", {"connector", "tenant", "login_hint"}),
        ("consent_request", {"consent_request_id", "login_hint"}),
    ],
)
def test_link_form_shows_only_the_chosen_kinds_fields(
    helpdesk: Web, kind: str, expected: set[str]
) -> None:
    first = helpdesk.page("/helpdesk")
    assert 'action="/helpdesk/links"' not in first  # the kind comes first
    assert "Choose kind" in first
    page = helpdesk.page(f"/helpdesk?kind={kind}")
    assert field_names(page) == expected | {"days", "note"}


def test_a_blank_connection_id_is_named_and_the_form_keeps_what_was_typed(
    helpdesk: Web, app: Flask
) -> None:
    form = {"kind": "reconnect", "connection_id": "", "days": "3", "note": "Ticket 4711"}
    answer = helpdesk.client.post(
        "/helpdesk/links", data={"csrf_token": helpdesk.csrf("/helpdesk"), **form}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Give the connection id" in page
    assert "There is no live connection" not in page
    assert re.search(r'id="connection_id"[^>]*aria-invalid="true"', page)
    assert 'id="connection_id-error"' in page
    assert 'value="Ticket 4711"' in page and 'id="days"' in page and 'value="3"' in page
    assert 'role="alert"' in page and "notice-error" in page
    with app.app_context():
        assert db.session.scalars(select(HelpdeskLink)).first() is None


def test_a_refused_login_hint_keeps_the_connector_chosen(helpdesk: Web) -> None:
    form = {"kind": "authenticate", "connector": "outlook", "login_hint": "not-an-address"}
    answer = helpdesk.client.post(
        "/helpdesk/links", data={"csrf_token": helpdesk.csrf("/helpdesk"), **form}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert re.search(r'id="login_hint"[^>]*value="not-an-address"[^>]*aria-invalid="true"', page)
    assert '<option value="outlook" selected>' in page


def test_a_link_without_a_kind_asks_for_the_kind(helpdesk: Web) -> None:
    answer = helpdesk.client.post(
        "/helpdesk/links", data={"csrf_token": helpdesk.csrf("/helpdesk"), "kind": "nope"}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Choose the kind of link first." in page
    assert re.search(r'id="kind"[^>]*aria-invalid="true"', page)


def test_revoking_a_link_says_so_as_a_success(helpdesk: Web) -> None:
    link_id, _ = create_link(helpdesk)
    answer = helpdesk.client.post(
        f"/helpdesk/links/{link_id}/revoke",
        data={"csrf_token": helpdesk.csrf("/helpdesk")},
        follow_redirects=True,
    )
    page = answer.get_data(as_text=True)
    assert "notice-success" in page and 'role="status"' in page and "The link was revoked" in page
    assert "notice-error" not in page


def test_the_troubleshooter_speaks_to_the_helpdesk(helpdesk: Web) -> None:
    token = helpdesk.csrf("/helpdesk/troubleshoot")
    page = helpdesk.client.post(
        "/helpdesk/troubleshoot", data={"csrf_token": token, "text": "AADSTS50011: no match"}
    ).get_data(as_text=True)
    assert "What to tell the user" in page and "What to ask the portal&#39;s operator" in page
    assert "support details below" not in page
    assert "What you can do</h3>" not in page or "Entra sign-in logs" in page
