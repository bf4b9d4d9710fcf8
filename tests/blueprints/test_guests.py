"""B2B guests end to end (issue 13, item 4): a Fabrikam user connects to Contoso as a guest.

Real MSAL over real HTTPS to the emulator; the portal through its test client; the world
changed only through the emulator's control plane.
"""

from __future__ import annotations

import html
import re
from typing import Any

import jwt
from flask import Flask

from app.consent import records
from app.consent.records import ConsentRequest
from app.models import Connection
from app.platform import extensions
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.blueprints.test_consent import rows
from tests.blueprints.test_consent import send_request
from tests.signins import Web

PERSON = "user@fabrikam.test"
GUEST_UPN = "user_fabrikam.test#EXT#@contoso.onmicrosoft.test"
FILES = ["Files.Read.All", "User.Read"]


def _state(entra: Emulator) -> dict[str, Any]:
    """Return the emulator's state from its control plane."""
    state: dict[str, Any] = entra.control("GET", "/_emulator/state").json()
    return state


def _tenant(entra: Emulator, domain: str) -> str:
    """Return a tenant's GUID."""
    return next(t["id"] for t in _state(entra)["tenants"] if domain in t["domains"])


def _oid(entra: Emulator, username: str) -> str:
    """Return an emulator account's object id."""
    return next(u["oid"] for u in _state(entra)["users"] if u["username"] == username)


def _grant(entra: Emulator, app: Flask, tenant: str) -> None:
    """Grant OneDrive's scopes tenant-wide in a tenant, as its admin would."""
    body = {"tenant": tenant, "client_id": app.config["CLIENT_ID"], "principal": None,
            "resource": "https://graph.microsoft.com", "scopes": FILES}  # fmt: skip
    assert entra.control("POST", "/_emulator/grants", json=body).ok


def _code_page(web: Web, auth_uri: str) -> tuple[str, str]:
    """Sign in at Entra as the person, come back, and return the code page and its code."""
    answer = web.callback(web.entra_answer(auth_uri, accept=True))
    assert answer.status_code == 303, answer.get_data(as_text=True)
    page = web.client.get(answer.headers["Location"]).get_data(as_text=True)
    code = page.split('id="connection-code"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", page)), code


def _token(app: Flask, code: str) -> dict[str, Any]:
    """Ask the token API for the connection's access token."""
    answer = app.test_client().post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return body


def _connection(app: Flask, tenant_id: str) -> Connection:
    """Return the person's connection in a tenant."""
    with app.app_context():
        found = db.session.scalars(
            db.select(Connection).where(
                Connection.username == PERSON, Connection.tenant_id == tenant_id
            )
        ).one()
        db.session.expunge(found)
        return found


def test_a_guest_connects_to_the_resource_tenant_chosen_on_the_authenticate_page(
    app: Flask, entra: Emulator, web: Web
) -> None:
    contoso, fabrikam = _tenant(entra, "contoso.test"), _tenant(entra, "fabrikam.test")
    _grant(entra, app, "contoso.test")
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 60})
    auth_uri = web.authenticate(
        "onedrive", account_type="work", tenant_choice="guest", domain_hint="Contoso.test"
    )
    assert f"/{contoso}/oauth2/v2.0/authorize" in auth_uri and "domain_hint" not in auth_uri
    page, code = _code_page(web, auth_uri)
    assert "This connection reads the data of contoso.test (you are a guest there)" in page
    assert "your own organization's data (fabrikam.test)" in page
    row = _connection(app, contoso)  # bound to the resource tenant, as the guest object
    assert row.authority_tenant == contoso and row.oid == _oid(entra, GUEST_UPN)
    assert row.home_account_id == f"{_oid(entra, PERSON)}.{fabrikam}"
    claims = jwt.decode(_token(app, code)["access_token"], options={"verify_signature": False})
    assert claims["tid"] == contoso and claims["acct"] == 1
    entra.control("DELETE", "/_emulator/requests")
    _token(app, code)  # a 60-second token is due at once (pitfall 9): a refresh at Contoso
    refreshes = entra.request_log(endpoint="token", grant_type="refresh_token")
    assert [r["username"] for r in refreshes] == [GUEST_UPN]
    check = web.page("/connectors/onedrive?check=1")
    assert "Approved for your organization" not in check  # no portal record, only Entra's grant
    listed = html.unescape(re.sub(r"<[^>]+>", "", web.page("/connections")))
    assert "Guest in contoso.test: reads that organization's data" in listed


def test_the_person_finds_and_manages_a_guest_connection_after_signing_in_at_home(
    app: Flask, entra: Emulator, web: Web
) -> None:
    contoso = _tenant(entra, "contoso.test")
    _grant(entra, app, "contoso.test")
    auth_uri = web.authenticate(
        "onedrive", account_type="work", tenant_choice="guest", domain_hint="contoso.test"
    )
    _page, code = _code_page(web, auth_uri)
    guest_row = _connection(app, contoso)
    home = Web.person(app, entra, PERSON)
    home.sign_in()  # the portal session of the home account, in Fabrikam
    assert contoso not in home.page("/account")
    listed = html.unescape(re.sub(r"<[^>]+>", "", home.page("/connections")))
    assert "OneDrive" in listed and "Guest in contoso.test" in listed
    # Another Fabrikam account sees nothing of it and cannot act on it.
    stranger = Web.person(app, entra, "admin@fabrikam.test")
    stranger.sign_in()
    assert "Guest in contoso.test" not in stranger.page("/connections")
    denied = stranger.post(f"/connections/{guest_row.id}/revoke", "/connections")
    assert denied.status_code == 404
    _token(app, code)  # still live
    # The person revokes it from home: the code stops working.
    page = f"/connections/{guest_row.id}/revoke"
    assert "Revoke" in home.page(page)
    assert home.post(page, page).status_code == 303
    assert _connection(app, contoso).status == "revoked"
    answer = app.test_client().post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    assert answer.status_code == 401


def test_the_same_person_still_connects_to_their_home_tenant_by_default(
    app: Flask, entra: Emulator, web: Web
) -> None:
    fabrikam = _tenant(entra, "fabrikam.test")
    page, _code = _code_page(web, web.authenticate("onedrive", account_type="work"))
    assert "This connection reads your organization's data (fabrikam.test)." in page
    row = _connection(app, fabrikam)
    assert row.authority_tenant == "organizations" and row.oid == _oid(entra, PERSON)


def test_a_domain_hint_preselects_the_guest_choice_and_a_wrong_domain_is_explained(
    entra: Emulator, web: Web
) -> None:
    page = web.page("/connectors/sharepoint?domain_hint=contoso.test")
    assert 'value="guest" checked' in page and 'value="contoso.test"' in page
    assert 'value="home" checked' in web.page("/connectors/sharepoint")
    form = {"csrf_token": web.csrf("/connectors/sharepoint"), "tenant_choice": "guest"}
    unknown = web.client.post(
        "/connectors/sharepoint/authenticate", data=form | {"domain_hint": "nobody.test"}
    )
    text = unknown.get_data(as_text=True)
    assert unknown.status_code == 400 and "doesn&#39;t know an organization" in text
    assert 'aria-invalid="true"' in text and "nobody.test" in text
    empty = web.client.post("/connectors/sharepoint/authenticate", data=form | {"domain_hint": ""})
    assert empty.status_code == 400 and "Type the domain" in empty.get_data(as_text=True)


def test_a_helpdesk_link_for_a_tenant_domain_lets_the_guest_connect_there(
    app: Flask, entra: Emulator, web: Web
) -> None:
    contoso = _tenant(entra, "contoso.test")
    _grant(entra, app, "contoso.test")
    with app.app_context():
        made = extensions.links().create(
            db.session, kind="authenticate", created_by="helpdesk@contoso.test", tenant_id=contoso,
            scope=None, connector="onedrive", login_hint=PERSON, tenant="contoso.test",
        )  # fmt: skip
        db.session.commit()
    path = "/l/" + made.url.rsplit("/l/", 1)[1]
    answer = web.client.post(path, data={"csrf_token": web.csrf(path)})
    assert answer.status_code == 303
    assert f"/{contoso}/oauth2/v2.0/authorize" in answer.headers["Location"]
    page, _code = _code_page(web, answer.headers["Location"])
    assert "reads the data of contoso.test (you are a guest there)" in page
    assert _connection(app, contoso).oid == _oid(entra, GUEST_UPN)


def test_a_guest_turned_away_asks_the_resource_tenants_admins_and_reconnects_there(
    app: Flask, entra: Emulator
) -> None:
    contoso = _tenant(entra, "contoso.test")
    web = Web.person(app, entra, PERSON)  # keeps Entra's cookies: the quiet trip needs none
    web.sign_in()  # signed in to the portal at home (Fabrikam) first
    auth_uri = web.authenticate("sharepoint", tenant_choice="guest", domain_hint="contoso.test")
    blocked = web.callback(web.entra_answer(auth_uri, cancel=True))  # Contoso's policy: admin
    assert blocked.status_code == 403 and "Admin approval required" in blocked.get_data(True)
    request_id = send_request(web)  # a quiet trip to Contoso's path names the guest
    found = next(r for r in rows(app, ConsentRequest) if r.id == request_id)
    assert found.tenant_id == contoso
    _grant(entra, app, "contoso.test")  # then reconnecting a guest's connection stays there
    body = {"tenant": "contoso.test", "client_id": app.config["CLIENT_ID"],
            "resource": "https://graph.microsoft.com", "scopes": ["Sites.Read.All"],
            "principal": None}  # fmt: skip
    assert entra.control("POST", "/_emulator/grants", json=body).ok
    _code_page(
        web, web.authenticate("sharepoint", tenant_choice="guest", domain_hint="contoso.test")
    )
    row = _connection(app, contoso)
    again = web.post(f"/connections/{row.id}/reconnect", "/connections")
    assert again.status_code == 303 and f"/{contoso}/oauth2" in again.headers["Location"]


def test_a_guest_signs_in_to_the_resource_tenant_and_acts_there_as_its_staff(
    app: Flask, entra: Emulator
) -> None:
    contoso = _tenant(entra, "contoso.test")
    invite = {"user": "admin@fabrikam.test", "tenant": "contoso.test",
              "roles": ["Global Administrator"],
              "app_roles": {app.config["CLIENT_ID"]: ["Helpdesk"]}}  # fmt: skip
    assert entra.control("POST", "/_emulator/guests", json=invite).status_code == 201
    with app.app_context():  # a request waiting in Contoso, and one at the admin's home
        for tenant in (contoso, _tenant(entra, "fabrikam.test")):
            who = records.Requester(f"oid-{tenant}", f"someone@{tenant}", tenant, "Reports")
            records.open_request(db.session, who, "onedrive", ["Files.Read.All"], 7)
        db.session.commit()
    admin = Web.person(app, entra, "admin@fabrikam.test")
    wrong = admin.post("/sign-in", domain_hint="nobody.test")
    assert wrong.status_code == 400 and "doesn&#39;t know an organization" in wrong.get_data(True)
    answer = admin.post("/sign-in", domain_hint="contoso.test")
    assert f"/{contoso}/oauth2/v2.0/authorize" in answer.headers["Location"]
    assert admin.callback(admin.entra_answer(answer.headers["Location"])).status_code == 303
    account = html.unescape(admin.page("/account"))
    assert contoso in account and "contoso.test: you are a guest there" in account
    console = admin.page("/admin")  # Contoso's admin console: Contoso's request only
    assert f"someone@{contoso}" in console and "someone@7a2e" not in console
    assert admin.client.get("/helpdesk").status_code == 200  # the Helpdesk role, in Contoso
    home = Web.person(app, entra, "admin@fabrikam.test")
    home.sign_in()  # without a domain: the home tenant, as before
    assert contoso not in home.page("/account")
