"""The admin's staff pages (issue 14): the audit log in plain words, filtered, paged, as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from flask import Flask

from app.models import AuditEvent
from app.models import utcnow
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.blueprints.test_consent import authenticate_blocked
from tests.blueprints.test_consent import send_request
from tests.signins import People
from tests.signins import Web

CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"


def denied_request(person: People) -> tuple[Web, str]:
    """File a contoso SharePoint request and have the admin deny it; return the admin and id."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    admin = person("admin@contoso.test")
    admin.sign_in()
    admin.post(f"/admin/requests/{request_id}/deny", "/admin", reason="Not this quarter")
    return admin, request_id


def add_events(app: Flask, count: int, action: str = "tenant_consent.granted") -> None:
    """Write audit events for contoso's OneDrive consent, one a minute back from now."""
    with app.app_context():
        now = utcnow()
        for n in range(count):
            db.session.add(
                AuditEvent(
                    at=now - timedelta(minutes=n + 1),
                    actor=f"admin{n % 3}@contoso.test",
                    action=action,
                    target=f"{CONTOSO}/onedrive",
                    detail={},
                )
            )
        db.session.commit()


def test_the_audit_log_speaks_in_labels_and_names(app: Flask, person: People) -> None:
    admin, request_id = denied_request(person)
    page = admin.page("/admin/audit")
    assert "Request denied" in page and "Request sent" in page
    assert (
        ">consent_request.denied<" not in page
        and "consent_request.created" not in page.split('<select id="event"')[0]
    )
    assert f'<a href="/consent-requests/{request_id}">Request for SharePoint</a>' in page
    assert f">{request_id}<" not in page  # the id is only in the link, never shown as text
    assert "Reason: Not this quarter" in page and "user@contoso.test" in page


def test_the_audit_log_filters_by_event_actor_and_date(app: Flask, person: People) -> None:
    admin, _ = denied_request(person)
    only_denied = admin.page("/admin/audit?event=consent_request.denied")
    assert "Request denied" in only_denied.split("<tbody>")[1]
    assert "Request sent" not in only_denied.split("<tbody>")[1]
    by_user = admin.page("/admin/audit?actor=user@contoso.test").split("<tbody>")[1]
    assert "Request sent" in by_user and "Request denied" not in by_user
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    later = admin.page(f"/admin/audit?from={tomorrow}")
    assert "No event matches these filters." in later
    today = utcnow().date().isoformat()
    assert "Request denied" in admin.page(f"/admin/audit?from={today}&to={today}")
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    assert "No event matches" in admin.page(f"/admin/audit?to={yesterday}")


def test_a_wrong_filter_is_said_and_not_applied(app: Flask, person: People) -> None:
    admin, _ = denied_request(person)
    answer = admin.client.get("/admin/audit?from=31.12.2026&event=nope")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "The From date filter was not understood" in page
    assert "The event filter was not understood" in page
    assert "Request denied" in page and 'role="alert"' in page


def test_the_audit_log_pages_by_fifty(app: Flask, person: People) -> None:
    admin, _ = denied_request(person)
    add_events(app, 120)
    first = admin.page("/admin/audit")
    assert "122 events" in first and "Page 1 of 3" in first
    assert first.split("<tbody>")[1].count("<tr>") == 50
    assert 'href="/admin/audit?page=2"' in first and "Newer events" not in first
    last = admin.page("/admin/audit?page=3")
    assert last.split("<tbody>")[1].count("<tr>") == 22 and "Older events" not in last
    assert "Request sent" in last  # the oldest event is on the last page
    filtered = admin.page("/admin/audit?event=tenant_consent.granted&page=2")
    assert "Page 2 of 3" in filtered
    assert 'href="/admin/audit?page=3&amp;event=tenant_consent.granted"' in filtered
    assert admin.client.get("/admin/audit?page=99").status_code == 200  # the last page


def test_the_csv_is_the_filtered_view_with_formulas_defused(app: Flask, person: People) -> None:
    admin, _ = denied_request(person)
    add_events(app, 3)
    with app.app_context():
        db.session.add(
            AuditEvent(
                at=utcnow(),
                actor="=cmd|' /C calc'!A0",
                action="tenant_consent.granted",
                target=f"{CONTOSO}/outlook",
                detail={"reason": "@SUM(1)"},
            )
        )
        db.session.commit()
    answer = admin.client.get("/admin/audit.csv?event=tenant_consent.granted")
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert answer.mimetype == "text/csv"
    assert len(rows) == 4 and {row["event"] for row in rows} == {"Granted for organization"}
    assert rows[0]["actor"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["target"] == "Outlook" and rows[0]["details"] == "Reason: @SUM(1)"
    assert all(not row[key].startswith(("=", "+", "-", "@")) for row in rows for key in row)
    everything = admin.client.get("/admin/audit.csv").get_data(as_text=True)
    assert "Request denied" in everything and "Request sent" in everything


def test_other_tenants_events_stay_out(app: Flask, person: People) -> None:
    admin, _ = denied_request(person)
    with app.app_context():
        db.session.add(
            AuditEvent(
                at=utcnow(),
                actor="admin@fabrikam.test",
                action="tenant_consent.granted",
                target="7a2e4c6b-9d1f-4b3a-8e5c-0f2d4b6a8c1e/onedrive",
                detail={},
            )
        )
        db.session.commit()
    assert "admin@fabrikam.test" not in admin.page("/admin/audit")
    assert "admin@fabrikam.test" not in admin.client.get("/admin/audit.csv").get_data(as_text=True)


def test_readiness_warns_about_the_permissions_and_audits_each_check(
    app: Flask, person: People
) -> None:
    admin = person("admin@contoso.test")
    admin.sign_in()
    page = admin.page("/admin/readiness")
    before_button = page.split("Check now</button>")[0]
    for scope in ("Application.Read.All", "Directory.Read.All", "Policy.Read.All"):
        assert f"<strong>{scope}</strong>" in before_button
    for _ in range(2):
        answer = admin.post("/admin/readiness", "/admin/readiness")
        assert admin.callback(admin.entra_answer(answer.headers["Location"])).status_code == 303
    log = admin.page("/admin/audit?event=readiness.checked").split("<tbody>")[1]
    assert log.count("Readiness checked") == 2 and "Tenant readiness" in log
    assert "admin@contoso.test" in log and "Problems found: " in log


def test_the_status_page_says_nobody_was_told_without_mail_or_webhook(
    app: Flask, person: People
) -> None:
    user = person("user@contoso.test")
    authenticate_blocked(user)
    page = user.page(f"/consent-requests/{send_request(user)}")
    told = page.split('id="who-was-told">')[1].split("</p>")[0]
    assert "Nobody was told automatically" in told and "has been asked" not in told
    assert "check this page for their decision" in told


def test_the_status_page_says_how_the_admins_were_asked(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    mailing = make_portal(SMTP_URL="smtp://127.0.0.1:9", NOTIFY_MODE="manual")
    Web.person(mailing, entra, "admin@contoso.test").sign_in()  # now a known admin
    user = Web.person(mailing, entra, "user@contoso.test")
    authenticate_blocked(user)
    told = user.page(f"/consent-requests/{send_request(user)}").split('id="who-was-told">')[1]
    assert told.startswith("Your IT administrator has been asked by e-mail; you get an e-mail")

    hooked = make_portal(WEBHOOK_URLS=["http://127.0.0.1:9/hook"], NOTIFY_MODE="manual")
    user = Web.person(hooked, entra, "user@contoso.test")
    authenticate_blocked(user)
    told = user.page(f"/consent-requests/{send_request(user)}").split('id="who-was-told">')[1]
    assert told.startswith("Your IT administrator has been asked through your organization")
    assert "check this page for their decision" in told.split("</p>")[0]


def grant_for_organization(admin: Web, connector: str) -> None:
    """Press Grant for organization, consent at Entra and come back through the confirmation."""
    answer = admin.post(f"/admin/connectors/{connector}/grant", "/admin")
    back = admin.callback(admin.entra_answer(answer.headers["Location"]))
    done = admin.callback(admin.entra_answer(back.headers["Location"]))
    assert done.headers["Location"].endswith("/admin")


def tenant_wide_graph_scopes(entra: Emulator, app: Flask) -> set[str]:
    """Return the scopes of the portal's tenant-wide Graph grant in contoso at the emulator."""
    state = entra.control("GET", "/_emulator/state").json()
    return {
        scope.rsplit("/", 1)[-1]
        for grant in state["grants"]
        if grant["principal"] is None
        and grant["client_id"] == app.config["CLIENT_ID"]
        and grant["tenant"] == CONTOSO
        and "graph" in grant["resource"]
        for scope in grant["scopes"]
    }


def test_a_granted_connector_shows_granted_and_can_be_withdrawn(
    app: Flask, person: People, entra: Emulator
) -> None:
    admin = person("admin@contoso.test")
    admin.sign_in()
    grant_for_organization(admin, "onedrive")
    grant_for_organization(admin, "sharepoint")
    assert {"Files.Read.All", "Sites.Read.All"} <= tenant_wide_graph_scopes(entra, app)
    page = admin.page("/admin")
    row = page.split('<th scope="row">OneDrive</th>')[1].split("</tr>")[0]
    assert "Granted for organization</span>" in row and "Withdraw" in row
    assert "Grant for organization: OneDrive" not in page
    assert "Grant for organization: Outlook" in page  # not granted: still offered

    confirm = admin.page("/admin/connectors/onedrive/withdraw")
    assert "Withdraw OneDrive for your organization?" in confirm
    assert "<strong>DelegatedPermissionGrant.ReadWrite.All</strong>" in confirm
    answer = admin.post(
        "/admin/connectors/onedrive/withdraw", "/admin/connectors/onedrive/withdraw"
    )
    assert answer.status_code == 303
    scope = parse_qs(urlsplit(answer.headers["Location"]).query)["scope"][0]
    assert "DelegatedPermissionGrant.ReadWrite.All" in scope
    done = admin.callback(admin.entra_answer(answer.headers["Location"]))
    assert done.status_code == 303 and done.headers["Location"].endswith("/admin")
    left = tenant_wide_graph_scopes(entra, app)
    assert "Files.Read.All" not in left and "Sites.Read.All" in left  # SharePoint keeps its own
    after = admin.client.get("/admin").get_data(as_text=True)
    assert "OneDrive is no longer granted for your organization" in after
    assert "Grant for organization: OneDrive" in after
    log = admin.page("/admin/audit?event=tenant_consent.withdrawn").split("<tbody>")[1]
    assert "Organization grant withdrawn" in log and "OneDrive" in log
    assert "taken out of the grant it shared" in log

    answer = admin.post("/admin/connectors/sharepoint/withdraw", "/admin")
    admin.callback(admin.entra_answer(answer.headers["Location"]))
    assert "Sites.Read.All" not in tenant_wide_graph_scopes(entra, app)


def test_withdraw_is_refused_for_a_connector_not_granted(app: Flask, person: People) -> None:
    admin = person("admin@contoso.test")
    admin.sign_in()
    answer = admin.client.get("/admin/connectors/outlook/withdraw", follow_redirects=True)
    assert "Outlook is not granted for your organization." in answer.get_data(as_text=True)
    user = person("user@contoso.test")
    user.sign_in()
    assert user.client.get("/admin/connectors/outlook/withdraw").status_code == 403
    assert user.post("/admin/connectors/outlook/withdraw").status_code == 403
