"""Revoke, Regenerate and Remove ask first; reconnecting renews the row (issue 14, item 2)."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page

from tests.browser.conftest import LivePortal
from tests.signins import accept_if_asked
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser


def tool_status(portal: LivePortal, code: str) -> int:
    """Return what the token API answers a data tool with this code."""
    answer = requests.post(
        f"{portal.url}/api/v1/token", headers={"Authorization": f"Bearer {code}"}, timeout=30
    )
    return answer.status_code


def authenticate(page: Page, portal: LivePortal, username: str | None) -> None:
    """Press Authenticate on OneDrive's page and sign in (the e-mail unless Entra remembers it)."""
    page.goto(f"{portal.url}/connectors/onedrive")
    page.get_by_role("button", name="Authenticate").click()
    if page.get_by_label("Email address").count():
        entra_sign_in(page, username)
    accept_if_asked(page)


@pytest.mark.parametrize("width", [390, 1280])
def test_destructive_actions_ask_first_by_keyboard(
    page: Page, portal: LivePortal, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    authenticate(page, portal, "user@fabrikam.test")
    code = page.get_by_label("Connection code").input_value()

    page.goto(f"{portal.url}/connections")
    page.get_by_role("link", name="Revoke OneDrive").press("Enter")  # the stray Enter of issue 14
    assert page.get_by_role("heading", name="Revoke the OneDrive connection?").is_visible()
    assert page.get_by_text("loses access to OneDrive at once").is_visible()
    assert tool_status(portal, code) == 200
    page.get_by_role("link", name="Cancel").press("Enter")
    assert page.get_by_role("heading", name="My connections").is_visible()

    page.get_by_role("link", name="Regenerate code for OneDrive").press("Enter")
    assert page.get_by_text("The current connection code stops working").is_visible()
    assert tool_status(portal, code) == 200
    page.get_by_role("button", name="Regenerate code").press("Enter")
    assert page.get_by_text("The old code stopped working just now.").is_visible()
    new_code = page.get_by_label("Connection code").input_value()
    assert tool_status(portal, code) == 401 and tool_status(portal, new_code) == 200

    page.goto(f"{portal.url}/connections")
    page.get_by_role("link", name="Revoke OneDrive").click()
    page.get_by_role("button", name="Revoke connection").press("Enter")
    assert page.get_by_text("The OneDrive connection was revoked.").is_visible()
    assert tool_status(portal, new_code) == 401
    assert page.get_by_role("link", name="Revoke OneDrive").count() == 0
    page.get_by_role("link", name="Show revoked (1)").click()
    page.get_by_role("link", name="Remove revoked OneDrive connection").click()
    assert page.get_by_text("Nothing stops working").is_visible()
    page.get_by_role("button", name="Remove from my list").click()
    assert page.get_by_text("was removed from your list").is_visible()
    assert page.get_by_role("link", name="Show revoked").count() == 0


@pytest.mark.parametrize("width", [390, 1280])
def test_authenticating_again_renews_the_connection_instead_of_adding_one(
    page: Page, portal: LivePortal, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    authenticate(page, portal, "user@fabrikam.test")
    code = page.get_by_label("Connection code").input_value()
    authenticate(page, portal, "user@fabrikam.test")
    assert page.get_by_text(
        "OneDrive is reconnected. Your connection code keeps working."
    ).is_visible()
    assert page.get_by_role("link", name="Revoke OneDrive").count() == 1  # one row, not two
    assert tool_status(portal, code) == 200
