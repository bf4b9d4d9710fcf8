"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import free_port

EVERY_STORE = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "redis"], indirect=True)


@EVERY_STORE
def test_healthz(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in answer.headers


@EVERY_STORE
def test_readyz_when_everything_answers(client: FlaskClient, db_url: dict[str, str]) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["identity"]["ok"] is True
    assert ("redis" in body["checks"]) == bool(db_url.get("REDIS_URL"))
    assert "Set-Cookie" not in answer.headers


def test_readyz_when_the_identity_provider_is_down(make_portal: Callable[..., Flask]) -> None:
    portal = make_portal(AUTHORITY_HOST=f"https://127.0.0.1:{free_port()}")
    answer = portal.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    body = answer.get_json()
    assert body["checks"]["identity"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_readyz_when_the_database_is_down(make_portal: Callable[..., Flask]) -> None:
    url = f"postgresql+psycopg://portal@127.0.0.1:{free_port()}/portal"
    portal = make_portal(DATABASE_URL=url, DATABASE_CHECK=False)
    answer = portal.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["database"]["ok"] is False


def test_readyz_when_redis_is_down(make_portal: Callable[..., Flask]) -> None:
    portal = make_portal(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", HTTP_TIMEOUT=1)
    answer = portal.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["redis"]["ok"] is False
