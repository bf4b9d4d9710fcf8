"""The read-only proxy: a tool's GET, sent to the connection's resource with a fresh token.

Bodies stream both ways in chunks, so a multi-GB file never sits in memory. The connection code
never goes upstream (the resource gets an access token instead), the access token never comes
back, and only an allowlist of headers crosses in either direction.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import certifi
import urllib3
from urllib3.util.retry import Retry

from app.connectors import Connector
from app.data import targets
from app.errors import BadProxyRequest
from app.errors import TemporarilyUnavailable
from app.identity import claims
from app.tokens.broker import Broker

CHUNK = 64 * 1024
# What a tool may say to the resource: content negotiation, ranges, conditions, OData paging.
REQUEST_HEADERS = (
    "accept",
    "accept-encoding",
    "accept-language",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "prefer",
    "consistencylevel",
    "client-request-id",
    "odata-maxversion",
    "odata-version",
    "x-ms-range",
    "x-ms-version",
)
# What the resource may say back: the body's description, validators, throttling, request ids.
# Never Set-Cookie, WWW-Authenticate (aimed at the portal's token) or hop-by-hop headers.
RESPONSE_HEADERS = (
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-range",
    "content-type",
    "etag",
    "last-modified",
    "preference-applied",
    "odata-version",
    "retry-after",
    "request-id",
    "client-request-id",
    "x-ms-request-id",
    "x-ms-client-request-id",
    "x-ms-version",
    "x-ms-blob-type",
    "x-ms-ags-diagnostic",
)


@dataclass(frozen=True)
class ProxySettings:
    """Where the resources are, which Storage accounts may be named, and how long to wait."""

    resource_urls: Mapping[str, str]
    storage_accounts: tuple[str, ...] = ()
    timeout: float = 30.0


@dataclass
class Upstream:
    """The resource's answer as it goes back to the tool: status, headers, streamed body."""

    status: int
    headers: dict[str, str]
    body: Iterator[bytes]
    connector: str


class Proxy:
    """Forwards a tool's read to its connection's resource; plain values in, a stream out."""

    def __init__(
        self,
        *,
        broker: Broker,
        connectors: Mapping[str, Connector],
        settings: ProxySettings,
        http: urllib3.PoolManager,
    ) -> None:
        self._broker = broker
        self._connectors = connectors
        self._settings = settings
        self._http = http  # pooled and kept alive: one upstream round trip per call
        self._timeout = urllib3.Timeout(connect=settings.timeout, read=settings.timeout)

    def forward(
        self,
        code: str,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        account: str | None = None,
    ) -> Upstream:
        """Send the read upstream; on a 401, refresh once and try once more."""
        if method not in ("GET", "HEAD"):
            raise BadProxyRequest("The proxy is read-only: GET and HEAD.")
        path = targets.checked_path(path)  # before anything else: no lookup for a bad path
        found: list[tuple[Connector, targets.Target]] = []

        def resolve(connector_id: str) -> None:
            """Resolve the target for the code's connector, before any token is refreshed."""
            connector = self._connector(connector_id)
            found.append((connector, targets.resolve(
                connector,
                path,
                resource_urls=self._settings.resource_urls,
                storage_accounts=self._settings.storage_accounts,
                account=account,
            )))  # fmt: skip

        token = self._broker.access_token(code, before=resolve)["access_token"]
        connector, target = found[0]
        url = f"{target.url}?{query}" if query else target.url
        sent = _request_headers(headers) | dict(target.headers)
        answer = self._send(method, url, sent, token)
        if answer.status == 401:  # a revoked or expired token: one forced refresh, once
            # A CAE resource's claims challenge goes into that refresh (then 409 if it needs a
            # sign-in); a plain 401 is an expired or revoked token.
            challenge = claims.from_challenge(answer.headers.get("WWW-Authenticate", ""))
            answer.drain_conn()  # a short error body: read it so that the connection is reused
            answer.release_conn()
            refreshed = self._broker.access_token(code, force_refresh=True, claims=challenge)
            answer = self._send(method, url, sent, refreshed["access_token"])
        return Upstream(
            status=answer.status,
            headers=_response_headers(answer.headers),
            body=_stream(answer) if method == "GET" else _closed(answer),
            connector=connector.id,
        )

    def _connector(self, connector_id: str) -> Connector:
        """Return a connection's connector, if this deployment still offers it."""
        connector = self._connectors.get(connector_id)
        if connector is None:
            raise BadProxyRequest("This connection's connector is no longer offered here.")
        return connector

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], token: str
    ) -> urllib3.BaseHTTPResponse:
        """Make one upstream request with the access token; a network failure is a 503."""
        try:
            return self._http.request(
                method,
                url,
                headers={**headers, "Authorization": f"Bearer {token}"},
                preload_content=False,  # the body streams from the socket as the tool reads it
                timeout=self._timeout,
                # Graph answers a file's /content with a redirect to a pre-authenticated URL;
                # urllib3 drops the Authorization header when the host changes.
                redirect=method == "GET",
            )
        except urllib3.exceptions.HTTPError as error:
            raise TemporarilyUnavailable(
                f"The resource did not answer ({type(error).__name__}). Try again shortly."
            ) from None


def proxy_client(ca_file: str | None, threads: int = 32) -> urllib3.PoolManager:
    """Return the proxy's pooled client: our CA, one connection retry, redirects, no status retries.

    urllib3 itself rather than requests: a small proxied GET is one upstream round trip, and
    requests' session merging and request preparation cost ~0.3 ms of CPU a call, about a third
    of what the proxy adds to a token lookup (docs/performance.md).
    """
    retries = Retry(
        total=3, connect=1, read=0, status=0, other=0, redirect=3, raise_on_redirect=False
    )
    retries.respect_retry_after_header = False
    return urllib3.PoolManager(
        num_pools=16,
        maxsize=threads,
        retries=retries,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_file or certifi.where(),  # the bundle requests (and MSAL with it) trusts
    )


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Return the TLS context for the exporter's own connections: the same CA as the proxy's."""
    return ssl.create_default_context(cafile=ca_file or certifi.where())


def _request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the caller's headers the resource may see (never Authorization or cookies)."""
    kept = {name: value for name, value in headers.items() if name.lower() in REQUEST_HEADERS}
    if not any(name.lower() == "accept-encoding" for name in kept):
        kept["Accept-Encoding"] = "identity"  # bytes pass through as they are, uncompressed
    return kept


def _response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the resource's headers the tool may see."""
    return {name: value for name, value in headers.items() if name.lower() in RESPONSE_HEADERS}


def _stream(answer: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Yield the body as it arrives, undecoded, and give the connection back at the end."""
    complete = False
    try:
        yield from answer.stream(CHUNK, decode_content=False)
        complete = True
    finally:
        if not complete:  # the tool went away mid-body: the rest can't share the connection
            answer.close()
        answer.release_conn()


def _closed(answer: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Give a HEAD answer's connection back and yield nothing."""
    answer.release_conn()
    return iter(())


def query_without(query: str, names: Sequence[str]) -> str:
    """Return a raw query string without the portal's own parameters, the rest untouched."""
    parts = [p for p in query.split("&") if p and p.split("=", 1)[0] not in names]
    return "&".join(parts)
