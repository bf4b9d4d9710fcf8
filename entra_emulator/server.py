"""The emulator's Flask apps, their route table, fault injection and the serving threads."""

from __future__ import annotations

import functools
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask import Response
from flask import g
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from entra_emulator import adminconsent
from entra_emulator import authorize
from entra_emulator import control
from entra_emulator import discovery
from entra_emulator import graph
from entra_emulator import issued
from entra_emulator import logout
from entra_emulator import resources
from entra_emulator import signin
from entra_emulator import token
from entra_emulator.errors import PAGE_TITLES
from entra_emulator.errors import EntraError
from entra_emulator.pages import render
from entra_emulator.pages import to_app
from entra_emulator.runtime import EXTENSION
from entra_emulator.runtime import Runtime
from entra_emulator.runtime import current

log = logging.getLogger("entra_emulator")
BROWSER, BACK, CONTROL = "browser", "back-channel", "control"
FAULTABLE = ("token", "discovery", "authorize")


@dataclass(frozen=True)
class Route:
    rule: str
    methods: tuple[str, ...]
    view: Callable[..., ResponseReturnValue]
    surface: str  # browser pages also answer on HTTP; back-channel and control only on HTTPS
    name: str  # the request log's and the fault injector's endpoint name


ROUTES = [
    Route("/<tenant>/v2.0/.well-known/openid-configuration", ("GET",),
          discovery.openid_configuration, BACK, "discovery"),
    Route("/<tenant>/discovery/v2.0/keys", ("GET",), discovery.jwks, BACK, "keys"),
    Route("/common/discovery/instance", ("GET",), discovery.instance_discovery, BACK, "instance"),
    Route("/<tenant>/oauth2/v2.0/token", ("GET", "POST"), token.token, BACK, "token"),
    Route("/<tenant>/oauth2/v2.0/authorize", ("GET", "POST"), authorize.authorize, BROWSER,
          "authorize"),
    Route("/login", ("POST",), signin.login, BROWSER, "authorize"),
    Route("/login/switch", ("GET",), signin.switch_account, BROWSER, "authorize"),
    Route("/consent", ("POST",), authorize.decide_consent, BROWSER, "authorize"),
    Route("/consent/cancel", ("GET",), authorize.cancel_link, BROWSER, "authorize"),
    Route("/consent/request", ("POST",), authorize.request_approval, BROWSER, "authorize"),
    Route("/<tenant>/v2.0/adminconsent", ("GET",), adminconsent.admin_consent_v2, BROWSER,
          "adminconsent"),
    Route("/<tenant>/adminconsent", ("GET",), adminconsent.admin_consent_v1, BROWSER,
          "adminconsent"),
    Route("/adminconsent/decide", ("POST",), adminconsent.decide, BROWSER, "adminconsent"),
    Route("/<tenant>/oauth2/v2.0/logout", ("GET", "POST"), logout.logout, BROWSER, "logout"),
    Route("/error", ("GET",), discovery.error_lookup, BROWSER, "error"),
    Route("/graph/<path:path>", ("GET",), graph.graph, BACK, "graph"),
    Route("/dynamics/<org>/api/data/v9.2/WhoAmI", ("GET",), resources.dynamics_whoami, BACK,
          "dynamics"),
    Route("/dynamics/<org>/api/data/v9.2/WhoAmI()", ("GET",), resources.dynamics_whoami, BACK,
          "dynamics"),
    Route("/storage/<account>/", ("GET",), resources.storage_list, BACK, "storage"),
    *[Route(f"/_emulator{rule}", methods, view, CONTROL, "control")
      for rule, methods, view in control.ROUTES],
]  # fmt: skip


def build_app(runtime: Runtime, surfaces: Iterable[str]) -> Flask:
    """Return a Flask app serving the routes of the given surfaces."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = runtime
    app.url_map.strict_slashes = False
    for route in ROUTES:
        if route.surface in surfaces:
            view = _locked(runtime, route.view)
            endpoint = f"{route.name}:{route.view.__name__}:{route.rule}"
            app.add_url_rule(route.rule, endpoint, view, methods=list(route.methods))
    app.register_error_handler(EntraError, _render_error)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(control.ControlError, _render_control_error)
    app.after_request(signin.set_cookie)
    app.after_request(_record)
    app.wsgi_app = _FaultInjector(app, runtime)  # type: ignore[method-assign]
    return app


def _locked(runtime: Runtime, view: Callable[..., ResponseReturnValue]) -> Callable[..., Any]:
    """Wrap a view so that it runs under the state lock: one request changes state at a time."""

    @functools.wraps(view)
    def run(**kwargs: Any) -> ResponseReturnValue:
        with runtime.state.lock:
            return view(**kwargs)

    return run


def _render_error(error: EntraError) -> ResponseReturnValue:
    """Answer an AADSTS error as Entra does: JSON, an error page or a redirect to the app."""
    runtime: Runtime = current()
    log.info("AADSTS%s (%s) on %s", error.code, error.surface, request.path)
    g.log_fields = getattr(g, "log_fields", {}) | {"error_codes": [error.code]}
    error.correlation_id = request.headers.get("client-request-id", error.correlation_id)
    if error.surface == "page":
        title = PAGE_TITLES.get(error.code, "Sorry, but we're having trouble signing you in.")
        return render("error.html", status=400, error=error, title=title)
    if error.surface == "redirect":
        return to_app(error.redirect_uri, error.params, error.response_mode)
    response = jsonify(error.body(runtime.browser_url))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _render_http_error(error: HTTPException) -> ResponseReturnValue:
    """Answer unknown routes and methods with a small JSON body."""
    return {"error": "not_found" if error.code == 404 else "invalid_request"}, error.code or 500


def _render_control_error(error: control.ControlError) -> ResponseReturnValue:
    """Answer a control-plane request that could not be applied."""
    return {"error": "invalid_request", "message": str(error)}, 400


def _record(response: Response) -> Response:
    """Append this request to the request log (control-plane calls excluded)."""
    rule = request.url_rule
    name = rule.endpoint.split(":", 1)[0] if rule else "unknown"
    if name == "control":
        return response
    entry = {
        "time": time.time(),
        "endpoint": name,
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "client_id": request.values.get("client_id"),
        "grant_type": None,
        "username": None,
    } | getattr(g, "log_fields", {})
    runtime = current()
    with runtime.state.lock:
        runtime.state.record(entry)
        runtime.state.issued.update(issued.secrets_in(response))
    return response


class _FaultInjector:
    """WSGI middleware that delays, fails or drops requests as the control plane armed it."""

    def __init__(self, app: Flask, runtime: Runtime) -> None:
        self.app, self.inner, self.runtime = app, app.wsgi_app, runtime

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Apply an armed fault, or pass the request through."""
        name = self._endpoint(environ)
        if name not in FAULTABLE:
            return self.inner(environ, start_response)
        with self.runtime.state.lock:
            fault = self.runtime.state.take_fault(name)
        if fault is None:
            return self.inner(environ, start_response)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.drop or fault.status:
            self._log(environ, name, "dropped" if fault.drop else (fault.status or 0))
        if fault.drop:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("connection dropped by fault injection")
        if fault.status:
            return self._fail(fault.status, fault.retry_after, name)(environ, start_response)
        return self.inner(environ, start_response)

    def _endpoint(self, environ: dict[str, Any]) -> str:
        """Return the endpoint name of the route this request would reach."""
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return ""
        return str(endpoint).split(":", 1)[0]

    def _fail(self, status: int, retry_after: int | None, name: str) -> Response:
        """Return the injected failure: Entra error JSON, or a page for authorize."""
        error = EntraError(90033, error="server_error" if status == 500 else None, status=status)
        if name == "authorize":
            response = Response(f"AADSTS90033: {error.message}", status=status)
        else:
            response = Response(status=status, mimetype="application/json")
            response.set_data(json.dumps(error.body(self.runtime.browser_url)))
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def _log(self, environ: dict[str, Any], name: str, status: int | str) -> None:
        """Record a request that the fault injector answered."""
        form = Request(environ).form if name == "token" else {}
        entry = {
            "time": time.time(),
            "endpoint": name,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": status,
            "client_id": form.get("client_id"),
            "grant_type": form.get("grant_type"),
            "username": None,
            "fault": True,
        }
        with self.runtime.state.lock:
            self.runtime.state.record(entry)


KEEP_ALIVE_SECONDS = 30
MAX_KEPT_BODY = 1 << 20  # bytes; a larger upload is served the werkzeug way, then closed


class _Handler(WSGIRequestHandler):
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
    """One werkzeug server in a daemon thread."""

    def __init__(self, app: Flask, port: int, ssl_context: Any = None) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1",
            port,
            app,
            threaded=True,
            ssl_context=ssl_context,
            request_handler=_Handler,
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
