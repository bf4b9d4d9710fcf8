"""Issue 15, items 1-2: staff named by tenant id and object id, links bound to their person."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from app.errors import ConfigError
from app.models import AuditEvent
from app.models import Connection
from app.models import HelpdeskLink
from app.models import LinkEvent
from app.platform import staff
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.blueprints.test_helpdesk import FABRIKAM
from tests.blueprints.test_helpdesk import LINK_URL
from tests.blueprints.test_helpdesk import create_link
from tests.blueprints.test_helpdesk import grant_onedrive_in_contoso
from tests.blueprints.test_helpdesk import path_of
from tests.blueprints.test_helpdesk import send_reconnect_link
from tests.signins import Web
from tests.signins import staff_id

MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@pytest.mark.parametrize("key", ["ADMIN_USERS", "HELPDESK_USERS"])
def test_a_username_in_a_staff_setting_stops_start_up_and_says_how_to_find_ids(
    make_portal: Callable[..., Flask], key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_portal(**{key: ["admin@contoso.test"]})
    message = str(refused.value)
    assert f"PORTAL_{key} lists 'admin@contoso.test', a username" in message
    assert "tenant id and object id" in message and staff.EXAMPLE in message
    assert "/account" in message and "Object ID" in message  # where to read the pair
    assert "demo accounts" not in message  # only the demo knows its accounts


def test_the_demo_refusal_lists_the_demo_accounts_pairs(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    pair = staff_id(entra, "admin@contoso.test")
    with pytest.raises(ConfigError) as refused:
        make_portal(
            ADMIN_USERS=["admin@contoso.test"],
            **{staff.DEMO_IDS_KEY: {"admin@contoso.test": pair}},
        )
    assert "The demo accounts' pairs:" in str(refused.value) and pair in str(refused.value)


def test_a_personal_accounts_pair_and_a_half_pair_are_refused(
    make_portal: Callable[..., Flask],
) -> None:
    with pytest.raises(ConfigError, match="personal Microsoft account"):
        make_portal(ADMIN_USERS=[f"{MSA_TENANT}/{uuid.uuid4()}"])
    with pytest.raises(ConfigError, match="not a tenant-id/object-id pair"):
        make_portal(HELPDESK_USERS=[str(uuid.uuid4())])


def test_the_setting_from_the_environment_is_a_comma_separated_list_of_pairs(
    make_portal: Callable[..., Flask], entra: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = [staff_id(entra, "helpdesk@contoso.test"), staff_id(entra, "user@fabrikam.test")]
    monkeypatch.setenv("PORTAL_ADMIN_USERS", f" {pairs[0].upper()} , {pairs[1]}")
    portal = make_portal()
    assert portal.config["ADMIN_USERS"] == pairs


def test_the_same_username_in_another_tenant_is_not_the_configured_admin(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    """The operator lists helpdesk@contoso.test's pair; an account of fabrikam carrying that
    very preferred_username (a renamed account, a guest showing its home UPN) is no admin."""
    portal = make_portal(ADMIN_USERS=[staff_id(entra, "helpdesk@contoso.test")])
    listed = Web.person(portal, entra, "helpdesk@contoso.test")
    listed.sign_in()
    assert "PORTAL_ADMIN_USERS" in listed.page("/admin")

    with entra.state.lock:  # the same name, now an account of another tenant
        users = entra.state.world.users
        users["helpdesk@contoso.test"] = dataclasses.replace(
            users["helpdesk@contoso.test"], tenant=FABRIKAM, oid=str(uuid.uuid4()), app_roles={}
        )
    impostor = Web.person(portal, entra, "helpdesk@contoso.test")
    impostor.sign_in()
    assert impostor.page("/account").count("helpdesk@contoso.test") >= 1
    assert impostor.client.get("/admin").status_code == 403
    assert 'href="/admin"' not in impostor.page("/connections")


def test_your_account_shows_the_pair_to_send_the_operator(web: Web, entra: Emulator) -> None:
    assert web.client.get("/account").status_code == 302  # sign in first
    web.sign_in("user@contoso.test")
    page = web.page("/account")
    pair = staff_id(entra, "user@contoso.test")
    assert f'value="{pair}"' in page and 'data-copy="staff-id"' in page
    assert "Work or school account" in page and "PORTAL_ADMIN_USERS" in page


def link_rows(app: Flask, link_id: str) -> tuple[HelpdeskLink, list[str], int]:
    """Return a link afresh, its events and the number of connections stored."""
    with app.app_context():
        link = db.session.get(HelpdeskLink, link_id)
        assert link is not None
        events = db.session.scalars(
            select(LinkEvent.event).where(LinkEvent.link_id == link_id).order_by(LinkEvent.id)
        )
        count = db.session.scalar(select(func.count()).select_from(Connection)) or 0
        db.session.expunge(link)
        return link, list(events), count


def follow_link(person: Web, url: str, username: str) -> Any:
    """Press Connect on a link's page and sign in at the emulator as this account."""
    start = person.client.post(path_of(url), data={"csrf_token": person.csrf(path_of(url))})
    assert start.status_code == 303
    at_microsoft = start.headers["Location"]
    return at_microsoft, person.callback(
        person.entra.sign_in(at_microsoft, username, accept=True, session=person.entra_session)
    )


def test_a_link_for_one_person_completed_by_another_creates_nothing(
    helpdesk: Web, app: Flask, entra: Emulator
) -> None:
    grant_onedrive_in_contoso(app, entra)
    link_id, url = create_link(helpdesk, login_hint="user@contoso.test")
    intruder = helpdesk.other()
    at_microsoft, answer = follow_link(intruder, url, "admin@contoso.test")
    assert parse_qs(urlsplit(at_microsoft).query)["login_hint"] == ["user@contoso.test"]
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403
    assert "This link was made for someone else" in page
    assert 'made for <strong class="wrap">user@contoso.test</strong>' in page
    assert "admin@contoso.test" in page and "ccp_" not in page
    link, events, connections = link_rows(app, link_id)
    assert connections == 0 and link.completed_at is None and link.uses == 0
    assert events[-1] == "refused"
    assert intruder.client.get("/connections").status_code == 302  # not signed in to the portal
    shown = helpdesk.page(f"/helpdesk/links/{link_id}")
    assert "refused — signed in as admin@contoso.test" in shown
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action)))
    assert "link.refused" in actions and "link.completed" not in actions

    owner = helpdesk.other()  # the link still works for its person
    _, done = follow_link(owner, url, "user@contoso.test")
    assert owner.code(done).startswith("ccp_")
    link, events, connections = link_rows(app, link_id)
    assert connections == 1 and link.completed_at is not None and "completed" in events


def test_a_reconnect_link_is_for_the_connections_own_account(
    helpdesk: Web, app: Flask, entra: Emulator, connect: Any
) -> None:
    grant_onedrive_in_contoso(app, entra)
    connection_id, _ = connect("onedrive", "user@contoso.test")
    location = send_reconnect_link(helpdesk, connection_id)
    link_id = location.rsplit("/", 1)[1]
    url = create_url(helpdesk, location)
    _, answer = follow_link(helpdesk.other(), url, "admin@contoso.test")
    assert answer.status_code == 403 and "user@contoso.test" in answer.get_data(as_text=True)
    _, events, connections = link_rows(app, link_id)
    assert connections == 1 and events[-1] == "refused"


def create_url(web: Web, location: str) -> str:
    """Return the link URL shown once on the page a link's creation leads to."""
    match = LINK_URL.search(web.page(location))
    assert match
    return match.group(1)
