"""Who may allow a connector, said before any redirect, in the browser with axe (issue 13, 7)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.conftest import LivePortal
from tests.browser.test_words import WIDTHS
from tests.browser.test_words import problems_on
from tests.browser.test_words import sign_in
from tests.signins import accept_if_asked


@pytest.mark.parametrize("width", WIDTHS)
def test_readiness_and_check_access_say_who_may_allow(
    page: Page, browser: Browser, portal: LivePortal, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, portal.url, "admin@contoso.test")
    page.goto(f"{portal.url}/admin/readiness")
    page.get_by_role("button", name="Check now").click()
    accept_if_asked(page)
    expect(page.get_by_role("button", name="Check again")).to_be_visible()
    sharepoint = page.get_by_role("row", name="Who can allow SharePoint")
    expect(sharepoint).to_contain_text("Needs an admin: Sites.Read.All")
    expect(sharepoint).to_contain_text("Grant for organization")
    found = problems_on(page, width)

    context = browser.new_context(viewport={"width": width, "height": 900})
    user = context.new_page()
    try:
        sign_in(user, portal.url, "user@contoso.test")
        user.goto(f"{portal.url}/connectors/sharepoint")
        user.get_by_role("button", name="Check access").click()
        check = user.get_by_role("status").filter(has_text="Access check")
        expect(check).to_contain_text("Your IT administrator has to allow this")
        expect(check).to_contain_text("Read items in all site collections (Sites.Read.All)")
        found += problems_on(user, width)
        user.goto(f"{portal.url}/connectors/dynamics?check=1")
        expect(user.get_by_role("status")).to_contain_text("You can allow it yourself")
        found += problems_on(user, width)
    finally:
        context.close()
    assert not found, "\n".join(found)
