"""Staff pages in Chromium at 1280 and 390 px (issue 14, item 6): helpdesk, admin and the user.

Each test walks one reader's pages by keyboard-reachable controls and checks, on every page it
reaches, that nothing scrolls sideways and axe-core finds nothing serious or critical.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.conftest import LivePortal
from tests.browser.test_pages import problems_on
from tests.browser.test_pages import sign_in
from tests.signins import accept_if_asked
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1280, 390)


def shot(page: Page, name: str, width: int) -> None:
    """Keep a screenshot of the page in /tmp for a person to look at."""
    page.screenshot(path=f"/tmp/staff-{name}-{width}.png", full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_helpdesk_link_form_and_troubleshooter(page: Page, portal: LivePortal, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, portal.url, "helpdesk@contoso.test")
    page.goto(f"{portal.url}/helpdesk")
    expect(page.get_by_label("Connection id")).to_have_count(0)  # no fields before the kind
    page.get_by_label("Kind").select_option("reconnect")
    page.get_by_role("button", name="Choose kind").click()
    expect(page.get_by_label("Connection id")).to_be_visible()
    expect(page.get_by_label("Connector", exact=True)).to_have_count(0)
    expect(page.get_by_label("Tenant domain or id")).to_have_count(0)
    page.get_by_label("Note for the helpdesk (not shown to the person)").fill("Ticket 4711")
    page.get_by_label("Connection id").evaluate("field => field.removeAttribute('required')")
    page.get_by_role("button", name="Create link").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Give the connection id")
    expect(alert).to_contain_text("Problem:")
    expect(page.get_by_label("Connection id")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Note for the helpdesk (not shown to the person)")).to_have_value(
        "Ticket 4711"
    )
    assert "There is no live connection" not in page.content()
    shot(page, "link-form-error", width)
    found = problems_on(page, width)

    page.get_by_role("link", name="Troubleshoot").first.click()
    page.get_by_label("Error text").fill("AADSTS50011: The redirect URI does not match.")
    page.get_by_role("button", name="Diagnose").click()
    expect(page.get_by_role("heading", name="What to tell the user")).to_be_visible()
    expect(page.get_by_role("heading", name="What to ask the portal's operator")).to_be_visible()
    assert "support details below" not in page.content()
    assert "What you can do</h3>" not in page.content() or "sign-in logs" in page.content()
    shot(page, "troubleshoot", width)
    found += problems_on(page, width)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_readiness_grant_withdraw_and_audit(
    page: Page, portal: LivePortal, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, portal.url, "admin@contoso.test")
    page.goto(f"{portal.url}/admin/readiness")
    warning = page.get_by_role("region", name="Before you check")
    for scope in ("Application.Read.All", "Directory.Read.All", "Policy.Read.All"):
        expect(warning).to_contain_text(scope)
    found = problems_on(page, width)
    page.get_by_role("button", name="Check now").click()
    accept_if_asked(page)
    expect(page.get_by_role("button", name="Check again")).to_be_visible()

    page.goto(f"{portal.url}/admin")
    page.get_by_role("button", name="Grant for organization: OneDrive").click()
    accept_if_asked(page)
    page.wait_for_url(f"{portal.url}/admin")
    success = page.get_by_role("status").filter(has_text="OneDrive is granted")
    expect(success).to_contain_text("Done:")
    expect(page.get_by_role("alert")).to_have_count(0)
    row = page.get_by_role("row", name=re.compile("^OneDrive"))
    expect(row).to_contain_text("Granted for organization")
    expect(row.get_by_role("button", name="Grant for organization: OneDrive")).to_have_count(0)
    shot(page, "admin-granted", width)
    found += problems_on(page, width)

    row.get_by_role("link", name="Withdraw: OneDrive").click()
    expect(
        page.get_by_role("heading", name="Withdraw OneDrive for your organization?")
    ).to_be_visible()
    expect(page.get_by_text("DelegatedPermissionGrant.ReadWrite.All")).to_be_visible()
    shot(page, "withdraw-confirm", width)
    found += problems_on(page, width)
    page.get_by_role("button", name="Withdraw OneDrive").click()
    accept_if_asked(page)
    page.wait_for_url(f"{portal.url}/admin")
    expect(page.get_by_role("status").filter(has_text="no longer granted")).to_be_visible()
    expect(page.get_by_role("button", name="Grant for organization: OneDrive")).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Event").select_option(label="Organization grant withdrawn")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Organization grant withdrawn")
    expect(rows.first).to_contain_text("OneDrive")
    csv = page.get_by_role("link", name="Export these events as CSV")
    assert "event=tenant_consent.withdrawn" in str(csv.get_attribute("href"))
    page.get_by_label("Event").select_option(label="Readiness checked")
    page.get_by_role("button", name="Filter").click()
    expect(rows.first).to_contain_text("Tenant readiness")
    shot(page, "audit", width)
    found += problems_on(page, width)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_user_is_told_nobody_was_notified(page: Page, portal: LivePortal, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{portal.url}/connectors/sharepoint")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, "user@contoso.test")
    page.get_by_role("link", name="Return to the application without granting consent").click()
    page.get_by_label("Justification").fill("Our quarterly reports live in SharePoint")
    page.get_by_role("button", name="Send request").click()
    told = page.locator("#who-was-told")
    expect(told).to_contain_text("Nobody was told automatically")
    expect(told).not_to_contain_text("has been asked")
    shot(page, "request-status", width)
    found = problems_on(page, width)
    assert not found, "\n".join(found)
