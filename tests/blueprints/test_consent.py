"""Consent blocked: Admin approval required, requests, admin consent, notifications (issue 4)."""

from __future__ import annotations

import base64
import csv as csv_module
import json
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email import message_from_bytes
from email import policy
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import standardwebhooks
from aiosmtpd.controller import Controller
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from app.consent import records
from app.consent.jobs import expire_requests
from app.errors import ConfigError
from app.identity.credentials import CredentialRing
from app.identity.credentials import load
from app.models import AuditEvent
from app.models import ConsentRequest
from app.models import Delivery
from app.models import TenantConsent
from app.models import utcnow
from app.notify import senders
from app.platform.extensions import db
from app.platform.extensions import notifier
from entra_emulator import Emulator
from tests.conftest import free_port
from tests.signins import People
from tests.signins import Web
from tests.signins import staff_id

CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"
FABRIKAM = "7a2e4c6b-9d1f-4b3a-8e5c-0f2d4b6a8c1e"
NORTHWIND = "b5d8e1f3-6a2c-4d7e-9b0a-1c3e5f7a9d2b"
SITES = "https://graph.microsoft.com/Sites.Read.All"
SECRET = "whsec_" + base64.b64encode(b"webhook test secret of 32 bytes!").decode()
# The main paths also run on PostgreSQL and Redis sessions when those are configured.
ALL_BACKENDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "redis"], indirect=True)


# -- receivers: a real SMTP server and a webhook endpoint ------------------------------------


class Mailbox:
    """Collect the messages an aiosmtpd server receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the parsed message."""
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        """Return the messages for one recipient."""
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    """Run a real SMTP server on a free port; yield its mailbox and smtp:// URL."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


class Hook:
    """A webhook receiver that fails the first `failures` calls with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes, int]] = []
        self.failures = failures
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if len(hook.calls) < hook.failures else 200
                hook.calls.append((dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        """Return the event names of the calls answered with 200."""
        return [json.loads(body)["event"] for _, body, status in self.calls if status == 200]

    def data(self, event: str) -> dict[str, Any]:
        """Return the data of the last delivered call for this event."""
        bodies = [json.loads(body) for _, body, status in self.calls if status == 200]
        return dict(next(b for b in reversed(bodies) if b["event"] == event)["data"])


@pytest.fixture
def hook() -> Iterator[Hook]:
    """Run a webhook receiver."""
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def app(
    tmp_path: Path,
    db_url: dict[str, str],
    entra: Emulator,
    mailbox: tuple[Mailbox, str],
    hook: Hook,
) -> Iterator[Flask]:
    """Return a portal whose notifications go to the test's SMTP server and webhook."""
    settings = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "RATELIMIT_IP": "100000/minute",
        "NOTIFY_MODE": "manual",  # the test sends deliveries itself: deterministic
        "SMTP_URL": mailbox[1],
        "WEBHOOK_URLS": [hook.url],
        "WEBHOOK_SECRET": SECRET,
        "HELPDESK_USERS": [],
    }
    portal = create_app(settings | dict(entra.portal_settings()) | db_url)
    yield portal
    with portal.app_context():
        db.engine.dispose()


# -- a person meets a consent wall ------------------------------------------------------------


def authenticate_blocked(who: Web, connector: str = "sharepoint") -> TestResponse:
    """Authenticate a connector, meet "Need admin approval" and return to the portal."""
    answer = who.post(f"/connectors/{connector}/authenticate", f"/connectors/{connector}")
    return who.callback(who.entra_answer(answer.headers["Location"], cancel=True))


def send_request(who: Web, connector: str = "sharepoint", why: str = "Quarterly reports") -> str:
    """Send an approval request (signing in when needed); return its id."""
    answer = who.post("/consent-requests", connector=connector, justification=why)
    if "/consent-requests/" not in answer.headers["Location"]:  # sign in first
        answer = who.callback(who.entra_answer(answer.headers["Location"]))
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return str(answer.headers["Location"]).rsplit("/", 1)[-1]


def approve(admin: Web, request_id: str, **at_entra: Any) -> TestResponse:
    """Press Approve, consent at Entra, come back, and return the portal's last answer."""
    answer = admin.post(f"/admin/requests/{request_id}/approve", "/admin")
    assert answer.status_code == 303
    back = admin.callback(admin.entra_answer(answer.headers["Location"], **at_entra))
    if (
        back.status_code == 303 and "/authorize" in back.headers["Location"]
    ):  # confirm (prompt=none)
        back = admin.callback(admin.entra_answer(back.headers["Location"]))
    return back


def rows(app: Flask, model: Any) -> list[Any]:
    """Return every row of a table."""
    with app.app_context():
        return list(db.session.scalars(db.select(model)))


def deliver(app: Flask, now: float | None = None) -> int:
    """Send the due deliveries now."""
    with app.app_context():
        return notifier().run_due(now)


# -- the main path ---------------------------------------------------------------------------


@ALL_BACKENDS
def test_blocked_user_asks_admin_approves_and_user_connects(
    app: Flask, person: People, mailbox: tuple[Mailbox, str], hook: Hook, entra: Emulator
) -> None:
    """Admin approval required -> Pending -> Approve at Entra -> Approved -> Try again -> code."""
    user = person("user@contoso.test")
    blocked = authenticate_blocked(user)
    text = blocked.get_data(as_text=True)
    assert blocked.status_code == 403 and "Admin approval required" in text
    assert "your IT administrator" in text  # the roles are the admin's to read, not the user's
    assert "Global Administrator" not in text and "Enterprise applications" not in text
    assert 'name="justification"' in text and "Send request" in text and "required" in text
    assert "AADSTS65004" in text and "AADSTS90094 (Need admin approval)" in text

    request_id = send_request(user, why="Quarterly <b>reports</b>")
    page = user.page(f"/consent-requests/{request_id}")
    assert ">Pending<" in page and "Quarterly &lt;b&gt;reports&lt;/b&gt;" in page
    assert send_request(user) == request_id  # one open request per tenant and connector

    admin = person("admin@contoso.test")
    admin.sign_in()
    console = admin.page("/admin")
    assert "Global Administrator" in console and "user@contoso.test" in console
    answer = admin.post(f"/admin/requests/{request_id}/approve", "/admin")
    target = urlsplit(answer.headers["Location"])
    query = parse_qs(target.query)
    assert target.path == f"/{CONTOSO}/v2.0/adminconsent"
    assert query["scope"] == [SITES] and query["redirect_uri"][0].endswith("/auth/callback")
    assert not rows(app, TenantConsent)  # nothing before Entra said yes

    done = admin.callback(admin.entra_answer(answer.headers["Location"]))
    assert done.status_code == 303 and "/authorize" in done.headers["Location"]
    assert "prompt=none" in done.headers["Location"]
    assert not rows(app, TenantConsent)  # nothing before the confirming token request
    done = admin.callback(admin.entra_answer(done.headers["Location"]))
    assert done.headers["Location"].endswith(f"/consent-requests/{request_id}")
    assert ">Approved<" in user.page(f"/consent-requests/{request_id}")
    [granted] = rows(app, TenantConsent)
    assert (granted.tenant_id, granted.connector, granted.confirmed) == (
        CONTOSO,
        "sharepoint",
        True,
    )
    assert "admin@contoso.test" in admin.page("/admin")

    deliver(app)
    [mail] = mailbox[0].to("user@contoso.test")
    assert "Approved" in mail["Subject"]
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    link = re.search(r"Try again: (\S+)", plain)
    assert link and link.group(1) in html and link.group(1).startswith("http://")
    assert {"consent_request.created", "consent_request.approved", "tenant_consent.granted"} <= set(
        hook.events()
    )

    path = urlsplit(link.group(1)).path
    assert "Authenticate" in user.page(path)
    answer = user.post(path, path)
    code_page = user.callback(user.entra_answer(answer.headers["Location"]))  # no approval page now
    assert code_page.status_code == 303 and "/code" in code_page.headers["Location"]
    assert deliver(app) and "connection.created" in hook.events()
    actions = {e.action for e in rows(app, AuditEvent)}
    assert {
        "consent_request.created",
        "consent_request.approved",
        "tenant_consent.granted",
    } <= actions


def test_failure_after_approval_shows_the_diagnosis_not_another_request(
    app: Flask, person: People, entra: Emulator
) -> None:
    """If Entra still blocks after an approval, explain instead of asking again (no loop, C15)."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    admin = person("admin@contoso.test")
    admin.sign_in()
    approve(admin, request_id)
    graph = "https://graph.microsoft.com"
    entra.control(
        "DELETE",
        "/_emulator/grants",
        json={"tenant": "contoso.test", "client_id": app.config["CLIENT_ID"], "resource": graph,
              "scopes": [], "principal": None},
    )  # fmt: skip
    path = f"/consent-requests/{request_id}/try-again"
    answer = user.post(path, path)
    again = user.callback(user.entra_answer(answer.headers["Location"], cancel=True))
    text = again.get_data(as_text=True)
    assert again.status_code == 400 and "Send request" not in text
    assert "already approved a request" in text
    assert len(rows(app, ConsentRequest)) == 1


@ALL_BACKENDS
def test_deny_with_reason_then_ask_again_and_expiry(
    app: Flask, person: People, mailbox: tuple[Mailbox, str], hook: Hook
) -> None:
    """Denied shows the reason; a new request can be sent; the expiry job marks Expired."""
    user = person("user@contoso.test")
    authenticate_blocked(user, "outlook")
    first = send_request(user, "outlook")
    admin = person("appadmin@contoso.test")
    admin.sign_in()
    assert "Cloud Application Administrator" in admin.page("/admin")
    refused = admin.post(f"/admin/requests/{first}/deny", "/admin", reason="   ")
    assert refused.status_code == 303 and ">Pending<" in user.page(f"/consent-requests/{first}")
    admin.post(f"/admin/requests/{first}/deny", "/admin", reason="Use the shared mailbox")
    page = user.page(f"/consent-requests/{first}")
    assert ">Denied<" in page and "Use the shared mailbox" in page
    assert admin.post(f"/admin/requests/{first}/deny", "/admin", reason="x").status_code == 409

    second = send_request(user, "outlook", why="Things changed")
    assert second != first and ">Pending<" in user.page(f"/consent-requests/{second}")
    with app.app_context():
        assert expire_requests(db.session, notifier(), "http://p", {}) == 0
        later = utcnow() + timedelta(days=31)
        assert expire_requests(db.session, notifier(), "http://p", {}, now=later) == 1
    assert ">Expired<" in user.page(f"/consent-requests/{second}")
    deliver(app)
    subjects = [m["Subject"] for m in mailbox[0].to("user@contoso.test")]
    assert any("Denied" in s for s in subjects) and any("Expired" in s for s in subjects)
    assert {"consent_request.denied", "consent_request.expired"} <= set(hook.events())
    # One payload builder for every request event: an expiry says as much as a denial.
    denied, expired = hook.data("consent_request.denied"), hook.data("consent_request.expired")
    assert set(expired) == set(denied) >= {"scopes", "decided_by", "reason", "requesters"}
    assert expired["decided_by"] == "portal" and expired["requesters"] == ["user@contoso.test"]


def test_expiry_days_are_configurable(make_portal: Callable[..., Flask], entra: Emulator) -> None:
    """PORTAL_CONSENT_REQUEST_DAYS sets when a new request expires."""
    portal = make_portal(CONSENT_REQUEST_DAYS=3)
    user = Web.person(portal, entra, "user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    with portal.app_context():
        found = db.session.get(ConsentRequest, request_id)
        assert found is not None
        assert timedelta(days=2.9) < found.expires_at - found.created_at < timedelta(days=3.1)


# -- who may see and decide ------------------------------------------------------------------


def test_request_page_is_for_requesters_admins_and_helpdesk_only(
    app: Flask, person: People
) -> None:
    """Others get 404; non-admins get 403 on admin actions (C21)."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    helpdesk = person("helpdesk@contoso.test")
    helpdesk.sign_in()
    assert ">Pending<" in helpdesk.page(f"/consent-requests/{request_id}")
    outsider = person("user@fabrikam.test")
    outsider.sign_in()
    assert outsider.client.get(f"/consent-requests/{request_id}").status_code == 404
    assert outsider.client.get("/consent-requests/nope").status_code == 404
    foreign_admin = person("admin@fabrikam.test")
    foreign_admin.sign_in()
    assert foreign_admin.client.get(f"/consent-requests/{request_id}").status_code == 404
    approve_path = f"/admin/requests/{request_id}/approve"
    assert foreign_admin.post(approve_path, "/admin").status_code == 404
    for someone in (user, helpdesk):
        assert someone.client.get("/admin").status_code == 403
        assert someone.post(approve_path).status_code == 403
        assert someone.post("/admin/connectors/sharepoint/grant").status_code == 403
    anonymous = person("nobody")
    assert anonymous.client.get(f"/consent-requests/{request_id}").status_code == 302


def test_portal_admin_users_setting_makes_an_admin(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    """PORTAL_ADMIN_USERS lists portal admins by tenant-id/object-id; the console says why."""
    portal = make_portal(ADMIN_USERS=[staff_id(entra, "helpdesk@contoso.test")])
    helpdesk = Web.person(portal, entra, "helpdesk@contoso.test")
    helpdesk.sign_in()
    assert "PORTAL_ADMIN_USERS" in helpdesk.page("/admin")


def test_personal_accounts_are_told_there_is_no_admin_consent(app: Flask, person: People) -> None:
    """A personal account that declines gets the diagnosis, never a request form."""
    pat = person("pat@outlook.test")
    answer = pat.post("/connectors/outlook/authenticate", "/connectors/outlook",
                      account_type="personal")  # fmt: skip
    back = pat.callback(pat.entra_answer(answer.headers["Location"], accept=False))
    text = back.get_data(as_text=True)
    assert back.status_code == 400 and "Send request" not in text
    assert "Personal accounts have no administrator" in text


# -- forged and failed admin-consent returns (C13, C14) --------------------------------------


@ALL_BACKENDS
def test_forged_admin_consent_returns_record_nothing(app: Flask, person: People) -> None:
    """No state, someone else's state, admin_consent=True alone, another tenant: nothing stored."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    admin = person("admin@contoso.test")
    admin.sign_in()
    other_admin = person("admin@contoso.test")
    other_admin.sign_in()
    started = other_admin.post(f"/admin/requests/{request_id}/approve", "/admin")
    theirs = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    forged = [
        f"admin_consent=True&tenant={CONTOSO}&scope={SITES}",
        "admin_consent=True",
        f"admin_consent=True&tenant={CONTOSO}&scope={SITES}&state={theirs}",
    ]
    for query in forged:
        answer = admin.client.get(f"/auth/callback?{query}")
        assert answer.status_code == 400
        assert "could not be verified" in answer.get_data(as_text=True)
    mine = admin.post(f"/admin/requests/{request_id}/approve", "/admin")
    state = parse_qs(urlsplit(mine.headers["Location"]).query)["state"][0]
    wrong = admin.client.get(
        f"/auth/callback?admin_consent=True&tenant={FABRIKAM}&scope={SITES}&state={state}"
    )
    assert wrong.status_code == 400 and "Not granted for this tenant" in wrong.get_data(True)
    assert not rows(app, TenantConsent)
    assert ">Pending<" in user.page(f"/consent-requests/{request_id}")


def test_admin_declines_and_the_request_stays_pending(app: Flask, person: People) -> None:
    """Cancel at Entra's admin consent: a clear page, no records, still Pending (C14)."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    admin = person("admin@contoso.test")
    admin.sign_in()
    back = approve(admin, request_id, accept=False)
    assert back.status_code == 400 and "Consent was not granted" in back.get_data(as_text=True)
    assert not rows(app, TenantConsent)
    assert ">Pending<" in user.page(f"/consent-requests/{request_id}")


def test_grant_for_organization_without_a_request(app: Flask, person: People, hook: Hook) -> None:
    """Grant for organization works per connector and shows who granted it when."""
    admin = person("admin@contoso.test")
    admin.sign_in()
    answer = admin.post("/admin/connectors/onedrive/grant", "/admin")
    assert "Files.Read.All" in parse_qs(urlsplit(answer.headers["Location"]).query)["scope"][0]
    back = admin.callback(admin.entra_answer(answer.headers["Location"]))
    done = admin.callback(admin.entra_answer(back.headers["Location"]))
    assert done.headers["Location"].endswith("/admin")
    [granted] = rows(app, TenantConsent)
    assert granted.connector == "onedrive" and granted.granted_by == "admin@contoso.test"
    deliver(app)
    assert hook.events() == ["tenant_consent.granted"]
    user = person("user@contoso.test")
    answer = user.post("/connectors/onedrive/authenticate", "/connectors/onedrive",
                       account_type="work")  # fmt: skip
    assert user.callback(user.entra_answer(answer.headers["Location"])).status_code == 303


def test_audit_log_and_csv_export_defuse_formulas(app: Flask, person: People) -> None:
    """Decisions are in the audit log; the CSV neutralises cells that start a formula."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    admin = person("admin@contoso.test")
    admin.sign_in()
    admin.post(f"/admin/requests/{request_id}/deny", "/admin", reason='=HYPERLINK("x")')
    assert "Request denied" in admin.page("/admin/audit")  # a label, not the event key
    csv = admin.client.get("/admin/audit.csv")
    assert csv.mimetype == "text/csv"
    body = csv.get_data(as_text=True)
    assert "consent_request.denied" in body and "Request denied" in body
    cells = [cell for line in body.splitlines()[1:] for cell in next(csv_module.reader([line]))]
    assert 'Reason: =HYPERLINK("x")' in cells  # inside a cell, not at its start
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    assert user.client.get("/admin/audit.csv").status_code == 403


# -- readiness -------------------------------------------------------------------------------


def test_readiness_shows_user_assignment_required_as_a_problem(
    app: Flask, person: People, entra: Emulator
) -> None:
    """northwind: the admin's Graph read shows the enterprise app's properties."""
    assigned = ["assigned@northwind.test", "admin@northwind.test"]  # the admin must be, too
    entra.control("POST", "/_emulator/tenants/northwind.test/enterprise-app",
                  json={"visible_to_users": False, "assigned_users": assigned})  # fmt: skip
    admin = person("admin@northwind.test")
    admin.sign_in()
    assert "Check now" in admin.page("/admin/readiness")
    answer = admin.post("/admin/readiness", "/admin/readiness")
    back = admin.callback(admin.entra_answer(answer.headers["Location"]))
    assert back.status_code == 303
    page = admin.page("/admin/readiness")
    row = re.search(r"User assignment required\?.*?</tr>", page, re.S)
    assert row and "Problem" in row.group(0) and "Users and groups" in row.group(0)
    assert re.search(r"Enabled for users to sign-in\?.*?OK", page, re.S)
    assert "hidden in My Apps" in page and "Admin consent workflow" in page
    assert re.search(r"Admin consent workflow.*?On", page, re.S)


def test_readiness_on_contoso_names_the_user_consent_policy(app: Flask, person: People) -> None:
    """contoso: the Microsoft-managed policy and (after a grant) the granted connectors."""
    admin = person("admin@contoso.test")
    admin.sign_in()
    answer = admin.post("/admin/connectors/sharepoint/grant", "/admin")
    admin.callback(
        admin.entra_answer(
            admin.callback(admin.entra_answer(answer.headers["Location"])).headers["Location"]
        )
    )  # noqa: E501
    answer = admin.post("/admin/readiness", "/admin/readiness")
    admin.callback(admin.entra_answer(answer.headers["Location"]))
    page = admin.page("/admin/readiness")
    assert "Let Microsoft manage your consent settings" in page
    assert re.search(r"Connectors granted for everyone.*?SharePoint", page, re.S)
    assert re.search(r"User assignment required\?.*?OK", page, re.S)


# -- notifications ---------------------------------------------------------------------------


def test_webhook_is_signed_and_retried_after_a_500(app: Flask, person: People, hook: Hook) -> None:
    """The receiver verifies with standardwebhooks and sees the same delivery id after a 500."""
    hook.failures = 1
    user = person("user@contoso.test")
    authenticate_blocked(user)
    send_request(user)
    assert deliver(app) == 1
    assert [status for *_, status in hook.calls] == [500]
    assert deliver(app) == 0  # not yet due: backoff
    assert deliver(app, time.time() + 60) == 1
    assert [status for *_, status in hook.calls] == [500, 200]
    receiver = standardwebhooks.Webhook(SECRET)
    for headers, body, _ in hook.calls:
        assert receiver.verify(body, dict(headers))["event"] == "consent_request.created"
        assert headers["X-Portal-Event"] == "consent_request.created"
        assert "X-Portal-Signature" not in headers and "X-Portal-Timestamp" not in headers
    first, second = (headers for headers, *_ in hook.calls)
    delivery = json.loads(hook.calls[0][1])["delivery"]
    assert first["webhook-id"] == second["webhook-id"] == str(delivery)
    [webhook] = [d for d in rows(app, Delivery) if d.channel == "webhook"]
    assert (webhook.status, webhook.attempts) == ("sent", 2)


def test_a_replayed_webhook_is_refused_by_the_receiver(
    app: Flask, person: People, hook: Hook
) -> None:
    """A delivery sent again later, or with its timestamp moved, fails standardwebhooks' check."""
    user = person("user@contoso.test")
    authenticate_blocked(user)
    send_request(user)
    assert deliver(app) == 1
    [(headers, body, _)] = hook.calls
    receiver = standardwebhooks.Webhook(SECRET)
    moved = dict(headers) | {"webhook-timestamp": str(int(time.time()) + 1)}
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="signature"):
        receiver.verify(body, moved)  # the timestamp is inside the signature
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)  # the same delivery, captured earlier
    replay = senders.webhook_headers(SECRET, headers["webhook-id"], body, now=an_hour_ago)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
        receiver.verify(body, replay)
    forged = dict(headers) | {"webhook-signature": senders.webhook_headers(
        "whsec_" + base64.b64encode(b"another receiver's key!!").decode(), "x", body
    )["webhook-signature"]}  # fmt: skip
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        receiver.verify(body, forged)


@pytest.mark.parametrize(
    "secret",
    ["hmac-secret-of-old", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_a_webhook_secret_that_is_not_a_standard_one_stops_start_up(
    make_portal: Callable[..., Flask], secret: str
) -> None:
    with pytest.raises(ConfigError, match="whsec_ followed by the base64 of 24 to 64"):
        make_portal(WEBHOOK_SECRET=secret)


def test_a_dead_mail_server_and_webhook_never_fail_the_request(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    """Deliveries fail, are retried a bounded number of times, and the user's page works."""
    dead = f"http://127.0.0.1:{free_port()}/hook"
    portal = make_portal(NOTIFY_MODE="manual", SMTP_URL=f"smtp://127.0.0.1:{free_port()}",
                         WEBHOOK_URLS=[dead], NOTIFY_MAX_ATTEMPTS=2, HTTP_TIMEOUT=2)  # fmt: skip
    admin = Web.person(portal, entra, "admin@contoso.test")
    admin.sign_in()  # known admin: the request's mail goes to them
    user = Web.person(portal, entra, "user@contoso.test")
    authenticate_blocked(user)
    request_id = send_request(user)
    assert ">Pending<" in user.page(f"/consent-requests/{request_id}")
    with portal.app_context():
        assert notifier().run_due() == 2
        assert notifier().run_due(time.time() + 3600) == 2
        assert notifier().run_due(time.time() + 7200) == 0
        statuses = {
            (d.channel, d.status, d.attempts) for d in db.session.scalars(db.select(Delivery))
        }
    assert statuses == {("webhook", "failed", 2), ("mail", "failed", 2)}


def test_background_sender_delivers_after_the_response(
    make_portal: Callable[..., Flask], entra: Emulator, hook: Hook
) -> None:
    """In thread mode the request returns first; the sender delivers shortly after."""
    portal = make_portal(WEBHOOK_URLS=[hook.url], WEBHOOK_SECRET=SECRET)
    user = Web.person(portal, entra, "user@contoso.test")
    authenticate_blocked(user)
    send_request(user)
    deadline = time.time() + 10
    while not hook.events() and time.time() < deadline:
        time.sleep(0.05)
    assert hook.events() == ["consent_request.created"]


# -- every catalogued code the emulator can send back, through the real emulator --------------


def _redirected(username: str, connector: str = "sharepoint", **at_entra: Any) -> Any:
    """Return a driver: Authenticate, act at Entra, come back with the redirect."""

    def drive(app: Flask, entra: Emulator) -> Any:
        who = Web.person(app, entra, username)
        answer = who.post(f"/connectors/{connector}/authenticate", f"/connectors/{connector}")
        return who.callback(who.entra_answer(answer.headers["Location"], **at_entra))

    return drive


def _token_refused(change: dict[str, Any], username: str = "user@fabrikam.test") -> Any:
    """Return a driver: get a code, change the tenant at the emulator, then redeem it."""

    def drive(app: Flask, entra: Emulator) -> Any:
        tenant = username.split("@")[1]
        who = Web.person(app, entra, username)
        answer = who.post("/connectors/azure-storage/authenticate", "/connectors/azure-storage")
        url = who.entra_answer(answer.headers["Location"])
        entra.control("POST", f"/_emulator/tenants/{tenant}/enterprise-app", json=change)
        return who.callback(url)

    return drive


def _secret_wrong(app: Flask, entra: Emulator) -> Any:
    """Redeem with a client secret Entra no longer accepts (the operator must rotate it)."""
    who = Web.person(app, entra, "user@fabrikam.test")
    answer = who.post("/connectors/onedrive/authenticate", "/connectors/onedrive")
    url = who.entra_answer(answer.headers["Location"])
    identity = app.extensions["portal.identity"]
    # As after a restart with the wrong PORTAL_CLIENT_SECRET and no other credential to try.
    identity.credentials = CredentialRing(load(("not-the-secret",), (), ()))
    return who.callback(url)


def _verifier_swapped(app: Flask, entra: Emulator) -> Any:
    """Redeem another flow's code with this flow's PKCE verifier (an injected code, C4)."""
    victim, attacker = (Web.person(app, entra, "user@fabrikam.test") for _ in range(2))
    started = victim.post("/connectors/onedrive/authenticate", "/connectors/onedrive")
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    other = attacker.post("/connectors/onedrive/authenticate", "/connectors/onedrive")
    code = parse_qs(urlsplit(attacker.entra_answer(other.headers["Location"])).query)["code"][0]
    return victim.client.get("/auth/callback?" + urlencode({"code": code, "state": state}))


def _code_expired(app: Flask, entra: Emulator) -> Any:
    """Let the code outlive its lifetime before the portal redeems it."""
    entra.control("POST", "/_emulator/settings", json={"code_lifetime_seconds": 1})
    who = Web.person(app, entra, "user@fabrikam.test")
    answer = who.post("/connectors/azure-storage/authenticate", "/connectors/azure-storage")
    url = who.entra_answer(answer.headers["Location"])
    time.sleep(2.1)
    return who.callback(url)


CODES = [
    # (case, driver, status, text on the page, actor heading)
    ("90094 then return: 65004 cancel", _redirected("user@contoso.test", cancel=True), 403,
     "Admin approval required", "What you can do"),  # the admin's steps go to the admins (#14)
    ("90095 then Back to app", _redirected("assigned@northwind.test", "azure-storage", cancel=True),
     403, "Admin approval required", "What you can do"),
    ("65004 declined on the consent page", _redirected("user@fabrikam.test", "azure-storage",
     accept=False), 400, "Access was not granted", "What you can do"),
    ("50105 at the token endpoint", _token_refused({"assignment_required": True}), 400,
     "User assignment required", "What your administrator must do"),
    ("7000112 at the token endpoint", _token_refused({"account_enabled": False}), 400,
     "AADSTS7000112", "What your administrator must do"),
    ("70008 expired code", _code_expired, 400, "AADSTS70008", "What you can do"),
    ("7000215 wrong client secret", _secret_wrong, 400, "AADSTS7000215",
     "What the portal&#39;s operator must do"),
    ("501481 another flow's code", _verifier_swapped, 400, "AADSTS501481",
     "What the portal&#39;s operator must do"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("driver", "status", "text", "actor"), [c[1:] for c in CODES], ids=[c[0] for c in CODES]
)
def test_each_code_lands_on_the_right_page(
    app: Flask, entra: Emulator, driver: Any, status: int, text: str, actor: str
) -> None:
    """The real emulator's answer becomes the right page naming the right actor."""
    answer = driver(app, entra)
    page = answer.get_data(as_text=True)
    assert answer.status_code == status, page[:2000]
    assert text in page
    assert f"<h3>{actor}</h3>" in page


def test_a_grant_gone_before_confirmation_is_not_recorded(
    app: Flask, person: People, entra: Emulator
) -> None:
    """The confirming prompt=none sign-in fails (65001): the consent is not recorded."""
    admin = person("admin@contoso.test")
    admin.sign_in()
    answer = admin.post("/admin/connectors/sharepoint/grant", "/admin")
    back = admin.callback(admin.entra_answer(answer.headers["Location"]))
    entra.control(
        "DELETE",
        "/_emulator/grants",
        json={"tenant": "contoso.test", "client_id": app.config["CLIENT_ID"],
              "resource": "https://graph.microsoft.com", "scopes": [], "principal": None},
    )  # fmt: skip
    final = admin.callback(admin.entra_answer(back.headers["Location"]))
    assert final.status_code == 400 and "Consent was not granted" in final.get_data(as_text=True)
    assert not rows(app, TenantConsent)


def test_a_request_is_decided_once(app: Flask) -> None:
    """Two admins deciding at once: the second decision changes nothing (one conditional UPDATE)."""
    with app.app_context():
        who = records.Requester("o-1", "u@contoso.test", "tenant-1", "reports")
        opened, created = records.open_request(
            db.session, who, "sharepoint", ["Sites.Read.All"], 30
        )
        db.session.commit()
        assert created
        assert records.deny(db.session, opened, "a1@contoso.test", "no") is True
        assert records.approve(db.session, opened, "a2@contoso.test") is False
        db.session.commit()
        assert (opened.status, opened.decided_by) == ("denied", "a1@contoso.test")
