"""The emulator's Flask apps: the route table, the state lock and the error answers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask import g
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from entra_emulator import adminconsent
from entra_emulator import authorize
from entra_emulator import conditional_access
from entra_emulator import control
from entra_emulator import control_data
from entra_emulator import dataverse
from entra_emulator import discovery
from entra_emulator import graph
from entra_emulator import guests
from entra_emulator import logout
from entra_emulator import signin
from entra_emulator import storage
from entra_emulator import token_endpoint
from entra_emulator.errors import PAGE_TITLES
from entra_emulator.errors import EntraError
from entra_emulator.faults import FaultInjector
from entra_emulator.pages import render
from entra_emulator.pages import to_app
from entra_emulator.request_log import record_response
from entra_emulator.runtime import EXTENSION
from entra_emulator.runtime import Runtime
from entra_emulator.runtime import current

log = logging.getLogger(__name__)
BROWSER, BACK, CONTROL = "browser", "back-channel", "control"


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
    Route("/<tenant>/oauth2/v2.0/token", ("GET", "POST"), token_endpoint.token, BACK, "token"),
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
    Route("/graph/<path:path>", ("GET", "PATCH", "DELETE"), graph.graph, BACK, "graph"),
    Route("/dynamics/<org>/api/data/v9.2/WhoAmI", ("GET",), dataverse.dynamics_whoami, BACK,
          "dynamics"),
    Route("/dynamics/<org>/api/data/v9.2/WhoAmI()", ("GET",), dataverse.dynamics_whoami, BACK,
          "dynamics"),
    Route("/dynamics/<org>/api/data/v9.2/<name>", ("GET",), dataverse.entity_set, BACK,
          "dynamics"),
    Route("/storage/<account>/", ("GET",), storage.storage_list, BACK, "storage"),
    Route("/storage/<account>/<name>", ("GET",), storage.container, BACK, "storage"),
    Route("/storage/<account>/<name>/<path:path>", ("GET",), storage.blob, BACK, "storage"),
    *[Route(f"/_emulator{rule}", methods, view, CONTROL, "control")
      for rule, methods, view in [*control.ROUTES, *control_data.ROUTES,
                                  *conditional_access.ROUTES, *guests.ROUTES]],
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
    app.after_request(record_response)
    app.wsgi_app = FaultInjector(app, runtime)  # type: ignore[method-assign]
    return app


def _locked(runtime: Runtime, view: Callable[..., ResponseReturnValue]) -> Callable[..., Any]:
    """Wrap a view so that it runs under the state lock: one request changes state at a time."""

    @functools.wraps(view)
    def run(**kwargs: Any) -> ResponseReturnValue:
        """Run the view holding the state lock."""
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
