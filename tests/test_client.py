"""consent_portal_client against a portal served over real HTTP and the emulator behind it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TypeVar

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.credentials import AccessTokenInfo
from flask import Flask
from werkzeug.serving import make_server

from consent_portal_client import AsyncPortalCredential
from consent_portal_client import InvalidConnectionCode
from consent_portal_client import PortalAuth
from consent_portal_client import PortalCredential
from consent_portal_client import PortalUnavailable
from consent_portal_client import ReauthenticationRequired
from consent_portal_client import ScopeNotAllowed
from entra_emulator import Emulator
from tests.signins import connect_account

T = TypeVar("T")

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
STORAGE_DEFAULT = "https://storage.azure.com/.default"
Connect = Callable[..., tuple[str, str | None]]
# msgraph-sdk's generated request builders warn of their own deprecated classes, and of one of
# kiota's, as they load: the SDK's to fix, not ours.
SDK_DEPRECATIONS = [
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:msgraph\."),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


@dataclass
class Served:
    """A portal app behind a real HTTP server, counting the calls to its token API."""

    url: str
    token_calls: list[float] = field(default_factory=list)
    made: list[PortalCredential] = field(default_factory=list)

    def credential(self, code: str | None, **options: Any) -> PortalCredential:
        """Return a credential for a code at this portal, closed when the server stops."""
        assert code is not None
        self.made.append(PortalCredential(code, self.url, **options))
        return self.made[-1]


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[Served]:
    """Serve an app on a free loopback port in a thread for the duration of a with block."""
    served = Served("")

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        """Count token API calls, then pass the request on."""
        if environ.get("PATH_INFO") == "/api/v1/token":
            served.token_calls.append(time.monotonic())
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, counting, threaded=True)
    served.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        for credential in served.made:
            credential.close()
        server.shutdown()
        thread.join(timeout=10)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a thread of its own: the browser suite's Playwright owns this loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def portal(app: Flask) -> Iterator[Served]:
    """Return the test app served over HTTP."""
    with serve(app) as served:
        yield served


@pytest.fixture
def short_lived(entra: Emulator) -> None:
    """Make Entra issue access tokens the portal will not reuse (under MSAL's 5 minutes)."""
    answer = entra.control("POST", "/_emulator/settings", {"access_token_lifetime_seconds": 60})
    assert answer.status_code == 200, answer.text


def test_the_client_loads_without_flask_or_the_portal() -> None:
    check = (
        "import sys, consent_portal_client; "
        "print(sorted(m for m in ('flask', 'werkzeug', 'app', 'entra_emulator') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_without_azure_core_a_credential_returns_look_alike_tokens(
    portal: Served, connect: Connect
) -> None:
    _, code = connect()
    script = (
        "import sys, time; sys.modules['azure'] = None; "  # as if azure-core were not installed
        "from consent_portal_client import PortalCredential; "
        "token = PortalCredential(sys.stdin.read(), sys.argv[1]).get_token_info(sys.argv[2]); "
        "print(type(token).__module__, token.token_type, token.expires_on > time.time())"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script, portal.url, GRAPH_DEFAULT],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["consent_portal_client.tokens", "Bearer", "True"]


def test_a_token_is_cached_until_shortly_before_it_expires(
    portal: Served, connect: Connect
) -> None:
    _, code = connect()
    credential = portal.credential(code)
    first = credential.get_token(GRAPH_DEFAULT)
    assert isinstance(first, AccessToken)
    assert first.expires_on > time.time() + 3000  # the emulator's 3599 s
    assert credential.get_token(GRAPH_DEFAULT) == first
    info = credential.get_token_info(GRAPH_DEFAULT)
    assert isinstance(info, AccessTokenInfo)
    assert (info.token, info.refresh_on) == (first.token, first.expires_on - 300)
    assert len(portal.token_calls) == 1

    # With a margin of all but 3 seconds of the token's life, it is due again very soon.
    nearly = portal.credential(code, refresh_margin=first.expires_on - time.time() - 3)
    token = nearly.get_token(GRAPH_DEFAULT)
    assert nearly.get_token(GRAPH_DEFAULT) == token
    assert len(portal.token_calls) == 2
    time.sleep(max(0.0, token.expires_on - nearly.refresh_margin - time.time()) + 0.2)
    nearly.get_token(GRAPH_DEFAULT)
    assert len(portal.token_calls) == 3


def test_a_token_inside_the_margin_is_never_served_from_the_cache(
    short_lived: None, portal: Served, connect: Connect
) -> None:
    _, code = connect()
    credential = portal.credential(code)
    credential.get_token(GRAPH_DEFAULT)
    credential.get_token(GRAPH_DEFAULT)
    assert len(portal.token_calls) == 2


def test_threads_wait_for_one_refresh(portal: Served, connect: Connect) -> None:
    _, code = connect()
    credential = portal.credential(code)
    tokens: list[str] = []

    def ask() -> None:
        """Ask for a token like a worker thread of a data tool."""
        tokens.append(credential.get_token(GRAPH_DEFAULT).token)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert len(portal.token_calls) == 1


def test_a_refused_connection_raises_with_the_reconnect_link(
    short_lived: None, portal: Served, connect: Connect, entra: Emulator
) -> None:
    connection_id, code = connect()
    revoked = entra.control(
        "POST", "/_emulator/refresh-tokens/revoke", {"username": "user@fabrikam.test"}
    )
    assert revoked.json()["revoked"] >= 1
    with pytest.raises(ReauthenticationRequired) as refused:
        portal.credential(code).get_token(GRAPH_DEFAULT)
    url = refused.value.reauthenticate_url
    assert url is not None and url.endswith(f"/connections/{connection_id}/reconnect")
    assert (refused.value.status, refused.value.error) == (409, "reauthentication_required")
    assert url in str(refused.value)


def test_a_503_is_retried_after_its_retry_after(
    short_lived: None, portal: Served, connect: Connect, entra: Emulator
) -> None:
    _, code = connect()
    fault = {"endpoint": "token", "status": 503, "retry_after": 1, "count": 1}
    assert entra.control("POST", "/_emulator/faults", fault).status_code == 201
    token = portal.credential(code).get_token(GRAPH_DEFAULT)
    assert token.expires_on > time.time()
    assert len(portal.token_calls) == 2
    assert portal.token_calls[1] - portal.token_calls[0] >= 1.0  # the portal's Retry-After


def test_retries_stop_within_the_wait_budget(
    short_lived: None, portal: Served, connect: Connect, entra: Emulator
) -> None:
    _, code = connect()
    fault = {"endpoint": "token", "status": 503, "retry_after": 1}  # every request, no count
    assert entra.control("POST", "/_emulator/faults", fault).status_code == 201
    started = time.monotonic()
    with pytest.raises(PortalUnavailable) as unavailable:
        portal.credential(code, max_wait=1.5).get_token(GRAPH_DEFAULT)
    assert time.monotonic() - started < 10
    assert unavailable.value.status == 503
    assert unavailable.value.error == "temporarily_unavailable"
    assert unavailable.value.retry_after is not None and unavailable.value.retry_after >= 1
    assert len(portal.token_calls) == 2  # the first retry fits in 1.5 s, the second does not


def test_a_429_longer_than_the_budget_is_raised_at_once(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    limited = make_portal(RATELIMIT_TOKEN="1/minute")
    _, code = connect_account(limited, entra)
    with serve(limited) as served:
        served.credential(code).get_token(GRAPH_DEFAULT)
        started = time.monotonic()
        with pytest.raises(PortalUnavailable) as limited_error:
            served.credential(code).get_token(GRAPH_DEFAULT)
    assert time.monotonic() - started < 5  # no wait that could not end in a token
    assert limited_error.value.status == 429
    assert limited_error.value.retry_after is not None and limited_error.value.retry_after > 30


def test_an_unknown_code_is_refused(portal: Served) -> None:
    with pytest.raises(InvalidConnectionCode) as refused:
        portal.credential("ccp_not-a-real-code").get_token(GRAPH_DEFAULT)
    assert (refused.value.status, refused.value.error) == (401, "invalid_token")


def test_scopes_outside_the_connection_are_refused(portal: Served, connect: Connect) -> None:
    _, code = connect()  # OneDrive: https://graph.microsoft.com/Files.Read.All
    credential = portal.credential(code)
    with pytest.raises(ScopeNotAllowed, match="storage.azure.com"):
        credential.get_token(STORAGE_DEFAULT)  # learns the connection's resource from the answer
    calls = len(portal.token_calls)
    with pytest.raises(ScopeNotAllowed):
        credential.get_token(STORAGE_DEFAULT)
    assert len(portal.token_calls) == calls  # refused before asking the portal
    with pytest.raises(ScopeNotAllowed) as beyond:
        credential.get_token("https://graph.microsoft.com/Mail.Read")
    assert (beyond.value.status, beyond.value.error) == (403, "insufficient_scope")
    with pytest.raises(ScopeNotAllowed, match="one resource"):
        credential.get_token(GRAPH_DEFAULT, STORAGE_DEFAULT)
    assert credential.get_token("Files.Read.All", "offline_access").token


def test_requests_auth_signs_with_a_current_token(
    portal: Served, connect: Connect, entra: Emulator
) -> None:
    _, code = connect()
    credential = portal.credential(code)
    auth = PortalAuth(credential, GRAPH_DEFAULT)
    prepared = requests.Request("GET", "https://example.test/", auth=auth).prepare()
    assert prepared.headers["Authorization"] == f"Bearer {credential.get_token().token}"
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(
            f"{entra.base_url}/graph/v1.0/me/drive/root/children",
            auth=PortalAuth(credential),
            verify=str(entra.ca_path),
            timeout=10,
        )
    assert answer.status_code == 200, answer.text
    assert all(item["name"] for item in answer.json()["value"])  # the emulator's canned drive
    assert len(portal.token_calls) == 1


def test_the_async_credential_shares_the_cache(portal: Served, connect: Connect) -> None:
    _, code = connect()
    assert code is not None

    async def twice() -> tuple[AccessToken, AccessTokenInfo]:
        """Ask the async credential for a token, then for its info."""
        async with AsyncPortalCredential(code, portal.url) as credential:
            return (
                await credential.get_token(GRAPH_DEFAULT),
                await credential.get_token_info(GRAPH_DEFAULT),
            )

    token, info = run_async(twice())
    assert token.token == info.token and len(portal.token_calls) == 1


def test_the_portal_url_must_be_https_off_this_machine() -> None:
    with pytest.raises(ValueError, match="https"):
        PortalCredential("ccp_x", "http://portal.example.test")
    credential = PortalCredential("ccp_secret", "https://portal.example.test")
    assert "ccp_secret" not in repr(credential)


def test_blob_service_client_lists_containers(
    portal: Served, connect: Connect, entra: Emulator
) -> None:
    from azure.storage.blob import BlobServiceClient

    _, code = connect("azure-storage", "user@fabrikam.test")
    with portal.credential(code) as credential:
        blobs = BlobServiceClient(
            account_url=f"{entra.base_url}/storage/demostorage",
            credential=credential,
            connection_verify=str(entra.ca_path),
        )
        names = [container.name for container in blobs.list_containers()]
    assert names and all(names)  # the emulator's canned containers
    assert len(portal.token_calls) == 1


@contextlib.asynccontextmanager
async def graph_client(credential: Any, entra: Emulator) -> AsyncIterator[Any]:
    """Yield a GraphServiceClient that talks to the emulator's Graph over its CA."""
    import httpx
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter
    from msgraph import GraphServiceClient
    from msgraph.graph_request_adapter import options
    from msgraph_core import GraphClientFactory

    tls = ssl.create_default_context(cafile=str(entra.ca_path))
    # msgraph-core's transport wrapper does not close what it wraps: keep it to close it here.
    async with httpx.AsyncHTTPTransport(verify=tls, trust_env=False) as transport:
        http = httpx.AsyncClient(transport=transport, trust_env=False)
        client = GraphClientFactory.create_with_default_middleware(client=http, options=options)
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_DEFAULT])
        adapter = GraphRequestAdapter(auth, client=client)
        adapter.base_url = f"{entra.base_url}/graph/v1.0"  # httpx's base_url ends in a slash
        yield GraphServiceClient(request_adapter=adapter)


@SDK_DEPRECATIONS[0]
@SDK_DEPRECATIONS[1]
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_graph_service_client_reads_the_drive(
    flavour: str, portal: Served, connect: Connect, entra: Emulator
) -> None:
    _, code = connect()
    assert code is not None
    sync = portal.credential(code)

    async def read() -> Any:
        """Read the signed-in user's drive through the SDK."""
        async with contextlib.AsyncExitStack() as stack:
            credential: Any = sync
            if flavour == "async":
                credential = AsyncPortalCredential(code, portal.url)
                await stack.enter_async_context(credential)
            graph = await stack.enter_async_context(graph_client(credential, entra))
            return await graph.me.drive.get()

    drive = run_async(read())
    assert drive is not None and drive.id
    assert len(portal.token_calls) == 1


@SDK_DEPRECATIONS[0]
@SDK_DEPRECATIONS[1]
def test_graph_service_client_reads_messages(
    portal: Served, connect: Connect, entra: Emulator
) -> None:
    _, code = connect("outlook")
    assert code is not None

    async def read() -> Any:
        """Read the signed-in user's messages through the SDK."""
        async with (
            AsyncPortalCredential(code, portal.url) as credential,
            graph_client(credential, entra) as graph,
        ):
            return await graph.me.messages.get()

    messages = run_async(read())
    assert messages.value and all(m.subject for m in messages.value)
