"""The web: one blueprint per user-facing area, the flows' finishers, the one error renderer."""

from __future__ import annotations

from flask import Flask

from app.version import __version__
from app.web import accounts
from app.web import api
from app.web import auth
from app.web import connections
from app.web import connectors
from app.web import consent
from app.web import data
from app.web import errors
from app.web import finishers
from app.web import health
from app.web import landing
from app.web import outcomes
from app.web.admin import console
from app.web.admin import grant
from app.web.admin import readiness
from app.web.helpdesk import links as helpdesk_links
from app.web.helpdesk import users as helpdesk_users

PEOPLE = (auth, connectors, connections, outcomes, consent, landing)
STAFF = (console, grant, readiness, helpdesk_links, helpdesk_users)
MACHINES = (api, data, health)


def register(app: Flask) -> None:
    """Register every area's blueprint and flow finishers, the page globals and the renderer."""
    for area in PEOPLE + STAFF + MACHINES:
        app.register_blueprint(area.bp)
    finishers.collect(app, PEOPLE + STAFF)
    errors.register(app)


def page_globals() -> dict[str, object]:
    """Give every page the signed-in account, the staff menus it may see, and the version."""
    return {
        "current_user": accounts.current_user(),
        "portal_admin": accounts.is_admin(),
        "helpdesk_member": accounts.is_helpdesk(),
        "portal_version": __version__,
        "whose_data": accounts.whose_data,
    }
