"""C44: Redis evicts the session holding a pending flow partway through sign-in."""

from __future__ import annotations

import secrets

import pytest
import redis
from flask import Flask

from tests.signins import Web

pytestmark = pytest.mark.parametrize("db_url", ["redis"], indirect=True)  # CI sets the URL


@pytest.fixture
def store(app: Flask) -> redis.Redis:
    """Give this test's sessions a Redis prefix of its own and return the Redis client."""
    prefix = f"ccp:t{secrets.token_hex(6)}:"
    app.session_interface.inner.key_prefix = prefix  # type: ignore[attr-defined]
    return redis.Redis.from_url(app.config["REDIS_URL"])


def evict(app: Flask, client: redis.Redis) -> int:
    """Delete this test's session keys, as an eviction under maxmemory would; return how many."""
    prefix = app.session_interface.inner.key_prefix  # type: ignore[attr-defined]
    keys = list(client.scan_iter(f"{prefix}*"))
    return int(client.delete(*keys)) if keys else 0


def expired_page(answer: object) -> str:
    """Return the page of an answer that must be the 'sign-in expired' one."""
    text = answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert answer.status_code == 400, text  # type: ignore[attr-defined]
    assert "Sign-in expired" in text and "Start again" in text
    assert "Traceback" not in text
    return str(text)


def test_c44_an_evicted_sign_in_flow_says_start_again(
    web: Web, app: Flask, store: redis.Redis
) -> None:
    start = web.post("/sign-in")
    assert start.status_code == 303
    assert evict(app, store) == 1  # the session holding the pending flow
    back = web.callback(web.entra.sign_in(start.headers["Location"], web.username))
    expired_page(back)
    web.sign_in()  # starting again works
    assert web.client.get("/connections").status_code == 200


def test_c44_an_evicted_connect_flow_says_start_again_and_stores_nothing(
    web: Web, app: Flask, store: redis.Redis
) -> None:
    web.sign_in()
    auth_uri = web.authenticate("onedrive")
    assert evict(app, store) == 1
    url = web.entra.sign_in(auth_uri, web.username, accept=True, session=web.entra_session)
    expired_page(web.callback(url))
    assert web.client.get("/connections").status_code in (302, 303)  # signed out with it
    web.sign_in()
    assert "OneDrive" not in web.page("/connections")  # no connection was made from it
