"""The emulator's pages in headless Chromium, located by their visible labels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Route
from playwright.sync_api import expect

from entra_emulator import Emulator
from entra_emulator.testing import callback_query

pytestmark = pytest.mark.browser
PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
CALLBACK = "http://127.0.0.1:5000/auth/callback"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Return a fresh page whose visits to the app's callback are answered locally."""
    context = browser.new_context()
    landed = context.new_page()

    def callback(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<h1>Back at the app</h1>")

    landed.route(re.compile(r"^http://127\.0\.0\.1:5000/.*"), callback)
    landed.set_default_timeout(10_000)
    yield landed
    context.close()


def authorize(emu: Emulator, scope: str, tenant: str = "organizations") -> str:
    """Return an authorize URL for the portal app."""
    query = {
        "client_id": PORTAL_ID,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": f"{scope} offline_access openid profile",
        "state": "b1",
        "client_info": "1",
    }
    return f"{emu.browser_url}/{tenant}/oauth2/v2.0/authorize?{urlencode(query)}"


def sign_in(page: Page, username: str) -> None:
    """Type the email address and password as a person would."""
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email address").fill(username)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()


def test_user_signs_in_and_consents(emu: Emulator, page: Page) -> None:
    page.goto(authorize(emu, "https://graph.microsoft.com/Files.Read"))
    sign_in(page, "user@fabrikam.test")
    expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
    expect(page.get_by_text("Read your files")).to_be_visible()
    expect(page.get_by_label("Consent on behalf of your organization")).to_have_count(0)
    with page.expect_request(re.compile(r"^http://127\.0\.0\.1:5000/")) as landed:
        page.get_by_role("button", name="Accept").click()
    answer = callback_query(landed.value.url)
    assert answer["code"] and answer["state"] == "b1"


def test_need_admin_approval_then_return_to_the_application(emu: Emulator, page: Page) -> None:
    page.goto(authorize(emu, "https://graph.microsoft.com/Sites.Read.All"))
    sign_in(page, "user@contoso.test")
    expect(page.get_by_role("heading", name="Need admin approval")).to_be_visible()
    expect(
        page.get_by_role("link", name="Have an admin account? Sign in with that account")
    ).to_be_visible()
    link = page.get_by_role("link", name="Return to the application without granting consent")
    with page.expect_request(re.compile(r"^http://127\.0\.0\.1:5000/")) as landed:
        link.click()
    answer = callback_query(landed.value.url)
    assert (answer["error"], answer["error_subcode"]) == ("access_denied", "cancel")
    assert answer["error_description"].startswith("AADSTS65004:")


def test_admin_grants_consent_for_the_tenant(emu: Emulator, page: Page) -> None:
    query = {
        "client_id": PORTAL_ID,
        "redirect_uri": CALLBACK,
        "scope": "https://graph.microsoft.com/Sites.Read.All",
        "state": "ac",
    }
    page.goto(f"{emu.browser_url}/contoso.test/v2.0/adminconsent?{urlencode(query)}")
    sign_in(page, "admin@contoso.test")
    expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
    with page.expect_request(re.compile(r"^http://127\.0\.0\.1:5000/")) as landed:
        page.get_by_role("button", name="Accept").click()
    answer = callback_query(landed.value.url)
    assert answer["admin_consent"] == "True" and answer["tenant"] and answer["state"] == "ac"


def test_personal_account_is_refused_for_storage(emu: Emulator, page: Page) -> None:
    page.goto(authorize(emu, "https://storage.azure.com/user_impersonation", tenant="common"))
    sign_in(page, "pat@outlook.test")
    expect(
        page.get_by_text(
            "You can't sign in here with a personal account. Use your work or school account"
            " instead."
        )
    ).to_be_visible()


def test_unassigned_user_gets_50105(emu: Emulator, page: Page) -> None:
    page.goto(authorize(emu, "https://graph.microsoft.com/User.Read"))
    sign_in(page, "user@northwind.test")
    expect(page.get_by_text("AADSTS50105").first).to_be_visible()


def test_admin_checkbox_grants_for_the_organization(emu: Emulator, page: Page) -> None:
    page.goto(authorize(emu, "https://graph.microsoft.com/Mail.Read"))
    sign_in(page, "admin@contoso.test")
    page.get_by_label("Consent on behalf of your organization").check()
    with page.expect_request(re.compile(r"^http://127\.0\.0\.1:5000/")):
        page.get_by_role("button", name="Accept").click()
    (grant,) = emu.control("GET", "/_emulator/state").json()["grants"]
    assert grant["principal"] is None
