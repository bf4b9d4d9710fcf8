"""The helpdesk hands a user a link; the user connects OneDrive through it (issue 5, browser)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page

from entra_emulator import Emulator
from tests.browser.conftest import LivePortal
from tests.signins import accept_if_asked
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser
GRAPH = "https://graph.microsoft.com"


def test_helpdesk_link_takes_a_user_straight_to_a_connection(
    page: Page, browser: Browser, portal: LivePortal, entra: Emulator
) -> None:
    # Precondition: a contoso admin granted OneDrive's scope tenant-wide (the consent issue's
    # Grant for organization does this through the browser; here the control plane sets it up).
    grant = {
        "tenant": "contoso.test",
        "client_id": portal.app.config["CLIENT_ID"],
        "resource": GRAPH,
        "scopes": [f"{GRAPH}/Files.Read.All"],
        "principal": None,
    }
    assert entra.control("POST", "/_emulator/grants", json=grant).status_code == 201

    page.goto(f"{portal.url}/helpdesk")
    page.get_by_label("Email address (optional)").fill("helpdesk@contoso.test")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page)
    accept_if_asked(page)
    page.wait_for_url(f"{portal.url}/helpdesk")
    page.get_by_label("Kind").select_option("authenticate")
    page.get_by_role("button", name="Choose kind").click()  # the kind first, then its fields
    page.get_by_label("Connector").select_option("onedrive")
    page.get_by_label("Person's e-mail (login hint)").fill("user@contoso.test")
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_role("textbox", name="Link", exact=True).input_value()
    assert link.startswith(f"{portal.url}/l/")
    assert page.get_by_role("img", name="QR code of the link").is_visible()
    assert "mailto:user@contoso.test" in str(
        page.get_by_role("link", name="Write the e-mail to user@contoso.test").get_attribute("href")
    )

    person = browser.new_context()
    try:
        tab = person.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(link)
        assert tab.get_by_text(
            "Your helpdesk asked you to connect OneDrive as user@contoso.test"
        ).is_visible()
        tab.get_by_role("button", name="Continue to Microsoft sign-in").click()
        assert tab.get_by_label("Email address").input_value() == "user@contoso.test"
        entra_sign_in(tab)
        accept_if_asked(tab)
        code = tab.get_by_label("Connection code")
        code.wait_for()
        assert code.input_value().startswith("ccp_")
        assert "Need admin approval" not in tab.content()
    finally:
        person.close()

    page.goto(f"{portal.url}/helpdesk")
    row = page.get_by_role("row", name="Authenticate a connector: OneDrive")
    assert "Completed" in row.inner_text()
