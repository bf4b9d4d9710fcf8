"""/logout: end the emulator session and return only to a registered URI (protocol 2.7)."""

from __future__ import annotations

from flask import Response
from flask import request

from entra_emulator import signin
from entra_emulator.authorize import same_uri
from entra_emulator.pages import render
from entra_emulator.pages import to_app
from entra_emulator.runtime import current
from entra_emulator.runtime import resolve


def logout(tenant: str) -> Response:
    """Clear the session; redirect to post_logout_redirect_uri if some app registered it."""
    resolve(tenant, surface="page")
    values = request.values
    signin.end_session()
    target = values.get("post_logout_redirect_uri", "")
    apps = current().state.world.apps
    client_id = values.get("client_id", "").lower()
    candidates = [apps[client_id]] if client_id in apps else list(apps.values())
    if target and any(same_uri(uri, target) for app in candidates for uri in app.redirect_uris):
        params = {"state": values["state"]} if "state" in values else {}
        response = to_app(target, params)
    else:
        response = render("signed_out.html")
    response.delete_cookie(signin.COOKIE, path="/")
    return response
