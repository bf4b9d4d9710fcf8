"""The access trail: each read by a tool counted per code, address, agent and hour; pruned."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from app.models import AccessTrail
from app.models import utcnow
from app.platform import extensions
from app.tokens import trail
from app.tokens.trail import Caller
from app.tokens.trail import Trail
from entra_emulator import Emulator
from tests.blueprints.test_helpdesk import grant_onedrive_in_contoso
from tests.conftest import ALL_BACKENDS
from tests.signins import Web

pytestmark = ALL_BACKENDS
AGENT = {"User-Agent": "nightly-sync/2.1"}


def bearer(code: str, **more: str) -> dict[str, str]:
    """Return the Authorization header for a code, with any other headers."""
    return {"Authorization": f"Bearer {code}"} | more


def rows(app: Flask) -> list[AccessTrail]:
    """Return every trail row, flushed first, oldest first."""
    with app.app_context():
        extensions.trail().flush()
        with extensions.session_factory() as db:
            return list(db.scalars(select(AccessTrail).order_by(AccessTrail.id)))


def test_each_kind_of_read_is_counted_with_code_hash_address_and_agent(
    client: FlaskClient, connect: Any, app: Flask
) -> None:
    connection_id, code = connect()
    for _ in range(3):
        assert client.post("/api/v1/token", headers=bearer(code, **AGENT)).status_code == 200
    assert client.get("/api/v1/connection", headers=bearer(code, **AGENT)).status_code == 200
    path = "/api/v1/proxy/v1.0/me/drive/root/children"
    proxied = client.get(path, headers=bearer(code, **AGENT))
    assert proxied.status_code == 200
    assert client.post("/api/v1/token", headers=bearer("ccp_" + "x" * 43)).status_code == 401
    with app.app_context():
        short = extensions.vault().hash_code(code)[:12]
    found = {r.what: r for r in rows(app)}  # the unknown code's 401 records nothing
    assert {what: r.count for what, r in found.items()} == {"token": 3, "connection": 1, "proxy": 1}
    for row in found.values():
        assert row.agent == AGENT["User-Agent"]
        assert row.connection_id == connection_id
        assert row.code == short and code not in row.code
        assert row.address == "127.0.0.1"
        assert row.hour == row.hour.replace(minute=0, second=0, microsecond=0)


def test_a_busy_tool_writes_its_row_once_a_period_and_loses_no_count(
    client: FlaskClient, connect: Any, app: Flask
) -> None:
    _, code = connect()
    for _ in range(20):
        assert client.post("/api/v1/token", headers=bearer(code, **AGENT)).status_code == 200
    with app.app_context(), extensions.session_factory() as db:
        written = db.scalars(select(AccessTrail)).all()
    assert [r.count for r in written] == [1]  # the first read at once, the others held
    assert [r.count for r in rows(app)] == [20]  # and added at the next write


def test_a_spoofed_forwarded_for_is_not_recorded_as_the_address(
    client: FlaskClient, connect: Any, app: Flask
) -> None:
    _, code = connect()
    headers = bearer(code, **{"X-Forwarded-For": "203.0.113.7"})
    assert client.post("/api/v1/token", headers=headers).status_code == 200
    assert [r.address for r in rows(app)] == ["127.0.0.1"]  # no trusted proxy: the peer


def test_concurrent_writers_lose_no_count_and_raise_nothing(app: Flask) -> None:
    with app.app_context():
        engine = extensions.db.engine
    # Two trails stand for two processes; period 0 makes every hit an upsert of its own.
    trails = [Trail(lambda: engine, period=0), Trail(lambda: engine, period=0)]
    failures: list[BaseException] = []

    def hammer(mine: Trail) -> None:
        try:
            for _ in range(25):
                mine.hit("c-1", "abcdef0123456789", Caller("192.0.2.1", "tool", "token"))
        except BaseException as error:  # noqa: BLE001 - the assertion below shows it
            failures.append(error)

    threads = [threading.Thread(target=hammer, args=(trails[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for mine in trails:
        mine.flush()  # whatever a locked database sent back to pending
    assert failures == []
    with app.app_context(), extensions.session_factory() as db:
        total = db.scalar(select(func.sum(AccessTrail.count)))
        count = db.scalar(select(func.count()).select_from(AccessTrail))
    assert (total, count) == (100, 1)


def test_the_trail_is_pruned_after_the_configured_days(
    client: FlaskClient, connect: Any, app: Flask
) -> None:
    _, code = connect()
    assert client.post("/api/v1/token", headers=bearer(code, **AGENT)).status_code == 200
    assert len(rows(app)) == 1
    with app.app_context(), extensions.session_factory() as db:
        old = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=91)
        fields = {"code": "0" * 12, "address": "192.0.2.1", "agent": "old", "what": "token"}
        db.add(
            AccessTrail(
                connection_id="gone", hour=old, count=5, first_at=old, last_at=old, **fields
            )
        )
        db.commit()
    result = app.test_cli_runner().invoke(args=["jobs", "prune-trail"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 access-trail row(s) older than 90 day(s)" in result.output
    assert [r.agent for r in rows(app)] == [AGENT["User-Agent"]]  # this hour's row stays


def test_a_helpdesk_probe_is_not_a_tool_read(app: Flask, connect: Any) -> None:
    connection_id, _ = connect()
    with app.app_context():
        extensions.broker().connection_token(connection_id)
    assert rows(app) == []


def test_latest_gives_each_connection_its_newest_read(app: Flask, connect: Any) -> None:
    first, _ = connect("onedrive")
    second, _ = connect("outlook")
    with app.app_context():
        engine = extensions.db.engine
    recorder = Trail(lambda: engine, period=0)
    recorder.hit(first, "a" * 12, Caller("192.0.2.1", "old-tool", "token"))
    recorder.hit(first, "a" * 12, Caller("192.0.2.2", "new-tool", "proxy"))
    recorder.hit(second, "b" * 12, Caller("192.0.2.3", "other", "token"))
    with app.app_context(), extensions.session_factory() as db:
        newest = trail.latest(db, [first, second, "none-such"])
    assert {k: (v.agent, v.address) for k, v in newest.items()} == {
        first: ("new-tool", "192.0.2.2"),
        second: ("other", "192.0.2.3"),
    }


def test_the_connection_page_says_who_used_it_last_from_where(web: Web, app: Flask) -> None:
    code = web.code(web.connect("onedrive", "user@fabrikam.test"))
    assert "by nightly" not in web.page("/connections")
    answer = web.client.post("/api/v1/token", headers=bearer(code, **AGENT))
    assert answer.status_code == 200
    page = web.page("/connections")
    assert "by nightly-sync/2.1 from 127.0.0.1" in page


def test_helpdesk_and_admins_see_the_trail_of_their_tenant_only(
    app: Flask, entra: Emulator, connect: Any, client: FlaskClient, person: Any
) -> None:
    grant_onedrive_in_contoso(app, entra)
    _, ours = connect("onedrive", "user@contoso.test")
    _, theirs = connect("onedrive", "user@fabrikam.test")
    assert client.post("/api/v1/token", headers=bearer(ours, **AGENT)).status_code == 200
    other = {"User-Agent": "fabrikam-tool/1"}
    assert client.post("/api/v1/token", headers=bearer(theirs, **other)).status_code == 200
    with app.app_context():
        short = extensions.vault().hash_code(ours)[:12]
    helpdesk = person("helpdesk@contoso.test")
    helpdesk.sign_in()
    lookup = helpdesk.page("/helpdesk/users?q=user@contoso.test")
    assert "Access trail" in lookup and "nightly-sync/2.1" in lookup and short in lookup
    assert "fabrikam-tool" not in lookup
    admin = person("admin@contoso.test")
    admin.sign_in()
    assert "Access trail" in admin.page("/admin")
    trail_page = admin.page("/admin/access")
    assert "nightly-sync/2.1" in trail_page and "user@contoso.test" in trail_page
    assert short in trail_page and "127.0.0.1" in trail_page
    assert "fabrikam-tool" not in trail_page and "user@fabrikam.test" not in trail_page
    user = person("user@contoso.test")
    user.sign_in()
    assert user.client.get("/admin/access").status_code == 403
