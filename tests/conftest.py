"""Shared fixtures: one Entra emulator per run (reset per test), apps on SQLite or PostgreSQL."""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import STDOUT
from subprocess import Popen
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote
from urllib.parse import quote_plus

import pytest
from flask import Flask
from flask.testing import FlaskClient

from entra_emulator import Emulator
from entra_emulator import serve
from tests.signins import People
from tests.signins import Web
from tests.signins import connect_account

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from app.models import Connection

TEST_PG = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
TEST_REDIS = os.environ.get("PORTAL_TEST_REDIS_URL", "")
# Generous limits so that a long run from one address never trips them by accident.
UNLIMITED = {"RATELIMIT_TOKEN": "100000/minute", "RATELIMIT_IP": "100000/minute"}


@pytest.fixture(scope="session")
def entra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Run one Entra emulator over TLS for the whole test session."""
    with serve(port=0, http_port=0, state_dir=tmp_path_factory.mktemp("entra")) as emu:
        yield emu


@pytest.fixture
def entra(entra_server: Emulator) -> Emulator:
    """Return the emulator, reset to the demo world for this test."""
    entra_server.reset()
    return entra_server


def require_service(url: str, variable: str, what: str) -> str:
    """Return a test service's URL; skip without it, but fail in CI, which always sets it."""
    if not url:
        message = f"set {variable} to {what}"
        if os.environ.get("CI") == "true":  # .ci/run exports it: a skip would hide a gap
            pytest.fail(f"CI must {what}, but {variable} is not set")
        pytest.skip(message)
    return url


def fresh_address() -> str:
    """Return a client address no other test uses: Redis keeps limits between runs for a minute.

    Drawn from 198.18.0.0/15 (RFC 2544's benchmarking range, 131,072 addresses), so that the
    dozens of addresses one run sprays against the shared Redis limiter do not collide.
    """
    return f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


# Modules that must pass on every store say: pytestmark = ALL_BACKENDS
BACKENDS = ["sqlite", "postgresql", "redis"]
ALL_BACKENDS = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Yield database (and session store) settings: SQLite, PostgreSQL, or SQLite with Redis."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield {"DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}"}
    elif backend == "redis":
        redis_url = require_service(TEST_REDIS, "PORTAL_TEST_REDIS_URL", "run with Redis sessions")
        forget_refresh_paces(redis_url)
        yield {"DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}", "REDIS_URL": redis_url}
    else:
        pg_url = require_service(TEST_PG, "PORTAL_TEST_DATABASE_URL", "run on PostgreSQL")
        with postgres_schema(pg_url) as url:
            settings = {"DATABASE_URL": url}
            if TEST_REDIS:
                settings["REDIS_URL"] = TEST_REDIS
                forget_refresh_paces(TEST_REDIS)
            yield settings


def forget_refresh_paces(redis_url: str) -> None:
    """Drop the tenants' refresh paces: a test's Retry-After must not hold the next test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter("ccp:refresh-pace:*"))
    if keys:
        client.delete(*keys)


class postgres_schema:  # noqa: N801 - used as a context manager like a function
    """Create a throwaway schema and point the URL's search_path at it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schema = f"t_{secrets.token_hex(6)}"

    def __enter__(self) -> str:
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(self.base_url)
        with self.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{self.schema}"'))
        joiner = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{joiner}options=-csearch_path%3D{self.schema}"

    def __exit__(self, *_: object) -> None:
        import sqlalchemy

        with self.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.engine.dispose()


def make_app(tmp_path: Path, settings: dict[str, Any]) -> Flask:
    """Build a portal app whose instance folder is under tmp_path."""
    from app import create_app

    base = {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")} | UNLIMITED
    return create_app(base | settings)


@pytest.fixture
def app(tmp_path: Path, db_url: dict[str, str], entra: Emulator) -> Iterator[Flask]:
    """Return a portal app wired to the emulator."""
    portal = make_app(tmp_path, dict(entra.portal_settings()) | db_url)
    yield portal
    dispose(portal)


def dispose(portal: Flask) -> None:
    """Stop the app's sender thread, then close its database connections (schemas go next)."""
    from app.platform.extensions import db
    from app.platform.extensions import notifier

    with portal.app_context():
        notifier().stop()
        db.engine.dispose()


@pytest.fixture
def make_portal(tmp_path: Path, entra: Emulator) -> Iterator[Callable[..., Flask]]:
    """Return a factory for extra apps wired to the emulator, with settings changed."""
    made: list[Flask] = []

    def build(**settings: Any) -> Flask:
        base = {"DATABASE_URL": f"sqlite:///{tmp_path / f'portal{len(made)}.db'}"}
        portal = make_app(tmp_path, dict(entra.portal_settings()) | base | settings)
        made.append(portal)
        return portal

    yield build
    for portal in made:
        dispose(portal)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client for the app."""
    return app.test_client()


@pytest.fixture
def web(client: FlaskClient, entra: Emulator) -> Web:
    """Return a person at the portal and the emulator."""
    return Web(client, entra)


@pytest.fixture
def helpdesk(web: Web) -> Web:
    """Return a browser signed in as helpdesk@contoso.test (app role Helpdesk: contoso only)."""
    web.sign_in("helpdesk@contoso.test")
    return web


@pytest.fixture
def person(app: Flask, entra: Emulator) -> People:
    """Return a factory of people at this portal, each with their own cookies at Entra."""
    return lambda username: Web.person(app, entra, username)


@pytest.fixture
def connect(app: Flask, entra: Emulator) -> Callable[..., tuple[str, str | None]]:
    """Return a function that connects an emulator account to this app."""

    def run(
        connector_id: str = "onedrive", username: str = "user@fabrikam.test", **kw: Any
    ) -> tuple[str, str | None]:
        """Connect the account; return its connection id and its code (None on a reconnect)."""
        return connect_account(app, entra, connector_id, username, **kw)

    return run


@pytest.fixture
def read_row(app: Flask) -> Callable[[str], Connection | None]:
    """Return a function that reads a connection row afresh."""
    return lambda connection_id: row(app, connection_id)


def row(portal: Flask, connection_id: str) -> Connection | None:
    """Return a fresh copy of a connection row."""
    from app.models import Connection
    from app.platform.extensions import session_factory

    with portal.app_context(), session_factory() as db:
        return db.get(Connection, connection_id)


# One Playwright for the whole run: two sync_playwright() instances at once collide.
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Return Debian's Chromium, skipping (or failing in CI) when it is missing."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("PORTAL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium is required here but missing at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}: apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    """Launch one headless Chromium for the whole run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# C36/C40: the whole run logs at DEBUG to a file; afterwards no secret the emulator issued (nor
# any connection code) may appear in that log or in any SQLite database the run created.
DEBUG_LOGGERS = (
    "",
    "app",
    "msal",
    "urllib3",
    "requests",
    "werkzeug",
    "flask_session",
    "sqlalchemy.engine",
)
CODE_PATTERN = re.compile(rb"ccp_[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="session", autouse=True)
def secret_scan(entra_server: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Log everything at DEBUG, then fail the run if an issued secret leaked anywhere."""
    log_file = tmp_path_factory.getbasetemp() / "debug.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    previous = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    logging.getLogger().removeHandler(handler)
    handler.close()
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)
    leaks = find_leaks(entra_server.issued_secrets(), tmp_path_factory.getbasetemp())
    assert not leaks, f"secrets leaked into: {sorted(leaks)}"


def encodings(secret: str) -> set[bytes]:
    """Return the raw, base64 and URL-encoded forms a leaked secret could take."""
    raw = secret.encode()
    return {
        raw,
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        quote(secret, safe="").encode(),
        quote_plus(secret).encode(),
    }


def find_leaks(secrets_issued: set[str], base: Path) -> set[str]:
    """Return where (file, and for logs the line's logger) an issued secret or a code appears."""
    needles = {form for s in secrets_issued if len(s) >= 16 for form in encodings(s)}
    leaks: set[str] = set()
    for path in base.rglob("*"):
        if not path.is_file() or not path.name.endswith((".log", ".db", ".db-wal", ".sqlite")):
            continue
        data = path.read_bytes()
        if not (CODE_PATTERN.search(data) or any(needle in data for needle in needles)):
            continue
        where = str(path.relative_to(base))
        if path.suffix == ".log":  # name the loggers (never the secret) to make the leak findable
            for number, line in enumerate(data.splitlines(), 1):
                if CODE_PATTERN.search(line) or any(needle in line for needle in needles):
                    leaks.add(f"{where}:{number} {line.split(b' ', 2)[:2]!r}")
        else:
            leaks.add(where)
    return leaks


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(app: Flask, tmp_path: Path, workers: int) -> Iterator[tuple[int, Popen[bytes]]]:
    """Run `consent-portal serve` on the app's database and emulator; yield (port, process)."""
    port = free_port()
    env = dict(os.environ) | {
        "PORTAL_INSTANCE_PATH": app.instance_path,
        "PORTAL_DATABASE_URL": app.config["DATABASE_URL"],
        "PORTAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORTAL_AUTHORITY_HOST": app.config["AUTHORITY_HOST"],
        "PORTAL_CLIENT_ID": app.config["CLIENT_ID"],
        "PORTAL_CLIENT_SECRET": app.config["CLIENT_SECRET"],
        "PORTAL_CA_FILE": app.config["CA_FILE"],
        "PORTAL_RATELIMIT_TOKEN": "100000/minute",
        "PORTAL_RATELIMIT_IP": "100000/minute",
    }
    script = Path(sys.executable).parent / "consent-portal"
    command = [str(script), "serve", "--port", str(port), "--workers", str(workers)]
    log = (tmp_path / "gunicorn.log").open("w")
    process = Popen(command, env=env, stdout=log, stderr=STDOUT)
    try:
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
