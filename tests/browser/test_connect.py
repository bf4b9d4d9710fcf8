"""A person connects a data tool in a real browser; the tool then uses the code (issue 3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from playwright.sync_api import Page

from tests.browser.conftest import LivePortal
from tests.signins import entra_sign_in

pytestmark = pytest.mark.browser


def token_api(portal_url: str, code: str) -> requests.Response:
    """Call the token API the way a data tool does."""
    return requests.post(
        f"{portal_url}/api/v1/token", headers={"Authorization": f"Bearer {code}"}, timeout=30
    )


def claims(jwt: str) -> dict[str, Any]:
    """Return a JWT's payload without checking it (the test only reads aud and scp)."""
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def connect(page: Page, portal_url: str, connector: str, username: str, account: str = "") -> str:
    """Authenticate a connector in the browser and return the code shown once."""
    page.goto(f"{portal_url}/connectors/{connector}")
    if account:
        page.get_by_label(account).check()
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, username)
    page.get_by_role("button", name="Accept").click()
    field = page.get_by_label("Connection code")
    field.wait_for()
    return str(field.input_value())


def test_fabrikam_user_connects_onedrive_and_the_tool_gets_tokens(
    page: Page, portal: LivePortal
) -> None:
    """Authenticate, code once, token API, list, regenerate, revoke."""
    page.goto(f"{portal.url}/")
    page.get_by_role("link", name="OneDrive").click()
    page.get_by_role("button", name="Check access").click()
    assert page.get_by_role("heading", name="Access check").is_visible()

    code = connect(page, portal.url, "onedrive", "user@fabrikam.test")
    assert code.startswith("ccp_") and len(code) == 4 + 43
    assert page.get_by_label("Connection code").get_attribute("readonly") is not None
    assert page.get_by_role("button", name="Copy").is_visible()

    answer = token_api(portal.url, code)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["connector"] == "onedrive"
    assert body["account"]["username"] == "user@fabrikam.test"
    token = claims(body["access_token"])
    assert token["aud"] == "https://graph.microsoft.com"
    assert "Files.Read.All" in token["scp"].split()

    page.goto(f"{portal.url}/connections")
    row = page.get_by_role("row", name="OneDrive")
    assert "Active" in row.inner_text() and "user@fabrikam.test" in row.inner_text()

    row.get_by_role("link", name="Regenerate code").click()
    assert page.get_by_role("heading", name="Regenerate the OneDrive code?").is_visible()
    assert token_api(portal.url, code).status_code == 200  # asking changed nothing
    page.get_by_role("button", name="Regenerate code").click()
    assert page.get_by_text("The old code stopped working just now.").is_visible()
    new_code = page.get_by_label("Connection code").input_value()
    assert new_code != code
    assert token_api(portal.url, code).status_code == 401
    assert token_api(portal.url, new_code).status_code == 200

    page.goto(f"{portal.url}/connections")
    page.get_by_role("row", name="OneDrive").get_by_role("link", name="Revoke").click()
    page.get_by_role("link", name="Cancel").click()  # a stray click changes nothing
    assert token_api(portal.url, new_code).status_code == 200
    page.get_by_role("row", name="OneDrive").get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke connection").click()
    assert page.get_by_text("The OneDrive connection was revoked.").is_visible()
    assert page.get_by_role("row", name="OneDrive").count() == 0  # hidden behind Show revoked
    assert token_api(portal.url, new_code).status_code == 401
    page.get_by_role("link", name="Show revoked (1)").click()
    page.get_by_role("link", name="Remove revoked OneDrive connection").click()
    page.get_by_role("button", name="Remove from my list").click()
    assert page.get_by_role("link", name="Show revoked").count() == 0


def test_personal_account_connects_outlook_but_not_sharepoint(
    page: Page, portal: LivePortal
) -> None:
    """pat@outlook.test gets an Outlook code, and an explanation for SharePoint."""
    code = connect(page, portal.url, "outlook", "pat@outlook.test", "Personal Microsoft account")
    answer = token_api(portal.url, code)
    assert answer.status_code == 200, answer.text
    assert answer.json()["account"]["tenant_id"] == "9188040d-6c67-4c5b-b112-36a304b66dad"

    page.goto(f"{portal.url}/connectors/sharepoint")
    assert page.get_by_role(
        "heading", name="SharePoint needs a work or school account"
    ).is_visible()
    # Not offered where it cannot work (issue 14): no account-type choice, an explanation.
    assert page.get_by_label("Personal Microsoft account").count() == 0
    assert page.get_by_text("does not work with personal Microsoft accounts").is_visible()
