"""What every area's views share: the signed-in account, login_required(role=...), lookups."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar
from typing import cast
from typing import overload

from flask import current_app
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import Connector
from app.consent import records
from app.errors import Forbidden
from app.errors import NotFound
from app.helpdesk.links import NewLink
from app.identity import flows
from app.identity import roles
from app.identity import tenancy
from app.identity.signins import SignIn
from app.platform import extensions
from app.platform.extensions import csrf
from app.platform.extensions import session_factory
from app.web import held

log = logging.getLogger(__name__)
# Keys of live sessions keep their names across module moves: a deploy signs nobody out.
USER_KEY = "app.accounts.user"
DIRECTORY_KEY = "portal.tenant_directory"
RENEW_KEY = "app.accounts.renew"
ROLES = ("admin", "helpdesk")
# The helpdesk refuses outsiders before anything else, even a POST without a CSRF token (C22):
# its blueprints are exempt from the global check, and the token is checked here, after the role.
ROLE_BEFORE_CSRF = frozenset({"helpdesk"})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> dict[str, Any] | None:
    """Return the signed-in account, or None."""
    return cast("dict[str, Any] | None", session.get(USER_KEY))


def end_old_sign_in() -> None:
    """Sign out a session older than PORTAL_SESSION_MAX_HOURS, however active it was."""
    user = current_user()
    limit = current_app.config["SESSION_MAX_HOURS"] * 3600
    if user is not None and time.time() - user.get("signed_in_at", 0) > limit:
        session.clear()
        renew_session_id()


@overload
def login_required(view: F) -> F: ...
@overload
def login_required(*, role: str) -> Callable[[F], F]: ...
def login_required(view: F | None = None, *, role: str | None = None) -> Any:
    """Send anonymous visitors to Sign in; with a role, answer everyone else 403 (logged, C21)."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            role_first = role in ROLE_BEFORE_CSRF
            if user is None and (request.method == "GET" or not role_first):
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            if role is not None:
                _require(role, user)
            if role_first and request.method not in SAFE_METHODS:
                csrf.protect()
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate(view) if view is not None else decorate


def _require(role: str, user: Mapping[str, Any] | None) -> None:
    """Refuse with 403 an account that does not hold the role, and log the attempt."""
    config = current_app.config
    if role == "admin":
        held = bool(roles.admin_basis(user, config["ADMIN_USERS"]))
    else:
        held = roles.is_helpdesk(user, config["HELPDESK_USERS"])
    if not held:
        who = (user or {}).get("username") or "anonymous"
        log.warning(
            "security: %s-only %s %s refused for %s", role, request.method, request.path[:100], who
        )
        raise Forbidden()


def admin_user() -> dict[str, Any]:
    """Return the signed-in admin (views behind login_required(role="admin"))."""
    user = current_user()
    _require("admin", user)
    assert user is not None
    return user


def helpdesk_scope() -> frozenset[str] | None:
    """Return the tenants the signed-in helpdesk member may see and act on (None: every one)."""
    found = roles.helpdesk_scope(current_user(), current_app.config["HELPDESK_USERS"])
    if found == frozenset():
        raise Forbidden()  # the role check let nobody else in; "no tenant" is never "every tenant"
    return found


def staff() -> str:
    """Return the signed-in staff member's username (views behind a role)."""
    user = current_user()
    assert user is not None
    return str(user["username"])


def staff_tenant() -> str:
    """Return the signed-in staff member's tenant id (the tenant of the links they make)."""
    user = current_user()
    assert user is not None
    return str(user["tenant_id"])


def reveal_link(made: NewLink) -> ResponseReturnValue:
    """Remember a new link's URL, sealed, for one showing, and go to its page."""
    held.keep_for_reveal(session, made.link.id, made.url, kind="link")
    return redirect(url_for("helpdesk.show_link", link_id=made.link.id), code=303)


def is_helpdesk() -> bool:
    """Tell whether the signed-in account is the portal's helpdesk (for the menu)."""
    return roles.is_helpdesk(current_user(), current_app.config["HELPDESK_USERS"])


def is_admin() -> bool:
    """Tell whether the signed-in account administers its tenant here (for the menu)."""
    return bool(roles.admin_basis(current_user(), current_app.config["ADMIN_USERS"]))


def all_connectors() -> dict[str, Connector]:
    """Return this deployment's connectors, by id."""
    return dict(extensions.connectors())


def find(connector_id: str) -> Connector:
    """Return the connector with this id, or answer 404."""
    connector = all_connectors().get(connector_id)
    if connector is None:
        raise NotFound()
    return connector


def sign_in_as(result: SignIn) -> None:
    """Start a fresh session for the account that just signed in (no fixation, C17)."""
    pending = flows.pending(session)
    session.clear()
    renew_session_id()
    flows.restore(session, pending)
    session[USER_KEY] = {
        "oid": result.oid,
        "tenant_id": result.tenant_id,
        "home_account_id": result.home_account_id,  # the same person in every tenant
        "username": result.username,
        "name": result.name,
        "account_type": result.account_type,
        "tenant_domain": result.tenant_domain,  # how the person named a guest's tenant
        "guest": _is_guest(result),
        "wids": list(result.wids),
        "roles": list(result.roles),
        "signed_in_at": int(time.time()),
    }
    if is_admin():  # remembered, so the tenant's new consent requests reach them by e-mail
        with session_factory() as db, db.begin():
            records.remember_admin(db, result.tenant_id, result.username)


def renew_session_id() -> None:
    """Give the session a new id and delete the old one from the store."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is None:
        return
    session[RENEW_KEY] = True  # flask-session only renews a non-empty session
    regenerate(session)
    session.pop(RENEW_KEY, None)


def login_hint(form: Mapping[str, str]) -> str | None:
    """Return a plausible login hint from a form, or None."""
    hint = (form.get("login_hint") or "").strip()
    if not hint or len(hint) > 254 or "@" not in hint or any(ch.isspace() for ch in hint):
        return None
    return hint


def _is_guest(result: SignIn) -> bool:
    """Tell whether a sign-in is a B2B guest's (its home tenant is another)."""
    found = tenancy.of_account(result.home_account_id, result.tenant_id, result.username)
    return bool(found and found.guest)


def tenant_directory() -> tenancy.TenantDirectory:
    """Return this app's domain-to-tenant resolver (built once, over the identity's HTTP)."""
    found = current_app.extensions.get(DIRECTORY_KEY)
    if found is None:
        identity = extensions.identity()
        settings = identity.settings
        found = tenancy.TenantDirectory(
            identity.http, settings.authority_host, settings.http_timeout
        )
        current_app.extensions[DIRECTORY_KEY] = found
    return cast(tenancy.TenantDirectory, found)


def whose_data(connection: Any) -> tenancy.Tenancy | None:
    """Return whose data a connection reads, for the pages (None for personal accounts)."""
    user = current_user()
    known = user and user.get("tenant_id") == connection.tenant_id
    return tenancy.of_account(
        connection.home_account_id,
        connection.tenant_id,
        connection.username,
        connection.tenant_domain or ((user or {}).get("tenant_domain") if known else None),
    )
