"""Conditional Access at refresh, end to end (issue 13, item 1): what each reader is told."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.models import REAUTHENTICATION_REQUIRED
from app.platform.extensions import notifier
from entra_emulator import Emulator
from entra_emulator.testing import SignInStopped
from tests.blueprints.test_consent import Hook
from tests.blueprints.test_consent import Mailbox
from tests.blueprints.test_consent import mailbox  # noqa: F401 (the SMTP server fixture)
from tests.conftest import row as row_of
from tests.signins import Web
from tests.signins import connect_account
from tests.signins import staff_id
from tests.test_tokens import expired_connection

USER = "user@fabrikam.test"
ACCESS = f"/_emulator/users/{USER}/conditional-access"
POLICIES = [  # (the user's policy, the code Entra answers, the owner's words: title and step)
    ({"mfa": "required"}, 50076, ("Multi-factor sign-in required", "Reconnect OneDrive and")),
    ({"mfa": "registration"}, 50079, ("Set up multi-factor authentication", "Reconnect OneDrive;")),
    ({"blocked": True}, 53003, ("Blocked by your organization&#39;s access policy", "")),
]


@pytest.mark.parametrize(("policy", "code", "words"), POLICIES)
def test_a_policy_at_refresh_asks_for_a_sign_in_and_says_why(
    make_portal: Callable[..., Flask],
    entra: Emulator,
    mailbox: tuple[Mailbox, str],  # noqa: F811
    policy: dict[str, object],
    code: int,
    words: tuple[str, str],
) -> None:
    box, smtp = mailbox
    receiver = Hook()
    app = make_portal(WEBHOOK_URLS=[receiver.url], NOTIFY_MODE="manual", SMTP_URL=smtp)
    connection_id, connection_code = expired_connection(
        entra, lambda: connect_account(app, entra, "onedrive", USER)
    )
    assert entra.control("POST", ACCESS, json=policy).ok
    tool = app.test_client()
    headers = {"Authorization": f"Bearer {connection_code}"}
    answers = [tool.post("/api/v1/token", headers=headers) for _ in range(3)]
    assert {a.status_code for a in answers} == {409}
    body = answers[0].get_json()
    assert body["error"] == "reauthentication_required"
    assert body["reauthenticate_url"].endswith(f"/connections/{connection_id}/reconnect")
    assert "access_token" not in body
    row = row_of(app, connection_id)
    assert row is not None and row.status == REAUTHENTICATION_REQUIRED
    assert row.last_error_code == f"AADSTS{code}"
    with app.app_context():  # the owner's systems are told once per episode, not once per call
        notifier().run_due()
    receiver.server.shutdown()
    receiver.server.server_close()
    told = [e for e in receiver.events() if e == "connection.reauthentication_required"]
    assert len(told) == 1, receiver.events()
    (mail,) = box.to(USER)  # and the owner: one mail with the cause and the link
    text = mail.get_body(("plain",)).get_content()
    assert html.unescape(words[0]) in text and body["reauthenticate_url"] in text

    reconnect = tool.get(f"/connections/{connection_id}/reconnect").get_data(as_text=True)
    assert f"<strong>{words[0]}.</strong>" in reconnect  # the page the owner's link opens
    owner = Web(app.test_client(), entra)
    if policy.get("blocked"):  # the policy blocks the portal's own sign-in too: Entra's page
        with pytest.raises(SignInStopped) as stopped:
            owner.sign_in(USER)
        assert stopped.value.code == 53003
    else:  # the owner passes MFA at Microsoft's "Enter code" page, then sees why
        owner.sign_in(USER)
        page = owner.page("/connections")
        assert "Reauthentication required" in page
        assert f"<strong>{words[0]}.</strong> {words[1]}" in page
        assert 'Never<br><span class="trail-by">tried by ' in page  # the refused reads

    app.config["HELPDESK_USERS"] = [staff_id(entra, "helpdesk@contoso.test")]  # every tenant
    helpdesk = Web(app.test_client(), entra)
    helpdesk.sign_in("helpdesk@contoso.test")
    lookup = helpdesk.page(f"/helpdesk/users?q={USER}")
    assert f"AADSTS{code}: {words[0]}" in lookup


def test_after_the_policy_is_met_a_reconnect_restores_the_same_code(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, connection_code = expired_connection(entra, connect, username=USER)
    entra.control("POST", ACCESS, json={"mfa": "required"})
    headers = {"Authorization": f"Bearer {connection_code}"}
    assert app.test_client().post("/api/v1/token", headers=headers).status_code == 409
    entra.control("POST", ACCESS, json={"mfa": "off"})  # the person completed MFA at Microsoft
    again, code = connect("onedrive", USER)
    assert again == connection_id and code is None  # the same row, the code unchanged
    answer = app.test_client().post("/api/v1/token", headers=headers)
    assert answer.status_code == 200 and answer.get_json()["access_token"]
    assert read_row(connection_id).status == "active"


def test_a_disabled_account_is_named_and_a_reconnect_after_enabling_restores_it(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, connection_code = expired_connection(entra, connect, username=USER)
    account = f"/_emulator/users/{USER}/account"
    assert entra.control("POST", account, json={"disabled": True}).ok  # an admin disabled it
    headers = {"Authorization": f"Bearer {connection_code}"}
    answer = app.test_client().post("/api/v1/token", headers=headers)
    assert answer.status_code == 409 and answer.get_json()["error"] == "reauthentication_required"
    row = read_row(connection_id)
    assert row.status == REAUTHENTICATION_REQUIRED and row.last_error_code == "AADSTS50057"
    app.config["HELPDESK_USERS"] = [staff_id(entra, "helpdesk@contoso.test")]
    helpdesk = Web(app.test_client(), entra)
    helpdesk.sign_in("helpdesk@contoso.test")
    lookup = helpdesk.page(f"/helpdesk/users?q={USER}")
    assert "AADSTS50057: The account is disabled" in lookup

    assert entra.control("POST", account, json={"disabled": False}).ok
    again, code = connect("onedrive", USER)
    assert again == connection_id and code is None  # the same row, the code unchanged
    answer = app.test_client().post("/api/v1/token", headers=headers)
    assert answer.status_code == 200 and read_row(connection_id).status == "active"


def test_sign_in_frequency_asks_the_owner_to_sign_in_again(
    app: Flask, entra: Emulator, connect: Any, read_row: Any, web: Web
) -> None:
    connection_id, connection_code = expired_connection(entra, connect, username=USER)
    with entra.state.lock:  # the sign-in behind the connection was eight hours ago
        for record in entra.state.refresh_tokens.values():
            if record.username == USER:
                record.signed_in -= 8 * 3600
    assert entra.control("POST", ACCESS, json={"sign_in_frequency": 4 * 3600}).ok
    headers = {"Authorization": f"Bearer {connection_code}"}
    answer = app.test_client().post("/api/v1/token", headers=headers)
    assert answer.status_code == 409 and answer.get_json()["error"] == "reauthentication_required"
    assert read_row(connection_id).last_error_code == "AADSTS70043"
    web.sign_in(USER)  # a fresh sign-in to the portal is within the policy
    page = web.page("/connections")
    assert (
        "<strong>Your organization requires you to sign in again.</strong> Reconnect OneDrive"
        in (page)
    )
