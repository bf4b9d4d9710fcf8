"""Serving: a werkzeug server in a daemon thread that keeps HTTP/1.1 connections alive."""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

log = logging.getLogger(__name__)
KEEP_ALIVE_SECONDS = 30
MAX_KEPT_BODY = 1 << 20  # bytes; a larger upload is served the werkzeug way, then closed


class KeepAliveHandler(WSGIRequestHandler):
    """A request handler that keeps connections alive and logs paths without query strings.

    werkzeug ends every response with "Connection: close" because http.server cannot skip a
    body the application left unread. Entra keeps connections alive, and clients (MSAL's
    requests session) reuse them: a new TLS handshake per call would misstate their cost. So a
    request's body (by its Content-Length) is read in full before the application runs, and
    the connection is kept; chunked or very large uploads are served as before and closed.
    """

    timeout = KEEP_ALIVE_SECONDS  # an idle kept connection gives its thread back
    # Headers and body leave in two writes; on a kept connection Nagle's algorithm would hold
    # the body until the client's delayed ACK (~40 ms) arrives.
    disable_nagle_algorithm = True
    keep_alive = False

    def parse_request(self) -> bool:
        """Parse the next request line and headers; a malformed one still closes."""
        self.keep_alive = False
        return bool(super().parse_request())

    def run_wsgi(self) -> None:
        """Serve one request; keep the connection when its body was read whole."""
        length = self.headers.get("Content-Length") or "0"
        chunked = self.headers.get("Transfer-Encoding") is not None
        self.keep_alive = not chunked and length.isdigit() and int(length) <= MAX_KEPT_BODY
        if not self.keep_alive:
            super().run_wsgi()
            return
        # werkzeug reads whatever follows a response to throw it away, which would swallow the
        # next request: it gets this request's body, read here, and the socket stays ours.
        socket_file = self.rfile
        self.rfile = io.BytesIO(socket_file.read(int(length)))
        try:
            super().run_wsgi()
        finally:
            self.rfile = socket_file

    def send_header(self, keyword: str, value: str) -> None:
        """Drop werkzeug's "Connection: close" when the body was read whole."""
        if keyword.lower() == "connection" and value == "close" and self.keep_alive:
            return
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path without query and status."""
        log.debug("%s %s %s", self.command, self.path.split("?", 1)[0], code)

    def log_error(self, format: str, *args: Any) -> None:
        """Keep handshake noise out of the console."""
        log.debug(format, *args)


class ServerThread:
    """One werkzeug server on 127.0.0.1 in a daemon thread; port 0 picks a free port."""

    def __init__(self, app: Flask, port: int, ssl_context: Any = None) -> None:
        """Bind the server now; start() serves."""
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1",
            port,
            app,
            threaded=True,
            ssl_context=ssl_context,
            request_handler=KeepAliveHandler,
        )
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        """Start serving."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
