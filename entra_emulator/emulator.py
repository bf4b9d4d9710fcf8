"""The running emulator as tests see it: serve() and the Emulator handle."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from entra_emulator import config
from entra_emulator import keys
from entra_emulator import testing
from entra_emulator.runtime import Runtime
from entra_emulator.server import BACK
from entra_emulator.server import BROWSER
from entra_emulator.server import CONTROL
from entra_emulator.server import build_app
from entra_emulator.serving import ServerThread
from entra_emulator.state import State

PORTAL_CLIENT_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
log = logging.getLogger(__name__)


class Emulator:
    """A started emulator: its URLs, its CA and helpers that drive it."""

    def __init__(
        self,
        port: int = 0,
        http_port: int | None = 0,
        state_dir: Path | str | None = None,
        config_path: Path | str | None = None,
        control_plane: bool = True,
    ) -> None:
        """Load the keys and the world and bind both servers (port 0 picks a free port)."""
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="entra-emulator-")
        self.state_dir = Path(state_dir or self._tmp.name)  # type: ignore[union-attr]
        self.keys = keys.load(self.state_dir)
        self.state = State(config.load(config_path))
        self.runtime = Runtime(self.state, self.keys, "", "", control_plane)
        surfaces = [BACK, BROWSER] + ([CONTROL] if control_plane else [])
        self._https = ServerThread(build_app(self.runtime, surfaces), port, self.keys.ssl_context())
        browser_port = self._https.port + 1 if http_port is None else http_port
        self._http = ServerThread(build_app(self.runtime, [BROWSER]), browser_port)
        self.runtime.base_url = f"https://127.0.0.1:{self._https.port}"
        self.runtime.browser_url = f"http://127.0.0.1:{self._http.port}"
        self._client = requests.Session()
        self._client.trust_env = False  # REQUESTS_CA_BUNDLE must not replace our CA (pitfall 4)
        self._client.verify = str(self.ca_path)

    @property
    def base_url(self) -> str:
        """Return the HTTPS origin: authority host, token, keys, APIs, control plane."""
        return self.runtime.base_url

    @property
    def browser_url(self) -> str:
        """Return the plain-HTTP origin of the sign-in and consent pages."""
        return self.runtime.browser_url

    @property
    def ca_path(self) -> Path:
        """Return the CA certificate clients must trust."""
        return self.keys.ca_path

    def start(self) -> Emulator:
        """Start both servers."""
        self._https.start()
        self._http.start()
        log.info("Entra emulator on %s (pages on %s)", self.base_url, self.browser_url)
        return self

    def stop(self) -> None:
        """Stop both servers and remove a temporary state directory."""
        self._http.stop()
        self._https.stop()
        self._client.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def portal_settings(self, tenant: str | None = None) -> dict[str, Any]:
        """Return the PORTAL_* settings (without prefix) that point a portal at this emulator."""
        app = self.state.world.apps[PORTAL_CLIENT_ID]
        settings: dict[str, Any] = {
            "AUTHORITY_HOST": self.base_url,
            "CLIENT_ID": app.client_id,
            "CLIENT_SECRET": app.secrets[0],
            "CA_FILE": str(self.ca_path),
            "RESOURCE_URLS": {
                "https://graph.microsoft.com": f"{self.base_url}/graph",
                "https://contoso.crm.dynamics.com": (
                    f"{self.base_url}/dynamics/contoso.crm.dynamics.com"
                ),
                "https://storage.azure.com": f"{self.base_url}/storage/demostorage",
            },
            # Each account's own blob endpoint, so the portal can name accounts.
            "STORAGE_ACCOUNTS": list(self.state.world.storage_accounts),
        }
        for account in settings["STORAGE_ACCOUNTS"]:
            blob_endpoint = f"https://{account}.blob.core.windows.net"
            settings["RESOURCE_URLS"][blob_endpoint] = f"{self.base_url}/storage/{account}"
        if tenant:
            settings["TENANT"] = tenant
        return settings

    def control(self, method: str, path: str, json: Any = None) -> requests.Response:
        """Call the control plane over verified TLS."""
        url = f"{self.base_url}/_emulator/{path.removeprefix('/_emulator/').lstrip('/')}"
        return self._client.request(method, url, json=json, timeout=10)

    def reset(self) -> None:
        """Return to the configuration file's state (grants, tokens, sessions, faults, log)."""
        with self.state.lock:
            self.state.reset()

    def request_log(self, **filters: Any) -> list[dict[str, Any]]:
        """Return the request log entries whose fields equal every filter."""
        with self.state.lock:
            return [dict(e) for e in self.state.requests({k: str(v) for k, v in filters.items()})]

    def issued_secrets(self) -> set[str]:
        """Return every code, token and client secret this emulator has handed out."""
        with self.state.lock:
            secrets = set(self.state.issued)
            secrets.update(s for app in self.state.world.apps.values() for s in app.secrets)
        return secrets

    def register_app(self, redirect_uris: list[str], multi_tenant: bool = True) -> tuple[str, str]:
        """Register an app through the control plane; return (client_id, secret)."""
        body = {"redirect_uris": redirect_uris, "multi_tenant": multi_tenant}
        answer = self.control("POST", "/_emulator/apps", json=body)
        answer.raise_for_status()
        data = answer.json()
        return data["client_id"], data["client_secret"]

    def sign_in(
        self,
        auth_uri: str,
        username: str,
        password: str = "demo",
        accept: bool = True,
        on_behalf_of_org: bool = False,
        cancel: bool = False,
        justification: str | None = None,
        session: requests.Session | None = None,
        mfa_code: str | None = None,
        new_password: str | None = None,
    ) -> str:
        """Play a person through the emulator's pages; return the URL sent back to the app.

        The person types mfa_code (the demo code unless given) where MFA is asked for, and
        new_password where an expired password must be updated (or stops there without one).
        """
        browser = session or requests.Session()
        browser.trust_env = False
        browser.verify = str(self.ca_path)
        origins = {urlsplit(self.base_url).netloc, urlsplit(self.browser_url).netloc}
        with self.state.lock:
            code = mfa_code if mfa_code is not None else str(self.state.settings["mfa_demo_code"])
        person = testing.Person(
            username, password, accept, on_behalf_of_org, cancel, justification, origins
        )
        person.mfa_code, person.new_password = code, new_password
        return person.run(auth_uri, browser)


@contextlib.contextmanager
def serve(
    port: int = 0,
    http_port: int | None = 0,
    state_dir: Path | str | None = None,
    config: Path | str | None = None,
    control_plane: bool = True,
) -> Iterator[Emulator]:
    """Run an emulator for the duration of a with block."""
    emulator = Emulator(port, http_port, state_dir, config, control_plane).start()
    try:
        yield emulator
    finally:
        emulator.stop()
