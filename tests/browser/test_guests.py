"""A guest connecting to the resource tenant in a real browser (issue 13, item 4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page

from entra_emulator import Emulator
from tests.browser.conftest import LivePortal
from tests.browser.test_pages import problems_on
from tests.signins import accept_if_asked
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser
PERSON = "user@fabrikam.test"
SHOTS = os.environ.get("PORTAL_SCREENSHOTS")  # a folder: keep screenshots of each step


def _shot(page: Page, name: str, width: int) -> None:
    """Keep a full-page screenshot when asked to (PORTAL_SCREENSHOTS)."""
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"guest-{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", [390, 1280])
def test_a_guest_connects_to_the_resource_tenant_by_keyboard(
    page: Page, portal: LivePortal, entra: Emulator, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    grant = {"tenant": "contoso.test", "client_id": portal.app.config["CLIENT_ID"],
             "resource": "https://graph.microsoft.com", "principal": None,
             "scopes": ["Files.Read.All", "User.Read"]}  # fmt: skip
    assert entra.control("POST", "/_emulator/grants", json=grant).ok

    page.goto(f"{portal.url}/connectors/onedrive")
    assert page.get_by_label("Your organization: the one your work or school account").is_checked()
    assert problems_on(page, width) == []
    page.get_by_label("An organization you are a guest in").focus()
    page.keyboard.press("Space")
    page.get_by_label("Its domain").focus()
    page.keyboard.type("nowhere.test")
    page.keyboard.press("Enter")  # submits the form: Authenticate is its only button
    page.get_by_text(
        "Microsoft doesn't know an organization with the domain nowhere.test"
    ).wait_for()
    assert page.get_by_label("Its domain").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("An organization you are a guest in").is_checked()
    _shot(page, "unknown-domain", width)
    assert problems_on(page, width) == []

    page.goto(f"{portal.url}/connectors/onedrive?domain_hint=contoso.test")  # a shared link
    assert page.get_by_label("An organization you are a guest in").is_checked()
    assert page.get_by_label("Its domain").input_value() == "contoso.test"
    _shot(page, "authenticate", width)
    assert problems_on(page, width) == []
    page.get_by_role("button", name="Authenticate").focus()
    page.keyboard.press("Enter")
    entra_sign_in(page, PERSON)  # the person's own Fabrikam name and password
    accept_if_asked(page)
    page.get_by_label("Connection code").wait_for()
    text = page.locator("p.tenancy").inner_text()
    assert text.startswith(
        "This connection reads the data of contoso.test (you are a guest there)."
    )
    assert "your own organization's data (fabrikam.test)" in text
    _shot(page, "code", width)
    assert problems_on(page, width) == []

    page.goto(f"{portal.url}/connections")  # My connections says whose data it reads
    note = page.locator(".tenancy-note")
    assert note.inner_text() == "Guest in contoso.test: reads that organization's data"
    assert note.is_visible()
    _shot(page, "connections", width)
    assert problems_on(page, width) == []


@pytest.mark.parametrize("width", [390, 1280])
def test_the_sign_in_page_offers_the_guest_tenant(
    page: Page, portal: LivePortal, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{portal.url}/sign-in")
    assert not page.get_by_label("Its domain (optional)").is_visible()  # folded away
    assert problems_on(page, width) == []
    page.get_by_text("Signing in to an organization you are a guest in?").focus()
    page.keyboard.press("Enter")  # a summary opens by keyboard
    page.get_by_label("Its domain (optional)").fill("nowhere.test")
    page.keyboard.press("Enter")
    page.get_by_text(
        "Microsoft doesn't know an organization with the domain nowhere.test"
    ).wait_for()
    _shot(page, "sign-in", width)
    assert problems_on(page, width) == []
