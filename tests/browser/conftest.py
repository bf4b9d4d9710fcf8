"""A live portal on a real socket, the emulator, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from werkzeug.serving import make_server

from app import create_app
from entra_emulator import Emulator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment


class LivePortal:
    """A portal served by a threaded werkzeug server on an ephemeral port."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.app = create_app(settings | {"PUBLIC_URL": self.url})
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Forward to the app, built once the port is known."""
        return self.app(environ, start_response)

    def start(self) -> LivePortal:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Give each test a fresh browser context (its own cookies) and fail on page errors."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def portal(entra: Emulator, tmp_path: Path) -> Iterator[LivePortal]:
    """Serve a portal wired to the emulator, with its own database and instance folder."""
    settings = {
        "TESTING": False,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
    } | entra.portal_settings()
    live = LivePortal(settings).start()
    yield live
    live.stop()
