"""Who is signed in to the portal: the session's account and the login_required guard."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar
from typing import cast

from flask import current_app
from flask import redirect
from flask import request
from flask import session
from flask import url_for

from app.consent import records
from app.identity import flows
from app.identity import roles
from app.identity.entra import SignIn
from app.platform.extensions import session_factory

# Keys of live sessions keep their names across module moves: a deploy signs nobody out.
USER_KEY = "app.accounts.user"
RENEW_KEY = "app.accounts.renew"
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


def login_required(view: F) -> F:
    """Send anonymous visitors to Sign in and bring them back afterwards."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def sign_in_as(result: SignIn) -> None:
    """Start a fresh session for the account that just signed in (no fixation, C17)."""
    pending = flows.pending(session)
    session.clear()
    renew_session_id()
    flows.restore(session, pending)
    session[USER_KEY] = {
        "oid": result.oid,
        "tenant_id": result.tenant_id,
        "username": result.username,
        "name": result.name,
        "account_type": result.account_type,
        "wids": list(result.wids),
        "roles": list(result.roles),
        "signed_in_at": int(time.time()),
    }
    _note_admin(result)


def _note_admin(result: SignIn) -> None:
    """Remember a tenant's administrator, so its new consent requests reach them by e-mail."""
    configured = current_app.config.get("ADMIN_USERS") or ()
    if not roles.admin_basis(session[USER_KEY], configured):
        return
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
