"""Fixtures for the emulator's tests: one emulator per session, reset before every test."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import msal
import pytest
import requests

from entra_emulator import Emulator
from entra_emulator import serve
from entra_emulator.testing import callback_query

PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
PORTAL_SECRET = "dev-only-portal-secret-not-for-production"
REDIRECT = "http://127.0.0.1:5000/auth/callback"


@pytest.fixture(scope="session")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Run one emulator for the whole session."""
    with serve(state_dir=tmp_path_factory.mktemp("emulator")) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_world(emu: Emulator) -> None:
    """Put the emulator back into the configuration file's state before each test."""
    emu.reset()


@pytest.fixture
def http(emu: Emulator) -> Iterator[requests.Session]:
    """Return a session that trusts only the emulator's CA."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(emu.ca_path)
    yield session
    session.close()


CcaFactory = Callable[..., msal.ConfidentialClientApplication]


@pytest.fixture
def make_cca(emu: Emulator, http: requests.Session) -> CcaFactory:
    """Return a factory of CCAs built as the portal builds them, each with a fresh http_cache."""

    def make(
        tenant: str = "organizations",
        client_id: str = PORTAL_ID,
        credential: Any = PORTAL_SECRET,
        cache: msal.TokenCache | None = None,
    ) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=f"{emu.base_url}/{tenant}",
            instance_discovery=False,
            http_client=http,
            http_cache={},  # a replayed 400 must never leak between tests (pitfall 10)
            token_cache=cache or msal.TokenCache(),
        )

    return make


Connect = Callable[..., dict[str, Any]]


@pytest.fixture
def connect(emu: Emulator) -> Connect:
    """Return a helper that runs the auth-code flow through the scripted person."""

    def run(
        cca: msal.ConfidentialClientApplication,
        username: str,
        scopes: list[str],
        redeem: list[str] | None = None,
        **sign_in: Any,
    ) -> dict[str, Any]:
        flow = cca.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT)
        url = emu.sign_in(flow["auth_uri"], username, **sign_in)
        result: dict[str, Any] = cca.acquire_token_by_auth_code_flow(
            flow, callback_query(url), scopes=redeem or [scopes[0]]
        )
        return result

    return run


Token = Callable[[str, list[str]], str]


@pytest.fixture
def token(make_cca: CcaFactory, connect: Connect) -> Token:
    """Return a helper that signs a user in and returns an access token for one resource."""

    def get(username: str, scopes: list[str]) -> str:
        result = connect(make_cca(), username, scopes, redeem=scopes)
        access_token: str = result["access_token"]
        return access_token

    return get
