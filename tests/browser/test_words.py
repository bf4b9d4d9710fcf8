"""Pages for their readers in a real browser (issue 14, items 3-5), at 390 and 1280 px.

The blocked person's page, the quiet second trip, My requests, the Copy-able status link, the
admin's and the helpdesk's view of a request, plain scope words and no dead ends; axe finds no
serious or critical violation on any page shown here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Page
from playwright.sync_api import Response
from playwright.sync_api import expect

from app.consent import records
from app.platform import extensions
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.browser.conftest import LivePortal
from tests.signins import accept_if_asked
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1280, 390)
CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"
AXE = Axe()


def problems_on(page: Page, width: int) -> list[str]:
    """Return serious or critical axe findings and sideways scrolling on the page shown now."""
    found = []
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if scroll > client:
        found.append(f"{page.url} at {width} px scrolls sideways ({scroll} > {client})")
    for violation in AXE.run(page).response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            found.append(f"{page.url} at {width} px: axe {violation['id']}")
    return found


def sign_in(page: Page, portal_url: str, username: str) -> None:
    """Sign in to the portal itself through the emulator's pages."""
    page.goto(f"{portal_url}/sign-in")
    page.get_by_label("Email address (optional)").fill(username)
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page)
    accept_if_asked(page)
    page.get_by_role("button", name="Sign out").wait_for()


def reach_admin_approval(page: Page, portal_url: str, username: str) -> None:
    """Authenticate SharePoint, meet "Need admin approval", and return to the portal."""
    page.goto(f"{portal_url}/connectors/sharepoint")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, username)
    assert page.get_by_role("heading", name="Need admin approval").is_visible()
    page.get_by_role("link", name="Return to the application without granting consent").click()
    page.get_by_role("heading", name="Admin approval required").wait_for()


def file_request(app: Flask, username: str, oid: str = "contoso-user-oid") -> str:
    """File a pending SharePoint request for a contoso person; return its id."""
    with app.app_context():
        who = records.Requester(oid, username, CONTOSO, "Our reports live there")
        found, _ = records.open_request(
            db.session, who, "sharepoint", ["https://graph.microsoft.com/Sites.Read.All"], 7
        )
        db.session.commit()
        return found.id


@pytest.mark.parametrize("width", WIDTHS)
def test_the_blocked_person_asks_in_plain_words_and_follows_the_request(
    page: Page, portal: LivePortal, entra: Emulator, width: int
) -> None:
    """Plain page, required justification, a quiet trip, Copy, My requests, My connections."""
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    found: list[str] = []
    reach_admin_approval(page, portal.url, "user@contoso.test")
    lead = page.locator("p.lead").inner_text()
    assert lead.startswith("SharePoint needs an approval from your IT administrator")
    assert "Global Administrator" not in page.content()
    support = page.get_by_label("Support details").input_value()
    assert "AADSTS code: AADSTS65004" in support and "AADSTS90094 (Need admin approval)" in support
    assert page.get_by_text("passes by Microsoft once more").is_visible()
    found += problems_on(page, width)

    page.get_by_role("button", name="Send request").click()  # empty: the browser keeps the page
    field = page.get_by_label("Justification")
    assert field.evaluate("el => el.validity.valueMissing")
    assert "For example" in str(field.get_attribute("placeholder"))
    field.fill("I build the monthly sales report from our team's site")
    pages_at_microsoft: list[str] = []
    emulator_host = urlsplit(entra.browser_url).netloc

    def seen(response: Response) -> None:
        """Note every page (not redirect) Microsoft showed during the second trip."""
        if urlsplit(response.url).netloc == emulator_host and response.status == 200:
            pages_at_microsoft.append(response.url)

    page.on("response", seen)
    page.get_by_role("button", name="Send request").click()
    page.locator("#request-status").wait_for()
    page.remove_listener("response", seen)
    assert page.locator("#request-status").inner_text() == "Pending"
    assert pages_at_microsoft == []  # prompt=none with the first trip's session: no page
    status_url = page.url
    assert page.get_by_label("Status link").input_value() == status_url
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()  # after the clipboard
    assert page.evaluate("navigator.clipboard.readText()") == status_url
    found += problems_on(page, width)

    nav = page.get_by_role("navigation", name="Main").get_by_role("link", name="My requests")
    assert nav.count() == 1
    page.goto(f"{portal.url}/consent-requests")
    assert page.get_by_role("heading", name="My requests", level=1).is_visible()
    assert page.get_by_role("link", name="SharePoint").is_visible()
    assert (
        page.get_by_role("textbox", name="Status link for SharePoint").input_value() == status_url
    )
    found += problems_on(page, width)

    page.goto(f"{portal.url}/connections")
    assert page.get_by_role("heading", name="Waiting for approval").is_visible()
    assert page.get_by_role("link", name="See the request for SharePoint").is_visible()
    found += problems_on(page, width)
    assert not found, "\n".join(found)


def test_a_quiet_trip_microsoft_cannot_finish_shows_its_page_with_the_hint(
    page: Page, portal: LivePortal
) -> None:
    """Microsoft forgot the browser (login_required): the portal asks again, with a page."""
    url = helpdesk_link(portal.app)
    page.goto(url)
    page.get_by_role("button", name="Continue to Microsoft sign-in").click()
    entra_sign_in(page)  # the helpdesk's link filled in the address
    page.get_by_role("link", name="Return to the application without granting consent").click()
    page.get_by_role("heading", name="Admin approval required").wait_for()
    page.context.clear_cookies(name="ESTSAUTH")
    page.get_by_label("Justification").fill("Monthly report")
    page.get_by_role("button", name="Send request").click()
    address = page.get_by_label("Email address")  # Microsoft's sign-in page, this time
    assert address.input_value() == "user@contoso.test"  # the first trip's login_hint
    entra_sign_in(page)
    page.locator("#request-status").wait_for()
    assert page.locator("#request-status").inner_text() == "Pending"


def helpdesk_link(app: Flask) -> str:
    """Return a helpdesk's Authenticate link for SharePoint addressed to user@contoso.test."""
    with app.app_context():
        made = extensions.links().create(
            db.session,
            kind="authenticate",
            created_by="helpdesk@contoso.test",
            tenant_id=CONTOSO,
            scope=None,
            connector="sharepoint",
            login_hint="user@contoso.test",
        )
        db.session.commit()
        return str(made.url)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_admin_reads_the_roles_and_where_to_grant(
    page: Page, portal: LivePortal, width: int
) -> None:
    """Roles and the admin-center path are on the admin's view of the request."""
    page.set_viewport_size({"width": width, "height": 900})
    request_id = file_request(portal.app, "user@contoso.test")
    sign_in(page, portal.url, "admin@contoso.test")
    page.goto(f"{portal.url}/consent-requests/{request_id}")
    decide = page.get_by_role("region", name="Decide")
    text = decide.inner_text()
    assert "Privileged Role Administrator" in text and "Cloud Application Administrator" in text
    assert "Enterprise applications > Connector Consent Portal > Permissions" in text
    assert page.get_by_text("Read items in all site collections").is_visible()
    page.get_by_text("Technical name").click()
    assert page.get_by_text("https://graph.microsoft.com/Sites.Read.All").is_visible()
    assert "organisation" not in page.content()
    found = problems_on(page, width)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_helpdesk_and_the_person_they_send_read_plain_words(
    page: Page, portal: LivePortal, width: int
) -> None:
    """The helpdesk sees a request with its Copy-able link; its landing page keeps capitals."""
    page.set_viewport_size({"width": width, "height": 900})
    request_id = file_request(portal.app, "user@contoso.test")
    url = helpdesk_link(portal.app)
    sign_in(page, portal.url, "helpdesk@contoso.test")
    page.goto(f"{portal.url}/consent-requests/{request_id}")
    assert page.get_by_label("Status link").input_value().endswith(request_id)
    found = problems_on(page, width)

    page.context.clear_cookies()
    page.goto(url)
    text = page.locator("main").inner_text()
    assert "Reads the SharePoint sites" in text and "reads the sharepoint sites" not in text
    assert "does not work with personal Microsoft accounts" in text  # told before they leave
    found += problems_on(page, width)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_dead_ends_for_a_personal_account(page: Page, portal: LivePortal, width: int) -> None:
    """SharePoint does not offer what cannot work; OneDrive's default path takes any account."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{portal.url}/connectors/sharepoint")
    # No account-type choice; the only radios left ask whose organization's data it reads.
    assert page.get_by_role("group", name="Account type").count() == 0
    assert page.get_by_role("radio", name="Either: Microsoft asks which account").count() == 0
    assert page.get_by_role("radio").count() == 2
    assert page.get_by_role("group", name="Whose data").get_by_role("radio").count() == 2
    assert page.get_by_text("does not work with personal Microsoft accounts").is_visible()
    assert page.get_by_text("Read items in all site collections").is_visible()
    found = problems_on(page, width)

    page.goto(f"{portal.url}/connectors/onedrive")
    assert page.get_by_role("radio", name="Either: Microsoft asks which account").is_checked()
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, "pat@outlook.test")
    accept_if_asked(page)
    page.get_by_label("Connection code").wait_for()
    assert page.get_by_label("Connection code").input_value().startswith("ccp_")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", WIDTHS)
def test_check_access_says_only_what_is_known(page: Page, portal: LivePortal, width: int) -> None:
    """A Fabrikam user (whose organization lets users consent) hears no talk of defaults."""
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, portal.url, "user@fabrikam.test")
    page.goto(f"{portal.url}/connectors/sharepoint")
    page.get_by_role("button", name="Check access").click()
    check = page.get_by_role("status").filter(has_text="Access check")
    text = check.inner_text()
    assert "Available" in text and "Answering" not in text
    assert "Not known yet" in text and "default consent settings" not in text
    assert "organisation" not in page.content()
    found = problems_on(page, width)
    assert not found, "\n".join(found)
