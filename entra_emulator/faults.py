"""Fault injection: delays, failures and dropped connections that the control plane arms."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask import Response
from werkzeug.exceptions import HTTPException

from entra_emulator.errors import EntraError
from entra_emulator.request_log import record_fault
from entra_emulator.runtime import Runtime

FAULTABLE = ("token", "discovery", "authorize")


class FaultInjector:
    """WSGI middleware that delays, fails or drops requests as the control plane armed it."""

    def __init__(self, app: Flask, runtime: Runtime) -> None:
        """Wrap the app's WSGI callable."""
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
            status = "dropped" if fault.drop else (fault.status or 0)
            record_fault(self.runtime.state, environ, name, status)
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
