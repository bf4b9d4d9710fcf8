"""Helpdesk GETs that wrote and links outside an own-tenant helpdesk: issue 16, items 6-7."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from app.models import AuditEvent
from app.models import HelpdeskLink
from app.models import utcnow
from app.platform.extensions import db
from tests.signins import Web

CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"
FABRIKAM = "7a2e4c6b-9d1f-4b3a-8e5c-0f2d4b6a8c1e"
LINK_URL = re.compile(r'id="link-url"[^>]*value="([^"]+)"')


def audit_rows(app: Flask) -> int:
    """Return how many audit rows exist."""
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def new_link(web: Web, **form: str) -> tuple[int, str]:
    """Post the link form; return the status and the page it leads to (a refusal is in place)."""
    data = {"kind": "authenticate", "connector": "onedrive", "days": "7"} | form
    answer = web.client.post("/helpdesk/links", data={"csrf_token": web.csrf("/helpdesk"), **data})
    if answer.status_code != 303:
        return answer.status_code, answer.get_data(as_text=True)
    page = web.client.get(answer.headers["Location"]).get_data(as_text=True)
    return answer.status_code, page


def test_c55_troubleshoot_get_shows_the_empty_form_and_writes_nothing(
    helpdesk: Web, app: Flask
) -> None:
    before = audit_rows(app)
    answer = helpdesk.client.get(
        "/helpdesk/troubleshoot?text=AADSTS65001", data={"text": "AADSTS65001"}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "AADSTS65001" not in page
    assert audit_rows(app) == before
    token = helpdesk.csrf("/helpdesk/troubleshoot")
    posted = helpdesk.client.post(
        "/helpdesk/troubleshoot", data={"csrf_token": token, "text": "AADSTS65001"}
    )
    assert posted.status_code == 200 and "AADSTS65001" in posted.get_data(as_text=True)
    assert audit_rows(app) == before + 1
    no_token = helpdesk.client.post("/helpdesk/troubleshoot", data={"text": "AADSTS65001"})
    assert no_token.status_code in (400, 403) and audit_rows(app) == before + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "https://attacker.example/page"},
    ],
)
def test_c56_a_lookup_from_another_site_runs_nothing_and_writes_nothing(
    helpdesk: Web, app: Flask, headers: dict[str, str]
) -> None:
    before = audit_rows(app)
    answer = helpdesk.client.get("/helpdesk/users?q=user@contoso.test", headers=headers)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "press Find to run it" in page
    assert audit_rows(app) == before


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}])
def test_c56_a_lookup_from_the_portal_is_audited(
    helpdesk: Web, app: Flask, headers: dict[str, str]
) -> None:
    before = audit_rows(app)
    answer = helpdesk.client.get("/helpdesk/users?q=user@contoso.test", headers=headers)
    assert answer.status_code == 200 and "press Find" not in answer.get_data(as_text=True)
    with app.app_context():
        last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert audit_rows(app) == before + 1 and last is not None and last.action == "helpdesk.lookup"


@pytest.mark.parametrize("tenant", [FABRIKAM, "fabrikam.test", FABRIKAM.upper()])
def test_c57_own_tenant_helpdesk_cannot_address_another_tenant(
    helpdesk: Web, app: Flask, tenant: str
) -> None:
    status, page = new_link(helpdesk, tenant=tenant)
    assert status == 400 and "The link was not created" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HelpdeskLink)) == 0


@pytest.mark.parametrize("tenant", [CONTOSO, "contoso.test", ""])
def test_c57_own_tenant_helpdesk_addresses_its_own_tenant(helpdesk: Web, tenant: str) -> None:
    status, page = new_link(helpdesk, tenant=tenant)
    assert status == 303 and LINK_URL.search(page), page


def test_c57_links_addressed_elsewhere_and_their_events_stay_hidden(
    helpdesk: Web, app: Flask
) -> None:
    with app.app_context():  # made before the check: by a contoso member, for fabrikam
        link = HelpdeskLink(
            token_hash=secrets.token_hex(32),
            kind="authenticate",
            connector="onedrive",
            tenant=FABRIKAM,
            login_hint="victim@fabrikam.test",
            multi_use=False,
            created_by="helpdesk@contoso.test",
            tenant_id=CONTOSO,
            created_at=utcnow(),
            expires_at=utcnow() + timedelta(days=7),
            uses=0,
        )
        db.session.add(link)
        db.session.commit()
        link_id = link.id
    assert helpdesk.client.get(f"/helpdesk/links/{link_id}").status_code == 404
    assert link_id not in helpdesk.client.get("/helpdesk").get_data(as_text=True)
