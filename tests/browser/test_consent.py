"""Consent blocked, in a real browser: request, approval at Entra, mail, Try again (issue 4)."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser
from playwright.sync_api import Page

from tests.browser.conftest import LivePortal
from tests.signins import accept_if_asked
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser
ROLES = ("Global Administrator", "Privileged Role Administrator", "Cloud Application Administrator")


class Mailbox:
    """Collect what a real aiosmtpd server receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the parsed message."""
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def wait_for(self, to: str, seconds: float = 15.0) -> Any:
        """Return the first message to this address, waiting for the background sender."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = [m for m in self.messages if m["To"] == to]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to}; got {[m['To'] for m in self.messages]}")


@pytest.fixture
def mailbox(portal: LivePortal) -> Iterator[Mailbox]:
    """Start an SMTP server on a free port and point the live portal's mail at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    notifier = portal.app.extensions["portal.notifier"]
    notifier.settings = dataclasses.replace(notifier.settings, smtp_url=f"smtp://127.0.0.1:{port}")
    yield box
    controller.stop()


def test_contoso_user_asks_admin_approves_and_user_connects(
    page: Page, portal: LivePortal, mailbox: Mailbox, browser: Browser
) -> None:
    """The acceptance path of issue 4, with two people in two browser contexts."""
    page.goto(f"{portal.url}/connectors/sharepoint")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, "user@contoso.test")
    assert page.get_by_role("heading", name="Need admin approval").is_visible()
    page.get_by_role("link", name="Return to the application without granting consent").click()
    assert page.get_by_role("heading", name="Admin approval required").is_visible()
    for role in ROLES:  # the roles are for the admin's view and mail, not the person blocked
        assert role not in page.content()
    assert "your IT administrator" in page.content()
    page.get_by_label("Justification").fill("Our quarterly reports live in SharePoint")
    page.get_by_role("button", name="Send request").click()  # a quiet trip: OIDC scopes only
    assert page.locator("#request-status").inner_text() == "Pending"
    request_url = page.url

    admin_context = browser.new_context()
    admin = admin_context.new_page()
    admin.set_default_timeout(15_000)
    try:
        admin.goto(f"{portal.url}/sign-in")
        admin.get_by_role("button", name="Sign in with Microsoft").click()
        entra_sign_in(admin, "admin@contoso.test")
        accept_if_asked(admin)
        admin.goto(f"{portal.url}/admin")
        assert "Global Administrator" in admin.get_by_text("You administer").inner_text()
        row = admin.get_by_role("row", name=re.compile("SharePoint.*user@contoso.test"))
        row.get_by_role("button", name="Approve").click()
        assert admin.get_by_role("heading", name="Permissions requested").is_visible()
        admin.get_by_role("button", name="Accept").click()
        assert admin.locator("#request-status").inner_text() == "Approved"
    finally:
        admin_context.close()

    page.goto(request_url)
    assert page.locator("#request-status").inner_text() == "Approved"
    mail = mailbox.wait_for("user@contoso.test")
    text = mail.get_body(("plain",)).get_content()
    link = re.search(r"Try again: (\S+)", text)
    assert link, text
    page.goto(link.group(1))
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url))
    page.get_by_role("button", name="Authenticate").click()
    code = page.get_by_label("Connection code")
    code.wait_for()
    assert code.input_value().startswith("ccp_")
    assert not any("/consent/cancel" in url for url in seen)
    assert "Need admin approval" not in page.content()


def test_northwind_assignment_and_approval_workflow(page: Page, portal: LivePortal) -> None:
    """50105 names "User assignment required"; the 90095 path lands on Admin approval required."""
    page.goto(f"{portal.url}/connectors/sharepoint")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, "user@northwind.test")
    assert "AADSTS50105" in page.content()  # Entra shows a page; the app hears nothing
    page.goto(f"{portal.url}/help/aadsts/50105")
    assert "User assignment required" in page.content()

    page.context.clear_cookies()
    page.goto(f"{portal.url}/connectors/azure-storage")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, "assigned@northwind.test")
    assert page.get_by_role("heading", name="Approval required").is_visible()
    page.get_by_label("Justification").fill("Monthly export")
    page.get_by_role("button", name="Request approval").click()
    assert page.get_by_role("heading", name="Request sent").is_visible()
    page.goto(f"{portal.url}/connectors/azure-storage")  # later: Authenticate, then Back to app
    page.get_by_role("button", name="Authenticate").click()
    assert page.get_by_role("heading", name="Approval required").is_visible()
    page.get_by_role("link", name="Back to app").click()
    assert page.get_by_role("heading", name="Admin approval required").is_visible()
    assert page.get_by_role("button", name="Send request").is_visible()
