"""Sessions at rest and anonymous growth: the red-team findings 4 and 5 of issue 16 (C51-C53)."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path
from typing import cast
from urllib.parse import urlencode

import pytest
import redis
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from app import create_app
from app.models import AuditEvent
from app.models import HelpdeskLink
from app.models import ServerSession
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.signins import Web

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "redis"], indirect=True)


def session_rows(app: Flask) -> list[ServerSession]:
    """Return the rows of the sessions table."""
    with app.app_context():
        return list(db.session.scalars(select(ServerSession)))


def prefix(app: Flask) -> str:
    """Return the store's key prefix (in Redis, one of this test's own)."""
    return str(app.session_interface.inner.key_prefix)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def own_prefix(app: Flask) -> None:
    """Give this test's Redis sessions a prefix of their own: other runs share the database."""
    if app.config["SESSION_TYPE"] == "redis":
        app.session_interface.inner.key_prefix = f"ccp:t{secrets.token_hex(6)}:"  # type: ignore[attr-defined]


def stored(app: Flask) -> list[tuple[str, bytes]]:
    """Return the sessions this test stored (key, data), from Redis or the sessions table."""
    if app.config["SESSION_TYPE"] == "redis":
        client = redis.Redis.from_url(app.config["REDIS_URL"])
        keys = list(client.scan_iter(f"{prefix(app)}*"))
        return [(key.decode(), cast(bytes, client.get(key) or b"")) for key in keys]
    return [(str(row.session_id), bytes(row.data or b"")) for row in session_rows(app)]


def cookie(web: Web) -> str:
    """Return the browser's session cookie value."""
    found = web.client.get_cookie("ccp_session")
    assert found is not None
    return found.value


def test_c51_no_cookie_value_and_no_flow_secret_at_rest(web: Web, app: Flask) -> None:
    web.sign_in()
    auth_uri = web.authenticate()  # a pending flow: state, nonce and PKCE verifier in the session
    value = cookie(web)
    state = web.state_of(auth_uri)
    everything = stored(app)
    assert everything, "the signed-in session is stored"
    for key, data in everything:
        assert value not in key
        assert value.encode() not in data
        assert state.encode() not in data and b"code_verifier" not in data
        assert b"user@fabrikam.test" not in data


def test_c51_a_stolen_store_key_is_not_a_cookie(web: Web, app: Flask) -> None:
    web.sign_in()
    key, _ = next(item for item in stored(app))
    thief = app.test_client()
    thief.set_cookie("ccp_session", key.removeprefix(prefix(app)))
    answer = thief.get("/connections")
    assert answer.status_code in (302, 303) and "/sign-in" in answer.headers["Location"]


def test_c52_anonymous_page_views_add_no_session(app: Flask) -> None:
    before = len(stored(app))
    for _ in range(250):
        assert app.test_client().get("/sign-in").status_code == 200
        assert app.test_client().get("/connectors/onedrive").status_code == 200
    assert len(stored(app)) == before


def test_c52_anonymous_forms_keep_csrf(web: Web, app: Flask, entra: Emulator) -> None:
    assert web.client.post("/sign-in").status_code == 400  # no token: refused
    assert web.client.post("/sign-in", data={"csrf_token": "forged"}).status_code == 400
    forged = app.test_client()
    forged.set_cookie("ccp_session", "eyJhIjoiYiJ9.forged-signature")
    token = web.csrf("/sign-in")
    assert forged.post("/sign-in", data={"csrf_token": token}).status_code == 400
    assert stored(app) == []
    web.sign_in()  # the token from an anonymous page works, and the session is stored from then
    assert len(stored(app)) == 1


def test_c53_forged_failed_callbacks_collapse_into_one_counter(web: Web, app: Flask) -> None:
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    description = "AADSTS50020: <script>evil</script> call +1-555-attacker"
    for _ in range(20):
        answer = web.post("/sign-in")
        state = web.state_of(answer.headers["Location"])
        query = urlencode(
            {"state": state, "error": "access_denied", "error_description": description}
        )
        assert web.client.get(f"/auth/callback?{query}").status_code in (400, 403)
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.id > before)))
    assert len(rows) == 1
    assert rows[0].action == "flow.failed.anonymous" and rows[0].detail["count"] == "20"
    assert all("attacker" not in str(row.detail) and "evil" not in str(row.detail) for row in rows)


def test_an_own_tenant_helpdesk_cannot_make_a_link_for_another_tenants_person(
    app: Flask, web: Web
) -> None:
    web.sign_in("helpdesk@contoso.test")  # the Helpdesk app role: contoso only
    token = web.csrf("/helpdesk")
    form = {"kind": "authenticate", "connector": "onedrive", "days": "7", "csrf_token": token}
    refused = web.client.post(
        "/helpdesk/links", data=form | {"login_hint": "user@fabrikam.test"}, follow_redirects=True
    )
    assert "someone in your own organization" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(HelpdeskLink)).first() is None
    made = web.client.post("/helpdesk/links", data=form | {"login_hint": "user@contoso.test"})
    assert made.status_code == 303


def test_the_sqlite_file_and_the_instance_folder_are_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "owner-only"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # an existing, too open folder is narrowed too
    portal = create_app({"TESTING": True, "INSTANCE_PATH": str(folder), "IDENTITY_CHECK": False})
    database = folder / "portal.db"
    assert portal.config["DATABASE_URL"] == f"sqlite:///{database}"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for companion in (folder / "portal.db-wal", folder / "portal.db-shm"):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) & 0o077 == 0
