"""Tenant-wide consent: /{tenant}/v2.0/adminconsent (scoped) and /{tenant}/adminconsent (v1)."""

from __future__ import annotations

from flask import Response
from flask import request

from entra_emulator import consent
from entra_emulator import scopes
from entra_emulator import signin
from entra_emulator.authorize import find_app
from entra_emulator.authorize import match_redirect
from entra_emulator.authorize import permission_items
from entra_emulator.errors import EntraError
from entra_emulator.pages import render
from entra_emulator.pages import to_app
from entra_emulator.runtime import current
from entra_emulator.runtime import resolve
from entra_emulator.state import Flow
from entra_emulator.world import App
from entra_emulator.world import User


def admin_consent_v2(tenant: str) -> Response:
    """Start v2 admin consent for the scopes in the request (2.5)."""
    return _start(tenant, "adminconsent")


def admin_consent_v1(tenant: str) -> Response:
    """Start v1 admin consent for every permission configured on the app (2.5)."""
    return _start(tenant, "adminconsent-v1")


def _start(tenant: str, kind: str) -> Response:
    """Validate the request and sign the admin in."""
    segment, tid = resolve(tenant, surface="page")
    app = find_app(request.args.get("client_id"), tenant)
    if segment in ("common", "consumers"):  # personal accounts cannot give admin consent
        raise EntraError(90130, client_id=app.client_id).page()
    sent = request.args.get("redirect_uri") or (app.redirect_uris or [""])[0]
    redirect_uri = match_redirect(app, sent)
    if kind == "adminconsent":
        try:
            if not request.args.get("scope"):
                raise EntraError(900144, parameter="scope")
            scopes.parse(current().state.world, scopes.split(request.args["scope"])[1])
        except EntraError as exc:
            raise exc.redirect(
                redirect_uri, request.args.get("state"), admin_consent="True"
            ) from None
    flow = signin.new_flow(kind, segment, tid, app.client_id, redirect_uri)
    flow.params.pop("prompt", None)  # the admin consent page is always shown
    return signin.start(flow)


def _requested(flow: Flow, app: App) -> dict[str, set[str]]:
    """Return the permissions this admin consent covers, per resource."""
    world = current().state.world
    if flow.kind == "adminconsent":
        raws = scopes.split(flow.params.get("scope"))[1]
    else:
        raws = app.required_permissions
    refs = scopes.parse(world, raws)
    return {res: scopes.names(app, group) for res, group in scopes.by_resource(refs).items()}


def finish(flow: Flow, user: User) -> Response:
    """Show the admin form of the consent page, or stop non-admins at 90093."""
    state = current().state
    app = state.world.apps[flow.client_id]
    if user.personal:
        raise EntraError(500208).page()
    if not consent.is_admin(user):
        raise EntraError(90093).page()
    items = permission_items(_requested(flow, app))
    return render(
        "consent.html",
        flow=flow,
        app=app,
        user=user,
        items=items,
        admin=False,
        org_wide=True,
        offline=False,
        action="/adminconsent/decide",
    )


def decide() -> Response:
    """Record tenant-wide grants on Accept; answer the app either way (checklist 32-33)."""
    flow = signin.load_flow(request.form.get("ctx", ""))
    if not flow.kind.startswith("adminconsent") or flow.username is None:
        raise EntraError(9002313).page()
    state = current().state
    app, user = state.world.apps[flow.client_id], state.world.users[flow.username]
    state.flows.pop(flow.id, None)
    params = {"admin_consent": "True"}
    if request.form.get("decision") != "accept" or not consent.is_admin(user):
        error = EntraError(65004, error="consent_required")
        error.redirect(flow.redirect_uri, flow.params.get("state"), admin_consent="True")
        return to_app(flow.redirect_uri, error.params)
    for resource, scope_names in _requested(flow, app).items():
        state.add_grant(user.tenant, app.client_id, resource, sorted(scope_names), None)
    params["tenant"] = user.tenant
    if flow.kind == "adminconsent":
        params["scope"] = " ".join(scopes.split(flow.params.get("scope"))[1])
    if flow.params.get("state") is not None:
        params["state"] = flow.params["state"]
    return to_app(flow.redirect_uri, params)


signin.FINISHERS["adminconsent"] = finish
signin.FINISHERS["adminconsent-v1"] = finish
