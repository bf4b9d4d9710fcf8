"""/authorize: request validation, the consent and admin-approval pages, and code issuance."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from urllib.parse import urlsplit

from flask import Response
from flask import request

from entra_emulator import consent
from entra_emulator import scopes
from entra_emulator import signin
from entra_emulator.errors import EntraError
from entra_emulator.minting import client_info
from entra_emulator.pages import render
from entra_emulator.pages import to_app
from entra_emulator.runtime import current
from entra_emulator.runtime import resolve
from entra_emulator.state import Code
from entra_emulator.state import ConsentRequest
from entra_emulator.state import Flow
from entra_emulator.state import fingerprint
from entra_emulator.state import new_secret
from entra_emulator.world import App
from entra_emulator.world import User

LOOPBACK = ("localhost", "127.0.0.1")
log = logging.getLogger(__name__)


def find_app(client_id: str | None, tenant: str) -> App:
    """Return the registered app, or raise the 700016 page."""
    app = current().state.world.apps.get((client_id or "").lower())
    if app is None:
        raise EntraError(700016, client_id=client_id or "", tenant=tenant).page()
    return app


def same_uri(registered: str, sent: str) -> bool:
    """Return True if sent matches a registered redirect URI (ports ignored on loopback)."""
    r, s = urlsplit(registered), urlsplit(sent)
    if r.scheme != s.scheme or (r.hostname or "") != (s.hostname or "").lower():
        return False
    if r.hostname not in LOOPBACK and r.port != s.port:
        return False
    return (r.path or "/") == (s.path or "/") and r.query == s.query


def match_redirect(app: App, sent: str | None) -> str:
    """Return the redirect URI to use, or raise the page for a missing or unknown one."""
    if not app.redirect_uris:
        raise EntraError(500113).page()
    if not sent:
        raise EntraError(900971).page()
    if not any(same_uri(reg, sent) for reg in app.redirect_uris):
        raise EntraError(50011, redirect_uri=sent, client_id=app.client_id).page()
    parts = urlsplit(sent)
    return sent if parts.path else sent.replace(parts.netloc, parts.netloc + "/", 1)


def authorize(tenant: str) -> Response:
    """Validate an authorize request, then start the sign-in flow (4.3 steps 1 and 2)."""
    segment, tid = resolve(tenant, surface="page")
    params = request.args if request.method == "GET" else request.form
    app = find_app(params.get("client_id"), tenant)
    redirect_uri = match_redirect(app, params.get("redirect_uri"))
    state, mode = params.get("state"), params.get("response_mode", "query")
    try:
        _check_protocol(params.get("response_type", ""), params)
        scopes.parse(current().state.world, scopes.split(params.get("scope"))[1])
    except EntraError as exc:
        raise exc.redirect(redirect_uri, state, mode) from None
    flow = signin.new_flow("authorize", segment, tid, app.client_id, redirect_uri)
    flow.params = dict(params.items())
    return signin.start(flow)


def _check_protocol(response_type: str, params: dict[str, str]) -> None:
    """Raise the redirect errors for response_type, scope and PKCE problems."""
    if response_type != "code":
        raise EntraError(700054, response_type=response_type)
    if not params.get("scope"):
        raise EntraError(900144, parameter="scope")
    if params.get("code_challenge_method", "plain") not in ("S256", "plain"):
        raise EntraError(9002313)


def finish(flow: Flow, user: User) -> Response:
    """Decide between a code, the consent page and the admin-approval pages."""
    state = current().state
    app = state.world.apps[flow.client_id]
    consent.check_app(state, app, user)
    refs = scopes.parse(state.world, scopes.split(flow.params.get("scope"))[1])
    prompt = flow.params.get("prompt", "")
    decision = consent.decide(state, app, user, refs, prompt)
    if decision.kind == "issue":
        return issue_code(flow, user)
    if decision.kind == "personal":
        raise EntraError(500208).page()
    if prompt == "none":
        error = EntraError(
            65001, error="consent_required", client_id=app.client_id, app_name=app.name
        )
        raise error.redirect(flow.redirect_uri, flow.params.get("state"), _mode(flow))
    items = permission_items(decision.missing)
    offline = "offline_access" in flow.params.get("scope", "").split()
    template = {"consent": "consent.html", "need_admin": "need_admin.html"}
    details = EntraError(90094 if decision.kind == "need_admin" else 90095)
    return render(
        template.get(decision.kind, "approval.html"),
        details=details,
        flow=flow,
        app=app,
        user=user,
        items=items,
        admin=decision.admin,
        offline=offline,
        action="/consent",
    )


def permission_items(lacking: dict[str, set[str]]) -> list[dict[str, str]]:
    """Return one row per permission for the consent and approval pages."""
    world = current().state.world
    rows = []
    for resource, scope_names in lacking.items():
        definition = world.resource_for(resource)
        for name in sorted(scope_names):
            scope = definition.scopes.get(name) if definition else None
            rows.append(
                {
                    "resource": definition.name if definition else resource,
                    "name": name,
                    "description": scope.description if scope else name,
                }
            )
    return rows


def _mode(flow: Flow) -> str:
    """Return the flow's response mode."""
    return flow.params.get("response_mode", "query")


def issue_code(flow: Flow, user: User) -> Response:
    """Create a single-use code bound to the request and send it to the app."""
    state = current().state
    code = new_secret("1.A")
    state.codes[code] = Code(
        client_id=flow.client_id,
        redirect_uri=flow.params.get("redirect_uri", ""),
        challenge=flow.params.get("code_challenge"),
        method=flow.params.get("code_challenge_method", "plain"),
        nonce=flow.params.get("nonce"),
        scopes=flow.params.get("scope", "").split(),
        username=user.username,
        tenant=user.tenant,
        segment=flow.segment,
        session_id=flow.session_id,
        auth_time=int(time.time()),
        mfa=user.username in state.sessions[flow.session_id].mfa_done,
    )
    state.flows.pop(flow.id, None)
    log.info("issued code %s to %s for %s", fingerprint(code), flow.client_id, user.username)
    params = {"code": code}
    if flow.params.get("client_info") == "1":
        params["client_info"] = client_info(user)
    if flow.params.get("state") is not None:
        params["state"] = flow.params["state"]
    params["session_state"] = str(uuid.UUID(state.sessions[flow.session_id].session_state))
    return to_app(flow.redirect_uri, params, _mode(flow))


def decide_consent() -> Response:
    """Handle Accept or Cancel on the consent page (GET shows, POST decides)."""
    flow = signin.load_flow(request.form.get("ctx", ""))
    if flow.kind != "authorize" or flow.username is None:
        raise EntraError(9002313).page()
    state = current().state
    app, user = state.world.apps[flow.client_id], state.world.users[flow.username]
    if request.form.get("decision") != "accept":
        return cancel(flow, subcode=False)
    refs = scopes.parse(state.world, scopes.split(flow.params.get("scope"))[1])
    decision = consent.decide(state, app, user, refs, "consent")
    if decision.kind != "consent":
        raise EntraError(90094).page()  # a forged Accept from a user who may not consent
    on_behalf = request.form.get("on_behalf") == "1"
    consent.record(state, app, user, decision.missing, org=on_behalf and decision.admin)
    return issue_code(flow, user)


def cancel(flow: Flow, subcode: bool = True) -> Response:
    """Return to the app with access_denied and AADSTS65004 (error_subcode=cancel from links)."""
    current().state.flows.pop(flow.id, None)
    extra = {"error_subcode": "cancel"} if subcode else {}
    error = EntraError(65004).redirect(flow.redirect_uri, flow.params.get("state"), _mode(flow))
    params = error.params | extra
    return to_app(flow.redirect_uri, params, _mode(flow))


def cancel_link() -> Response:
    """Follow "Return to the application without granting consent" or "Back to app"."""
    return cancel(signin.load_flow(request.args.get("ctx", "")))


def request_approval() -> Response:
    """Record an admin consent workflow request (90095) and show that it was sent."""
    flow = signin.load_flow(request.form.get("ctx", ""))
    state = current().state
    if flow.username is None:
        raise EntraError(9002313).page()
    app, user = state.world.apps[flow.client_id], state.world.users[flow.username]
    refs = scopes.parse(state.world, scopes.split(flow.params.get("scope"))[1])
    lacking = consent.missing(state, app, user, refs)
    pending = ConsentRequest(
        id=secrets.token_hex(8),
        tenant=user.tenant,
        client_id=app.client_id,
        username=user.username,
        scopes=sorted(f"{res}/{name}" for res, ns in lacking.items() for name in ns),
        justification=request.form.get("justification", "")[:1000],
    )
    state.consent_requests[pending.id] = pending
    return render("request_sent.html", flow=flow, app=app, details=EntraError(90095))


signin.FINISHERS["authorize"] = finish
