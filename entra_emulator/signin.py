"""The browser session (ESTSAUTH cookie), sign-in flows and the email, password and picker pages."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from flask import Response
from flask import g
from flask import request

from entra_emulator import conditional_access
from entra_emulator.errors import EntraError
from entra_emulator.guests import account_at
from entra_emulator.pages import render
from entra_emulator.runtime import allows_user
from entra_emulator.runtime import current
from entra_emulator.state import BrowserSession
from entra_emulator.state import Flow
from entra_emulator.world import User

COOKIE = "ESTSAUTH"  # distinct from the portal's cookie: cookies ignore ports (pitfall 23)
FLOW_LIFETIME = 3600
# Flow kind -> what happens once a user is known; authorize.py and consent.py register here.
FINISHERS: dict[str, Callable[[Flow, User], Response]] = {}
log = logging.getLogger(__name__)


def browser_session() -> BrowserSession:
    """Return this browser's emulator session, starting one if needed."""
    sessions = current().state.sessions
    sid = getattr(g, "emulator_sid", None) or request.cookies.get(COOKIE, "")
    if sid not in sessions:
        sid = secrets.token_urlsafe(32)
        sessions[sid] = BrowserSession(sid)
    g.emulator_sid = sid
    return sessions[sid]


def set_cookie(response: Response) -> Response:
    """Send the session cookie when this request started or used a session."""
    sid = getattr(g, "emulator_sid", None)
    if sid and request.cookies.get(COOKIE) != sid:
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Lax", path="/")
    return response


def end_session() -> None:
    """Forget this browser's session (logout)."""
    sid = request.cookies.get(COOKIE, "")
    current().state.sessions.pop(sid, None)
    g.emulator_sid = None


def start(flow: Flow) -> Response:
    """Store a new flow and take it as far as it goes without the user."""
    state = current().state
    cutoff = time.time() - FLOW_LIFETIME
    for key in [k for k, f in state.flows.items() if f.created < cutoff]:
        del state.flows[key]
    prompt = flow.params.get("prompt", "")
    flow.force_login = prompt == "login"
    flow.pick_account = prompt == "select_account"
    state.flows[flow.id] = flow
    return proceed(flow)


def new_flow(
    kind: str, segment: str, tenant: str | None, client_id: str, redirect_uri: str
) -> Flow:
    """Return a flow bound to this browser's session."""
    params = dict(request.args.items())
    session = browser_session()
    return Flow(
        id=secrets.token_urlsafe(24),
        kind=kind,
        segment=segment,
        params=params,
        session_id=session.id,
        client_id=client_id,
        redirect_uri=redirect_uri,
        tenant=tenant,
    )


def proceed(flow: Flow) -> Response:
    """Show the next sign-in page, or hand a signed-in user to the flow's finisher."""
    user = _known_user(flow)
    if user is not None:
        # Conditional Access decides once the user is known; prompt=none gets it as a redirect.
        silent = flow.params.get("prompt") == "none"
        if user.access.blocked:
            error = EntraError(53003, suberror="message_only")
            raise _back_to_app(flow, error) if silent else error.page()
        if user.access.mfa != "off" and user.username not in browser_session().mfa_done:
            if silent:
                raise _back_to_app(flow, EntraError(50076, error="interaction_required"))
            return _mfa_page(flow, user)
        return FINISHERS[flow.kind](flow, user)
    if flow.params.get("prompt") == "none":
        raise _back_to_app(flow, EntraError(50058, error="login_required"))
    session = browser_session()
    if flow.pick_account and session.accounts:
        return render("picker.html", flow=flow, accounts=session.accounts)
    return email_page(flow, flow.params.get("login_hint", ""))


def _back_to_app(flow: Flow, error: EntraError) -> EntraError:
    """Return an error sent to the app's redirect URI, as a prompt=none request gets it."""
    mode = flow.params.get("response_mode", "query")
    return error.redirect(flow.redirect_uri, flow.params.get("state"), mode)


def _known_user(flow: Flow) -> User | None:
    """Return the flow's user, reusing the browser session unless the prompt forbids it."""
    users = current().state.world.users
    if flow.username:
        return users[flow.username]
    if flow.force_login or flow.pick_account:
        return None
    accounts = browser_session().accounts
    hint = flow.params.get("login_hint", "").lower()
    name = hint if hint in accounts else (accounts[-1] if accounts and not hint else None)
    if name is None or name not in users or users[name].deleted:
        return None
    account = account_here(flow, users[name])
    if account is None:
        return None
    flow.username = account.username
    return account


def account_here(flow: Flow, person: User) -> User | None:
    """Return who a person is at the flow's tenant path: themselves, their guest object, or None.

    organizations and common mean the home tenant; another tenant's path, its guest object.
    """
    if flow.tenant is None:
        return person if allows_user(flow.segment, None, person.tenant) else None
    return account_at(current().state.world, person, flow.tenant)


def email_page(flow: Flow, username: str = "", error: str = "") -> Response:
    """Render the first sign-in step: Email address and Next."""
    return render("signin_email.html", flow=flow, username=username, error=error)


def load_flow(flow_id: str) -> Flow:
    """Return the flow a form belongs to, if it belongs to this browser."""
    flow = current().state.flows.get(flow_id)
    if flow is None or flow.session_id != browser_session().id:
        raise EntraError(9002313).page()  # expired, or another browser's flow
    return flow


def login() -> Response:
    """Handle the sign-in forms: email, password and the account picker."""
    flow = load_flow(request.form.get("ctx", ""))
    step = request.form.get("step", "")
    username = request.form.get("username", "").strip().lower()
    if step == "pick":
        users = current().state.world.users
        account = account_here(flow, users[username]) if username in users else None
        if username in browser_session().accounts and account is not None:
            flow.username, flow.pick_account = account.username, False
            return proceed(flow)
        flow.pick_account = False
        return email_page(flow)
    users = current().state.world.users
    user = users.get(username)
    if user is not None and user.home in users:  # a guest object's name: the person signs in
        user = users[user.home]
    if user is None or user.deleted:
        message = EntraError(50034, username=username).message
        return email_page(flow, username, f"AADSTS50034: {message}")
    _check_account_fits(flow, user)
    if step == "password":
        return _check_password(flow, user, request.form.get("password", ""))
    if step == "update_password" and flow.pending == user.username:
        return _update_password(flow, user)
    if step == "mfa" and flow.username in (user.username, _here_name(flow, user)):
        return _check_mfa(flow, user, request.form.get("otc", "").strip())
    return render("signin_password.html", flow=flow, username=user.username, error="")


def _check_account_fits(flow: Flow, user: User) -> None:
    """Raise the page Entra shows when an account cannot sign in at this tenant path."""
    app = current().state.world.apps[flow.client_id]
    if user.personal and (flow.segment not in ("common", "consumers") or not app.personal_accounts):
        raise EntraError(500208).page()
    if account_here(flow, user) is None:
        idp = "live.com" if user.personal else "Entra ID"
        tenant = flow.tenant or flow.segment
        raise EntraError(
            50020, username=user.username, idp=idp, tenant=tenant, client_id=flow.client_id
        ).page()


def _check_password(flow: Flow, user: User, password: str) -> Response:
    """Sign the user in, or show the password page again (50126, or 50057 when disabled)."""
    if not secrets.compare_digest(password.encode(), user.password.encode()):
        return _password_refused(flow, user, 50126)
    if user.disabled:  # the password was right; Entra then refuses the account itself
        return _password_refused(flow, user, 50057)
    if user.password_expired:  # AADSTS50055: Entra asks for a new password before going on
        flow.pending = user.username
        return _update_page(flow, user, "")
    return _signed_in(flow, user)


def _signed_in(flow: Flow, user: User) -> Response:
    """Add the user to this browser's accounts and go on with the flow."""
    session = browser_session()
    if user.username in session.accounts:
        session.accounts.remove(user.username)
    session.accounts.append(user.username)  # the person; at a guest's path, their guest object
    flow.username = _here_name(flow, user)
    flow.force_login, flow.pick_account = False, False
    log.info("signed in %s", user.username)
    return proceed(flow)


def _password_refused(flow: Flow, user: User, code: int) -> Response:
    """Show the password page again with the AADSTS error that stopped the sign-in."""
    log.info("sign-in refused for %s (AADSTS%s)", user.username, code)
    message = EntraError(code).message
    return render(
        "signin_password.html", flow=flow, username=user.username, error=f"AADSTS{code}: {message}"
    )


def _update_page(flow: Flow, user: User, error: str) -> Response:
    """Render Entra's "Update your password" page (an expired password, AADSTS50055)."""
    return render("signin_update_password.html", flow=flow, username=user.username, error=error)


def _update_password(flow: Flow, user: User) -> Response:
    """Check the current password and a new one typed twice; then the sign-in goes on."""
    current_password = request.form.get("current_password", "")
    new, again = request.form.get("new_password", ""), request.form.get("confirm_password", "")
    if not secrets.compare_digest(current_password.encode(), user.password.encode()):
        return _update_page(flow, user, "Your current password is incorrect.")
    if not new or new != again:
        return _update_page(flow, user, "The passwords don't match. Type the new password twice.")
    if new == user.password:
        return _update_page(flow, user, "You can't reuse your current password.")
    conditional_access.change_password(user, new)
    flow.pending = None
    log.info("password updated for %s", user.username)
    return _signed_in(flow, user)


def _here_name(flow: Flow, person: User) -> str:
    """Return the username the person has at the flow's tenant path (checked already)."""
    account = account_here(flow, person)
    return account.username if account is not None else person.username


def _mfa_page(flow: Flow, user: User, error: str = "") -> Response:
    """Render the "Enter code" page (or "More information required" to register a method)."""
    register = user.access.mfa == "registration"
    code = current().state.settings["mfa_demo_code"]
    return render(
        "signin_mfa.html",
        flow=flow,
        username=user.username,
        register=register,
        demo_code=code,
        error=error,
    )


def _check_mfa(flow: Flow, user: User, otc: str) -> Response:
    """Accept the demo code: the browser session has now done MFA for this account."""
    expected = str(current().state.settings["mfa_demo_code"])
    if not secrets.compare_digest(otc.encode(), expected.encode()):
        return _mfa_page(
            flow, user, "You didn't enter the expected verification code. Please try again."
        )
    if user.access.mfa == "registration":  # the method is registered; the policy still asks for it
        user.access.mfa = "required"
    browser_session().mfa_done.update({user.username, _here_name(flow, user)})
    log.info("MFA completed for %s", user.username)
    return proceed(flow)


def switch_account() -> Response:
    """Follow "Have an admin account? Sign in with that account"."""
    flow = load_flow(request.args.get("ctx", ""))
    flow.username, flow.force_login = None, True
    return email_page(flow)
