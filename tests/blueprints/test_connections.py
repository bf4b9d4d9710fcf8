"""Connector pages and My connections: code once, reconnect, another account, personal accounts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.consent import records
from app.models import AuditEvent
from app.models import Connection
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.signins import CODE
from tests.signins import Web

# The production combination runs too when CI provides PostgreSQL (with Redis sessions).
pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def test_connector_list_links_every_connector(web: Web) -> None:
    page = web.client.get("/").get_data(as_text=True)
    for connector_id in ("sharepoint", "onedrive", "outlook", "dynamics", "azure-storage"):
        assert f'href="/connectors/{connector_id}"' in page


def test_unknown_connector_is_a_404_page(web: Web) -> None:
    answer = web.client.get("/connectors/nope")
    assert answer.status_code == 404 and "Page not found" in answer.get_data(as_text=True)


def test_check_access_reports_the_identity_provider(web: Web, entra: Emulator) -> None:
    page = web.client.get("/connectors/sharepoint?check=1").get_data(as_text=True)
    assert "Access check" in page and "Available" in page
    entra.control("POST", "/_emulator/faults", json={"endpoint": "discovery", "status": 503})
    page = web.client.get("/connectors/sharepoint?check=1").get_data(as_text=True)
    assert "Not reachable right now" in page


def test_code_is_shown_once(web: Web) -> None:
    answer = web.connect("onedrive", "user@fabrikam.test")
    location = answer.headers["Location"]
    code = web.code(answer)
    assert code.startswith("ccp_")
    again = web.client.get(location)
    assert again.status_code == 303
    assert code not in web.client.get("/connections").get_data(as_text=True)


def test_reconnect_with_the_same_account_keeps_the_code(web: Web, app: Flask) -> None:
    code = web.code(web.connect("onedrive", "user@fabrikam.test"))
    again = web.connect("onedrive", "user@fabrikam.test")
    assert again.status_code == 303 and again.headers["Location"] == "/connections"
    listing = web.client.get("/connections").get_data(as_text=True)
    assert "keeps working" in listing and listing.count(">Regenerate code</a>") == 1
    api = app.test_client().post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    assert api.status_code == 200


def test_reconnect_with_another_account_asks_first(web: Web, entra: Emulator, app: Flask) -> None:
    web.code(web.connect("onedrive", "user@fabrikam.test"))
    connection_id = _first_connection_id(app)
    token = web.csrf("/connections")
    start = web.client.post(f"/connections/{connection_id}/reconnect", data={"csrf_token": token})
    assert "login_hint=user%40fabrikam.test" in start.headers["Location"]
    answer = web.callback(entra.sign_in(start.headers["Location"], "admin@fabrikam.test"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "You signed in with another account" in page
    assert "user@fabrikam.test" in page and "admin@fabrikam.test" in page
    chosen = web.client.post(
        "/connections/use-other-account", data={"csrf_token": web.csrf("/connections")}
    )
    assert web.code(chosen).startswith("ccp_")
    listing = web.client.get("/connections").get_data(as_text=True)
    assert "admin@fabrikam.test" in listing


def test_reconnect_page_is_there_for_the_api_link(web: Web, app: Flask) -> None:
    web.code(web.connect("onedrive", "user@fabrikam.test"))
    connection_id = _first_connection_id(app)
    anonymous = app.test_client().get(f"/connections/{connection_id}/reconnect")
    assert anonymous.status_code == 200
    assert "Reconnect OneDrive" in anonymous.get_data(as_text=True)
    assert "user@fabrikam.test" not in anonymous.get_data(as_text=True)
    owner_page = web.client.get(f"/connections/{connection_id}/reconnect").get_data(as_text=True)
    assert "user@fabrikam.test" in owner_page
    assert app.test_client().get("/connections/not-a-connection/reconnect").status_code == 404


def test_personal_account_on_a_work_only_connector_gets_an_explanation(web: Web) -> None:
    token = web.csrf("/connectors/sharepoint")
    answer = web.client.post(
        "/connectors/sharepoint/authenticate",
        data={"csrf_token": token, "account_type": "personal"},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "This connector needs a work or school account" in page
    assert "SharePoint works only with a work or school account" in page


def test_personal_outlook_uses_the_consumers_authority(web: Web) -> None:
    auth_uri = web.authenticate("outlook", account_type="personal")
    assert "/consumers/oauth2/v2.0/authorize" in auth_uri
    answer = web.callback(web.entra.sign_in(auth_uri, "pat@outlook.test"))
    assert web.code(answer).startswith("ccp_")
    page = web.client.get("/connectors/sharepoint").get_data(as_text=True)
    assert "SharePoint needs a work or school account" in page


def test_other_peoples_connections_are_not_found(web: Web, app: Flask) -> None:
    web.code(web.connect("onedrive", "user@fabrikam.test"))
    connection_id = _first_connection_id(app)
    stranger = web.other()
    stranger.code(stranger.connect("outlook", "admin@fabrikam.test"))
    token = stranger.csrf("/connections")
    for action in ("regenerate", "revoke", "remove"):
        path = f"/connections/{connection_id}/{action}"
        assert stranger.client.get(path).status_code == 404  # not even the confirmation page
        answer = stranger.client.post(path, data={"csrf_token": token})
        assert answer.status_code == 404


def _first_connection_id(app: Flask) -> str:
    """Return the id of the only connection so far."""
    with app.app_context():
        return str(db.session.scalars(select(Connection.id)).first())


def test_refused_refresh_gives_a_working_reauthenticate_url(
    web: Web, entra: Emulator, app: Flask
) -> None:
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    code = web.code(web.connect("onedrive", "user@fabrikam.test"))
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", json={"username": "user@fabrikam.test"}
    )
    tool = app.test_client()
    refused = tool.post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"] == "reauthentication_required"
    path = urlsplit(body["reauthenticate_url"]).path
    page = web.client.get(path).get_data(as_text=True)
    assert "Reconnect OneDrive" in page and "Your sign-in to OneDrive was revoked.</strong>" in page
    start = web.client.post(path, data={"csrf_token": web.csrf(path)})
    done = web.callback(entra.sign_in(start.headers["Location"], "user@fabrikam.test"))
    assert done.status_code == 303
    again = tool.post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    assert again.status_code == 200, again.get_data(as_text=True)


def test_check_access_shows_the_tenant_consent_once_recorded(web: Web, app: Flask) -> None:
    web.code(web.connect("onedrive", "user@fabrikam.test"))
    page = web.client.get("/connectors/sharepoint?check=1").get_data(as_text=True)
    assert "Approved for your organization" not in page
    # Fabrikam lets users consent: only what is known for this tenant, no talk of defaults (#14).
    assert "Not known yet" in page and "default consent settings" not in page
    with app.app_context():
        tenant = db.session.scalars(select(Connection.tenant_id)).one()
        records.record_tenant_consent(
            db.session, tenant, "sharepoint", ["Sites.Read.All"], "admin@fabrikam.test"
        )
        db.session.commit()
    page = web.client.get("/connectors/sharepoint?check=1").get_data(as_text=True)
    assert "Approved for your organization" in page and "admin@fabrikam.test" in page


def code_on(page: TestResponse) -> str:
    """Return the connection code shown on a code page."""
    match = CODE.search(page.get_data(as_text=True))
    assert match, "no connection code on the page"
    return match.group(1)


def tool_status(app: Flask, code: str) -> int:
    """Return the token API's status for a code, as a data tool sees it."""
    answer = app.test_client().post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
    return answer.status_code


def test_revoke_asks_first_then_hides_the_row_until_removed(web: Web, app: Flask) -> None:
    code = web.code(web.connect("onedrive", "user@fabrikam.test"))
    connection_id = _first_connection_id(app)
    path = f"/connections/{connection_id}/revoke"
    page = web.page(path)
    assert "Revoke the OneDrive connection?" in page and "loses access to OneDrive" in page
    assert 'href="/connections">Cancel</a>' in page
    assert tool_status(app, code) == 200  # showing the question changed nothing
    assert web.client.post(path).status_code == 400  # a POST without CSRF does nothing either
    assert tool_status(app, code) == 200
    done = web.post(path, path)
    assert done.status_code == 303 and done.headers["Location"] == "/connections"
    assert tool_status(app, code) == 401
    listing = web.page("/connections")
    assert "was revoked" in listing and "Show revoked (1)" in listing
    assert connection_id not in listing  # the revoked row is hidden
    shown = web.page("/connections?show=revoked")
    assert "Revoked connections" in shown and f"/connections/{connection_id}/remove" in shown
    assert "Remove the revoked OneDrive connection?" in web.page(
        f"/connections/{connection_id}/remove"
    )
    removed = web.post(f"/connections/{connection_id}/remove", "/connections?show=revoked")
    assert removed.status_code == 303
    assert "Show revoked" not in web.page("/connections")
    with app.app_context():
        assert db.session.get(Connection, connection_id) is None
        kept = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.target == connection_id)
        ).all()
    assert {"connection.created", "connection.revoked", "connection.removed"} <= set(kept)


def test_regenerate_asks_first_and_says_the_old_code_stopped(web: Web, app: Flask) -> None:
    first = web.client.get(web.connect("onedrive", "user@fabrikam.test").headers["Location"])
    assert "stopped working" not in first.get_data(as_text=True)  # a new connection: no old code
    code = code_on(first)
    path = f"/connections/{_first_connection_id(app)}/regenerate"
    page = web.page(path)
    assert "Regenerate the OneDrive code?" in page and "stops working the moment" in page
    assert tool_status(app, code) == 200
    answer = web.post(path, path)
    assert answer.status_code == 303
    shown = web.client.get(answer.headers["Location"])
    assert "The old code stopped working just now." in shown.get_data(as_text=True)
    new_code = code_on(shown)
    assert tool_status(app, code) == 401 and tool_status(app, new_code) == 200


def test_a_live_connection_cannot_be_removed_and_a_revoked_one_not_revoked_again(
    web: Web, app: Flask
) -> None:
    code = web.code(web.connect("onedrive", "user@fabrikam.test"))
    connection_id = _first_connection_id(app)
    remove = f"/connections/{connection_id}/remove"
    refused = web.post(remove, "/connections")
    assert refused.status_code == 303
    assert "Revoke it before removing it" in web.page("/connections")
    assert tool_status(app, code) == 200
    web.post(f"/connections/{connection_id}/revoke", "/connections")
    for action in ("revoke", "regenerate"):
        again = web.client.get(f"/connections/{connection_id}/{action}")
        assert again.status_code == 409 and "was revoked" in again.get_data(as_text=True)


def test_reconnect_as_an_account_that_has_one_renews_it_instead_of_adding_a_row(
    web: Web, entra: Emulator, app: Flask, connect: Any
) -> None:
    web.code(web.connect("onedrive", "user@fabrikam.test"))
    mine_id = _first_connection_id(app)
    _, their_code = connect("onedrive", "admin@fabrikam.test")
    assert their_code is not None
    start = web.post(f"/connections/{mine_id}/reconnect", "/connections")
    answer = web.callback(entra.sign_in(start.headers["Location"], "admin@fabrikam.test"))
    page = answer.get_data(as_text=True)
    assert "Renew the OneDrive connection of admin@fabrikam.test" in page
    assert "no second connection is added" in page and "as a separate connection" not in page
    chosen = web.post("/connections/use-other-account", "/connections")
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/connections"
    with app.app_context():
        assert len(db.session.scalars(select(Connection.id)).all()) == 2
    assert tool_status(app, their_code) == 200
