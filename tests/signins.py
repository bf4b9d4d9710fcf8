"""Sign-ins for tests: in the app, as a person's test-client browser, or on a real page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from entra_emulator import Emulator

if TYPE_CHECKING:
    from playwright.sync_api import Page

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CODE = re.compile(r'id="connection-code"[^>]*value="(ccp_[^"]+)"')


def connect_account(
    portal: Flask,
    emu: Emulator,
    connector_id: str = "onedrive",
    username: str = "user@fabrikam.test",
    account_type: str | None = None,
) -> tuple[str, str | None]:
    """Run a real sign-in at the emulator and store the connection; return its id and code."""
    from app.platform import extensions

    with portal.app_context():
        identity = extensions.identity()
        connector = extensions.connectors()[connector_id]
        flow = identity.start_flow(connector, account_type=account_type)
        callback = emu.sign_in(flow["auth_uri"], username, password="demo", accept=True)
        query = dict(parse_qsl(urlsplit(callback).query))
        result = identity.finish_flow(flow, query)
        connection, code = extensions.connection_store().create_or_update(result, connector)
    return connection.id, code


def staff_id(emu: Emulator, username: str) -> str:
    """Return an emulator account's tenant-id/object-id pair, as PORTAL_ADMIN_USERS names it."""
    users = emu.control("GET", "/_emulator/state").json()["users"]
    found = next(u for u in users if u["username"] == username.lower())
    return f"{found['tenant']}/{found['oid']}"


class Web:
    """A person's browser on the portal (test client) plus their hands at the emulator."""

    def __init__(
        self,
        client: FlaskClient,
        entra: Emulator,
        username: str = "user@fabrikam.test",
        entra_session: requests.Session | None = None,
    ) -> None:
        self.client = client
        self.entra = entra
        self.username = username
        self.entra_session = entra_session  # None: every sign-in starts without Entra cookies

    @classmethod
    def person(cls, portal: Flask, entra: Emulator, username: str) -> Web:
        """Return a new person's browser on this portal, keeping their cookies at Entra."""
        return cls(portal.test_client(), entra, username, requests.Session())

    def csrf(self, path: str = "/sign-in") -> str:
        """Return a CSRF token from a page of this session."""
        match = CSRF.search(self.client.get(path).get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, page: str = "/sign-in", **form: str) -> TestResponse:
        """Submit a form with the CSRF token of a page of this session."""
        return self.client.post(path, data={"csrf_token": self.csrf(page), **form})

    def page(self, path: str) -> str:
        """Return a page's text, asserting it answered 200."""
        answer = self.client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        return answer.get_data(as_text=True)

    def entra_answer(self, url: str, **kw: Any) -> str:
        """Go through the emulator's pages as this person; return where the browser comes back."""
        return self.entra.sign_in(url, self.username, session=self.entra_session, **kw)

    def callback(self, url: str) -> TestResponse:
        """Open the callback URL the emulator sent the browser to."""
        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}")

    def sign_in(self, username: str | None = None) -> None:
        """Sign in to the portal itself as this person (or as another emulator account)."""
        answer = self.post("/sign-in")
        assert answer.status_code == 303
        url = answer.headers["Location"]
        callback = self.entra.sign_in(url, username or self.username, session=self.entra_session)
        assert self.callback(callback).status_code == 303

    def authenticate(self, connector: str = "onedrive", **form: str) -> str:
        """Press Authenticate and return Entra's authorize URL."""
        answer = self.post(
            f"/connectors/{connector}/authenticate", f"/connectors/{connector}", **form
        )
        assert answer.status_code == 303, answer.get_data(as_text=True)
        return str(answer.headers["Location"])

    def connect(
        self, connector: str = "onedrive", username: str = "user@fabrikam.test", **kw: Any
    ) -> TestResponse:
        """Authenticate, sign in at the emulator and come back; return the callback answer."""
        form = {k: v for k, v in kw.items() if k in ("account_type", "login_hint")}
        auth_uri = self.authenticate(connector, **form)
        url = self.entra.sign_in(auth_uri, username, accept=True, session=self.entra_session)
        return self.callback(url)

    @staticmethod
    def state_of(url: str) -> str:
        """Return the state parameter of a URL."""
        return parse_qs(urlsplit(url).query)["state"][0]

    def other(self) -> Web:
        """Return another person's browser on the same portal."""
        return Web(self.client.application.test_client(), self.entra)

    def code(self, answer: TestResponse) -> str:
        """Follow the redirect after a successful callback and read the code shown once."""
        assert answer.status_code == 303, answer.get_data(as_text=True)
        page = self.client.get(answer.headers["Location"]).get_data(as_text=True)
        match = CODE.search(page)
        assert match, "no connection code on the page"
        return match.group(1)


People = Callable[[str], Web]


def entra_sign_in(page: Page, username: str | None = None, password: str = "demo") -> None:
    """Fill the emulator's sign-in pages in a real browser (the e-mail unless it is prefilled)."""
    if username is not None:
        page.get_by_label("Email address").fill(username)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def accept_if_asked(page: Page) -> None:
    """Press Accept when the emulator shows Permissions requested (first use of a scope)."""
    page.wait_for_load_state()
    if page.get_by_role("heading", name="Permissions requested").count():
        page.get_by_role("button", name="Accept").click()
