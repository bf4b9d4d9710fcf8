"""Account and app lifecycle, end to end (issue 13, item 3): each cause named, nothing deleted."""

from __future__ import annotations

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
FABRIKAM = "fabrikam.test"
ACCOUNT = f"/_emulator/users/{USER}/account"
ENTERPRISE_APP = f"/_emulator/tenants/{FABRIKAM}/enterprise-app"
ADMIN = "an administrator of the user&#39;s organization"
Change = Callable[[Emulator, str], None]  # (emulator, the portal's client id)


def _post(path: str, body: dict[str, Any]) -> Change:
    """Return a change made through the emulator's control plane."""

    def change(entra: Emulator, _client_id: str) -> None:
        assert entra.control("POST", path, json=body).ok

    return change


def _withdraw_consent(entra: Emulator, client_id: str) -> None:
    """Remove the user's own consent to the portal for Microsoft Graph, as an admin may."""
    body = {"tenant": FABRIKAM, "client_id": client_id, "principal": USER}
    assert entra.control("DELETE", "/_emulator/grants", json=body).json()["removed"] == 1


def _nothing(_entra: Emulator, _client_id: str) -> None:
    """Change nothing: the reconnect itself (a consent page accepted) is the cure."""


CASES = [  # (what breaks, the code at refresh, the cause's title, who acts, what mends it)
    pytest.param(
        _post(ACCOUNT, {"deleted": True}),
        50034,
        "The account was deleted",
        ADMIN,
        _post(ACCOUNT, {"deleted": False}),
        id="user-deleted",
    ),
    pytest.param(
        _withdraw_consent,
        65001,
        "Access to OneDrive was withdrawn",
        "the user",
        _nothing,
        id="consent-withdrawn",
    ),
    pytest.param(
        _post(ENTERPRISE_APP, {"assignment_required": True, "assigned_users": []}),
        50105,
        "Your account is not assigned to the Connector Consent Portal",
        ADMIN,
        _post(ENTERPRISE_APP, {"assigned_users": [USER]}),
        id="user-unassigned",
    ),
    pytest.param(
        _post(ENTERPRISE_APP, {"deleted": True}),
        700016,
        "The Connector Consent Portal was removed from your organization",
        ADMIN,
        _nothing,  # the user's consent on the reconnect adds the portal back (legacy policy)
        id="app-deleted",
    ),
    pytest.param(
        _post(ENTERPRISE_APP, {"account_enabled": False}),
        7000112,
        "The Connector Consent Portal is disabled in your organization",
        ADMIN,
        _post(ENTERPRISE_APP, {"account_enabled": True}),
        id="app-disabled",
    ),
]


@pytest.mark.parametrize(("breaks", "code", "title", "who", "mends"), CASES)
def test_a_lifecycle_change_is_named_for_each_reader_and_a_reconnect_restores_it(
    make_portal: Callable[..., Flask],
    entra: Emulator,
    mailbox: tuple[Mailbox, str],  # noqa: F811
    breaks: Change,
    code: int,
    title: str,
    who: str,
    mends: Change,
) -> None:
    box, smtp = mailbox
    receiver = Hook()
    app = make_portal(WEBHOOK_URLS=[receiver.url], NOTIFY_MODE="manual", SMTP_URL=smtp)
    connection_id, connection_code = expired_connection(
        entra, lambda: connect_account(app, entra, "onedrive", USER)
    )
    breaks(entra, app.config["CLIENT_ID"])

    tool = app.test_client()  # the data tool: 409 with the link, on every call, no token
    headers = {"Authorization": f"Bearer {connection_code}"}
    answers = [tool.post("/api/v1/token", headers=headers) for _ in range(3)]
    assert {a.status_code for a in answers} == {409}
    body = answers[0].get_json()
    assert body["error"] == "reauthentication_required" and "access_token" not in body
    link = body["reauthenticate_url"]
    assert link.endswith(f"/connections/{connection_id}/reconnect")
    row = row_of(app, connection_id)  # kept, with its cause
    assert row is not None and row.status == REAUTHENTICATION_REQUIRED
    assert row.last_error_code == f"AADSTS{code}"

    with app.app_context():  # the owner is told once: one webhook, one mail
        notifier().run_due()
    receiver.server.shutdown()
    receiver.server.server_close()
    told = [e for e in receiver.events() if e == "connection.reauthentication_required"]
    assert len(told) == 1, receiver.events()
    mails = box.to(USER)
    assert len(mails) == 1
    text = mails[0].get_body(("plain",)).get_content()
    assert title in text and link in text and "Nothing was deleted" in text
    assert USER.encode() not in b"".join(b for _, b, _ in receiver.calls)  # not in webhooks

    page = tool.get(link.removeprefix(app.config["PUBLIC_URL"])).get_data(as_text=True)
    assert f"<strong>{title}.</strong>" in page and "What to do" in page  # the page the mail opens

    app.config["HELPDESK_USERS"] = [staff_id(entra, "helpdesk@contoso.test")]
    helpdesk = Web(app.test_client(), entra)
    helpdesk.sign_in("helpdesk@contoso.test")
    lookup = helpdesk.page(f"/helpdesk/users?q={USER}")
    assert f"AADSTS{code}: {title}. Who acts: {who}" in lookup

    mends(entra, app.config["CLIENT_ID"])
    again, new_code = connect_account(app, entra, "onedrive", USER)
    assert (again, new_code) == (connection_id, None)  # the same row, the code unchanged
    answer = tool.post("/api/v1/token", headers=headers)
    assert answer.status_code == 200 and answer.get_json()["access_token"]
    restored = row_of(app, connection_id)
    assert restored is not None and restored.status == "active"


def test_a_password_change_leaves_the_portal_s_refresh_tokens_working(
    app: Flask, entra: Emulator, connect: Any
) -> None:
    connection_id, connection_code = expired_connection(entra, connect, username=USER)
    assert entra.control("POST", ACCOUNT, json={"password": "changed"}).ok  # an admin reset it
    headers = {"Authorization": f"Bearer {connection_code}"}
    answer = app.test_client().post("/api/v1/token", headers=headers)
    assert answer.status_code == 200 and answer.get_json()["access_token"]  # a confidential client


def test_an_expired_password_is_updated_at_sign_in_and_the_connection_is_made(
    app: Flask, entra: Emulator, web: Web, read_row: Any
) -> None:
    assert entra.control("POST", ACCOUNT, json={"password_expired": True}).ok
    auth_uri = web.authenticate("onedrive")
    with pytest.raises(SignInStopped) as stopped:  # Entra's "Update your password" page
        entra.sign_in(auth_uri, USER)
    assert stopped.value.code == 50055 and "Update your password" in str(stopped.value)
    auth_uri = web.authenticate("onedrive")
    callback = entra.sign_in(auth_uri, USER, new_password="new-demo")
    code = web.code(web.callback(callback))
    answer = app.test_client().post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    assert answer.status_code == 200
    state = entra.control("GET", "/_emulator/state").json()
    user = next(u for u in state["users"] if u["username"] == USER)
    assert user["password_expired"] is False
    with pytest.raises(SignInStopped) as refused:  # the old password no longer works
        entra.sign_in(web.authenticate("onedrive"), USER)
    assert refused.value.code == 50126
