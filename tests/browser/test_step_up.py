"""MFA step-up in a real browser (issue 13): a refused refresh, the link, Microsoft's code page."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page

from entra_emulator import Emulator
from tests.browser.conftest import LivePortal
from tests.browser.test_pages import problems_on
from tests.signins import connect_account
from tests.signins import entra_sign_in
from tests.test_tokens import expired_connection

pytestmark = pytest.mark.browser
USER = "user@fabrikam.test"


@pytest.mark.parametrize("width", [390, 1280])
def test_mfa_step_up_from_the_409_link_restores_the_connection(
    page: Page, portal: LivePortal, entra: Emulator, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    connection_id, code = expired_connection(
        entra, lambda: connect_account(portal.app, entra, "onedrive", USER)
    )
    access = f"/_emulator/users/{USER}/conditional-access"
    assert entra.control("POST", access, json={"mfa": "required"}).ok
    headers = {"Authorization": f"Bearer {code}"}
    refused = requests.post(f"{portal.url}/api/v1/token", headers=headers, timeout=30)
    assert refused.status_code == 409
    link = refused.json()["reauthenticate_url"]

    page.goto(link)  # what the data tool shows its user, and the owner's mail links to
    assert page.get_by_role("heading", name="Reconnect OneDrive").is_visible()
    assert page.get_by_text("Multi-factor sign-in required.").is_visible()
    assert problems_on(page, width) == []
    page.get_by_role("button", name="Reconnect").click()
    entra_sign_in(page, USER)
    page.get_by_role("heading", name="Enter code").wait_for()  # Microsoft's second step
    assert problems_on(page, width) == []
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    assert page.get_by_role("alert").inner_text().startswith("You didn't enter the expected")
    page.get_by_label("Code").fill("123456")  # the emulator's demo code
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("OneDrive is reconnected. Your connection code keeps working.").wait_for()
    assert page.url.endswith("/connections")
    again = requests.post(f"{portal.url}/api/v1/token", headers=headers, timeout=30)
    assert again.status_code == 200 and again.json()["access_token"]
    assert connection_id in link
