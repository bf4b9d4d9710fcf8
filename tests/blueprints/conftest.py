"""Drive the portal's pages with the Flask test client and a scripted person at the emulator."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Web:
    """A person's browser on the portal (test client) plus their hands at the emulator."""

    def __init__(self, client: FlaskClient, entra: Any) -> None:
        self.client = client
        self.entra = entra

    def csrf(self, path: str = "/sign-in") -> str:
        """Return a CSRF token from a page of this session."""
        match = CSRF.search(self.client.get(path).get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def authenticate(self, connector: str = "onedrive", **form: str) -> str:
        """Press Authenticate and return Entra's authorize URL."""
        token = self.csrf(f"/connectors/{connector}")
        answer = self.client.post(
            f"/connectors/{connector}/authenticate", data={"csrf_token": token, **form}
        )
        assert answer.status_code == 303, answer.get_data(as_text=True)
        return str(answer.headers["Location"])

    def callback(self, url: str) -> Any:
        """Open the callback URL the emulator sent the browser to."""
        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}")

    def connect(
        self, connector: str = "onedrive", username: str = "user@fabrikam.test", **kw: Any
    ) -> Any:
        """Authenticate, sign in at the emulator and come back; return the callback answer."""
        form = {k: v for k, v in kw.items() if k in ("account_type", "login_hint")}
        auth_uri = self.authenticate(connector, **form)
        return self.callback(self.entra.sign_in(auth_uri, username, accept=True))

    @staticmethod
    def state_of(url: str) -> str:
        """Return the state parameter of a URL."""
        return parse_qs(urlsplit(url).query)["state"][0]

    def other(self) -> Web:
        """Return another person's browser on the same portal."""
        return Web(self.client.application.test_client(), self.entra)

    def code(self, answer: Any) -> str:
        """Follow the redirect after a successful callback and read the code shown once."""
        assert answer.status_code == 303, answer.get_data(as_text=True)
        page = self.client.get(answer.headers["Location"]).get_data(as_text=True)
        match = re.search(r'id="connection-code"[^>]*value="(ccp_[^"]+)"', page)
        assert match, "no connection code on the page"
        return match.group(1)


@pytest.fixture
def web(client: FlaskClient, entra: Any) -> Web:
    """Return a person at the portal and the emulator."""
    return Web(client, entra)
