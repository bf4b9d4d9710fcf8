"""The token broker: cache hits, refreshes, refused and failing refreshes, one refresh at a time."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask

from app.errors import ConnectionDamaged
from app.errors import InvalidToken
from app.errors import ReauthenticationRequired
from app.errors import ScopeNotAllowed
from app.errors import TemporarilyUnavailable
from app.platform import extensions
from app.tokens.refresh_slots import RefreshSlots
from entra_emulator import Emulator

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "redis"], indirect=True)
FILES = "https://graph.microsoft.com/Files.Read.All"


def token(app: Flask, code: str, scopes: list[str] | None = None) -> dict[str, Any]:
    """Call the broker inside the app."""
    with app.app_context():
        return extensions.broker().access_token(code, scopes)


def refreshes(entra: Emulator) -> int:
    """Return how many refresh-token grants the emulator has seen."""
    return len(entra.request_log(endpoint="token", grant_type="refresh_token"))


def expired_connection(entra: Emulator, connect: Any, **kw: Any) -> tuple[str, str]:
    """Connect with a 1-second access token, then restore normal lifetimes."""
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    connection_id, code = connect(**kw)
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    entra.control("DELETE", "/_emulator/requests")
    return connection_id, code


def test_a_cached_token_needs_no_upstream_call(app: Flask, entra: Emulator, connect: Any) -> None:
    connection_id, code = connect()
    entra.control("DELETE", "/_emulator/requests")
    first = token(app, code)
    second = token(app, code)
    assert first["access_token"] == second["access_token"]
    assert first["token_type"] == "Bearer"
    assert first["scope"] == FILES
    assert first["connector"] == "onedrive"
    assert first["account"]["username"] == "user@fabrikam.test"
    assert first["expires_at"] > time.time() + 3000
    assert entra.request_log(endpoint="token") == []


def test_an_expired_token_is_refreshed_once_and_stored(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, code = expired_connection(entra, connect)
    before = read_row(connection_id)
    fresh = token(app, code)
    assert refreshes(entra) == 1
    after = read_row(connection_id)
    assert after.cache_version == before.cache_version + 1
    assert after.sealed_cache != before.sealed_cache
    assert after.last_refresh_at is not None
    assert after.last_used_at == after.last_refresh_at  # one write records both
    assert token(app, code)["access_token"] == fresh["access_token"]
    assert refreshes(entra) == 1  # the refreshed token now comes from the cache


def test_a_revoked_refresh_token_needs_reauthentication(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, code = expired_connection(entra, connect)
    entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", json={"username": "user@fabrikam.test"}
    )
    before = read_row(connection_id)
    with pytest.raises(ReauthenticationRequired) as caught:
        token(app, code)
    assert caught.value.reauthenticate_url == (
        f"{app.config['PUBLIC_URL']}/connections/{connection_id}/reconnect"
    )
    after = read_row(connection_id)
    assert after.status == "reauthentication_required"
    assert after.sealed_cache == before.sealed_cache  # the row and its tokens are kept (C29)
    assert after.last_error_code
    calls = refreshes(entra)
    with pytest.raises(ReauthenticationRequired):
        token(app, code)
    assert refreshes(entra) == calls  # a flagged connection does not hammer Entra


def test_an_upstream_failure_leaves_the_row_unchanged(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, code = expired_connection(entra, connect)
    before = read_row(connection_id)
    entra.control(
        "POST", "/_emulator/faults", json={"endpoint": "token", "status": 503, "retry_after": 2}
    )
    with pytest.raises(TemporarilyUnavailable) as caught:
        token(app, code)
    assert caught.value.retry_after == 2
    after = read_row(connection_id)
    assert (after.sealed_cache, after.key_id, after.cache_version, after.status) == (
        before.sealed_cache, before.key_id, before.cache_version, before.status,
    )  # fmt: skip


def test_unknown_malformed_and_revoked_codes_look_the_same(
    app: Flask, entra: Emulator, connect: Any
) -> None:
    connection_id, code = connect()
    with app.app_context():
        extensions.connection_store().revoke(connection_id)
        unknown = extensions.vault().new_code()
    for bad in (code, unknown, "ccp_short", "", "x" * 10_000):
        with pytest.raises(InvalidToken) as caught:
            token(app, bad)
        assert caught.value.api_body() == InvalidToken().api_body()


def test_unknown_codes_cost_a_decryption_like_valid_ones(
    app: Flask, entra: Emulator, connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection_id, code = connect()
    with app.app_context():
        vault = extensions.vault()
        extensions.connection_store().revoke(connect("outlook")[0])
        unknown = vault.new_code()
    opened: list[str] = []
    real = vault.open

    def counting(connection: str, key_id: str, blob: bytes) -> bytes:
        opened.append(connection)
        return real(connection, key_id, blob)

    monkeypatch.setattr(vault, "open", counting)
    token(app, code)
    assert opened == [connection_id]
    for bad in (unknown, "ccp_short", "x" * 10_000):
        opened.clear()
        with pytest.raises(InvalidToken):
            token(app, bad)
        assert len(opened) == 1  # the decoy cache: the same work as a live code (C24)
        assert connection_id not in opened


def test_a_refresh_without_a_free_slot_answers_503(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, code = expired_connection(entra, connect)
    before = read_row(connection_id)
    with app.app_context():
        broker = extensions.broker()
    broker._slots = RefreshSlots(1, wait=0.05)
    with broker._slots.hold():  # another refresh holds this worker's only slot
        with pytest.raises(TemporarilyUnavailable) as caught:
            token(app, code)
    assert caught.value.retry_after == 1
    assert refreshes(entra) == 0
    assert read_row(connection_id).cache_version == before.cache_version
    assert token(app, code)["access_token"]
    assert refreshes(entra) == 1


def test_revoke_erases_the_tokens(app: Flask, entra: Emulator, connect: Any, read_row: Any) -> None:
    connection_id, code = connect()
    with app.app_context():
        extensions.connection_store().revoke(connection_id)
    gone = read_row(connection_id)
    assert gone.status == "revoked"
    assert gone.sealed_cache == b""
    assert gone.code_hash is None


def test_regenerate_replaces_the_code(app: Flask, entra: Emulator, connect: Any) -> None:
    connection_id, old = connect()
    with app.app_context():
        new = extensions.connection_store().regenerate_code(connection_id)
    with pytest.raises(InvalidToken):
        token(app, old)
    assert token(app, new)["connector"] == "onedrive"


def test_a_sharepoint_code_never_gets_another_resource(
    app: Flask, entra: Emulator, connect: Any
) -> None:
    _, code = connect("sharepoint", "admin@fabrikam.test")
    entra.control("DELETE", "/_emulator/requests")
    for scope in (
        "https://storage.azure.com/user_impersonation",
        "https://graph.microsoft.com/Mail.Read",
        "https://contoso.crm.dynamics.com/user_impersonation",
    ):
        with pytest.raises(ScopeNotAllowed):
            token(app, code, [scope])
    assert entra.request_log(endpoint="token") == []  # refused before any upstream call (C27)
    assert token(app, code)["scope"] == "https://graph.microsoft.com/Sites.Read.All"


def test_reconnecting_keeps_the_connection_and_its_code(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, code = expired_connection(entra, connect)
    entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", json={"username": "user@fabrikam.test"}
    )
    with pytest.raises(ReauthenticationRequired):
        token(app, code)
    again_id, again_code = connect()
    assert (again_id, again_code) == (connection_id, None)
    assert read_row(connection_id).status == "active"
    assert token(app, code)["connector"] == "onedrive"


def test_a_damaged_blob_is_reported_not_used(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    from sqlalchemy import update

    from app.models import Connection

    connection_id, code = connect()
    damaged = bytearray(read_row(connection_id).sealed_cache)
    damaged[-1] ^= 1
    with app.app_context(), extensions.session_factory() as db, db.begin():
        db.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(sealed_cache=bytes(damaged))
        )
    with pytest.raises(ConnectionDamaged):
        token(app, code)


def test_twenty_concurrent_callers_cause_one_refresh(
    app: Flask, entra: Emulator, connect: Any, read_row: Any
) -> None:
    connection_id, code = expired_connection(entra, connect)
    barrier = threading.Barrier(20)
    results: list[str] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            results.append(token(app, code)["access_token"])
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 20
    assert len(set(results)) == 1
    assert refreshes(entra) == 1
    assert read_row(connection_id).cache_version == 2
