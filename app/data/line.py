"""One export's kept-alive connection to its resource, on which the next page is asked early.

http.client by hand, not requests or urllib3's pool, on purpose: sending a request and reading
its answer are two calls here, so the exporter sends page N+1 before it encodes page N and reads
it afterwards. The resource computes one page while the portal encodes the other, in one thread:
a reading thread instead waited for the GIL once per TLS record and overlapped little (measured,
docs/performance.md). An export's pages all stay on its resource's origin (pages.py checks).
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# What a kept connection that the resource closed while idle looks like on the next request.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class LineBroken(Exception):
    """The resource did not answer: refused, reset, timed out or not HTTP."""


@dataclass(frozen=True)
class Answer:
    """A page's answer, read whole: status, headers, body."""

    status: int
    headers: http.client.HTTPMessage  # case-insensitive .get(), as Retry-After needs
    body: bytes


class Line:
    """A kept-alive connection to one origin with at most one request outstanding."""

    def __init__(self, root: str, tls: ssl.SSLContext, timeout: float) -> None:
        parts = urlsplit(root)
        self.origin = (parts.scheme, parts.netloc)
        host, port = parts.hostname or "", parts.port
        self._connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
            if parts.scheme == "https"
            else http.client.HTTPConnection(host, port, timeout=timeout)
        )
        self._sent: tuple[str, dict[str, str]] | None = None
        self._reused = False  # a connection that has carried an answer may have gone stale

    def send(self, url: str, headers: Mapping[str, str]) -> None:
        """Send a GET for url (on this line's origin); its answer is read by receive()."""
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self.origin:
            raise LineBroken("the next page is on another origin")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._sent = (target, dict(headers))
        try:
            self._connection.request("GET", target, headers=self._sent[1])
        except STALE as error:
            self._renew(error)
        except (OSError, http.client.HTTPException) as error:
            raise self._broken(error) from None

    def receive(self) -> Answer:
        """Read the answer to the request sent last, whole."""
        try:
            answer = self._read()
        except STALE as error:
            self._renew(error)
            answer = self._guarded_read()
        except (OSError, http.client.HTTPException) as error:
            raise self._broken(error) from None
        self._reused = True
        return answer

    def close(self) -> None:
        """Close the connection (an unread answer goes with it)."""
        self._connection.close()

    def _read(self) -> Answer:
        """Read one answer whole."""
        reply = self._connection.getresponse()
        return Answer(reply.status, reply.headers, reply.read())

    def _guarded_read(self) -> Answer:
        """Read one answer whole; any failure breaks the line."""
        try:
            return self._read()
        except (OSError, http.client.HTTPException) as error:
            raise self._broken(error) from None

    def _renew(self, error: Exception) -> None:
        """Send the last request again on a new connection: once, and only after a kept one."""
        if not self._reused or self._sent is None:  # a fresh connection failing is an answer
            raise self._broken(error) from None
        self._connection.close()  # the resource closed it while idle (its keep-alive timeout)
        self._reused = False
        try:
            self._connection.request("GET", self._sent[0], headers=self._sent[1])
        except (OSError, http.client.HTTPException) as again:
            raise self._broken(again) from None

    def _broken(self, error: Exception) -> LineBroken:
        """Close the connection and name what broke it."""
        self._connection.close()
        return LineBroken(type(error).__name__)
