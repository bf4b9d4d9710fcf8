"""Fault injection: delays, failures and dropped connections that the control plane arms."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from entra_emulator import dataverse
from entra_emulator import graph_common
from entra_emulator import storage
from entra_emulator.errors import EntraError
from entra_emulator.request_log import RECEIVED
from entra_emulator.request_log import record_fault
from entra_emulator.runtime import Runtime

FAULTABLE = ("token", "discovery", "authorize", "graph", "dynamics", "storage")
# The resource APIs answer a fault in their own error shape; path_prefix is matched below
# each API's base URL (what the portal's RESOURCE_URLS map to), e.g. /v1.0/me/messages.
API_FAULTS: dict[str, tuple[str, Callable[[int], Response]]] = {
    "graph": (r"/graph", graph_common.fault_response),
    "dynamics": (r"/dynamics/[^/]+", dataverse.fault_response),
    "storage": (r"/storage/[^/]+", storage.fault_response),
}


class FaultInjector:
    """WSGI middleware that delays, fails or drops requests as the control plane armed it."""

    def __init__(self, app: Flask, runtime: Runtime) -> None:
        """Wrap the app's WSGI callable."""
        self.app, self.inner, self.runtime = app, app.wsgi_app, runtime

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Apply an armed fault, or pass the request through."""
        environ[RECEIVED] = time.time()  # before any injected latency: when the request came
        if not self.runtime.state.faults:  # nothing armed: no second routing of the request
            return self.inner(environ, start_response)
        name = self._endpoint(environ)
        if name not in FAULTABLE:
            return self.inner(environ, start_response)
        path = str(environ.get("PATH_INFO", ""))
        if name in API_FAULTS:
            path = re.sub(f"^{API_FAULTS[name][0]}", "", path)
        with self.runtime.state.lock:
            fault = self.runtime.state.take_fault(name, path)
        if fault is None:
            return self.inner(environ, start_response)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.drop or fault.status:
            status = "dropped" if fault.drop else (fault.status or 0)
            record_fault(self.runtime.state, environ, name, status)
        if fault.drop:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("connection dropped by fault injection")
        if fault.status:
            failure = self._fail(environ, fault.status, fault.retry_after, name)
            return failure(environ, start_response)
        return self.inner(environ, start_response)

    def _endpoint(self, environ: dict[str, Any]) -> str:
        """Return the endpoint name of the route this request would reach."""
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return ""
        return str(endpoint).split(":", 1)[0]

    def _fail(
        self, environ: dict[str, Any], status: int, retry_after: int | None, name: str
    ) -> Response:
        """Return the injected failure: the API's own error, Entra error JSON, or a page."""
        if name in API_FAULTS:
            with self.app.request_context(environ):  # the error builders read the request
                response = API_FAULTS[name][1](status)
        elif name == "authorize":
            error = EntraError(
                90033, error="server_error" if status == 500 else None, status=status
            )
            response = Response(f"AADSTS90033: {error.message}", status=status)
        else:
            error = EntraError(
                90033, error="server_error" if status == 500 else None, status=status
            )
            response = Response(status=status, mimetype="application/json")
            response.set_data(json.dumps(error.body(self.runtime.browser_url)))
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response
