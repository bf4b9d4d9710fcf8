"""What every view needs: the state, the keys and the two origins, plus tenant resolution."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from entra_emulator.errors import EntraError
from entra_emulator.keys import KeyRing
from entra_emulator.state import State
from entra_emulator.world import ALIASES
from entra_emulator.world import CONSUMER_TENANT

EXTENSION = "entra_emulator"


@dataclass
class Runtime:
    state: State
    keys: KeyRing
    base_url: str  # https://127.0.0.1:<port>: discovery, token, keys, APIs, control plane
    browser_url: str  # http://127.0.0.1:<http_port>: sign-in and consent pages
    control_plane: bool

    def issuer(self, tenant_id: str) -> str:
        """Return the v2.0 issuer of a tenant GUID (or the {tenantid} template)."""
        return f"{self.base_url}/{tenant_id}/v2.0"


def current() -> Runtime:
    """Return the Runtime of the app serving this request."""
    runtime: Runtime = current_app.extensions[EXTENSION]
    return runtime


def resolve(segment: str, *, surface: str = "json") -> tuple[str, str | None]:
    """Return (path segment to echo, tenant GUID or None for common/organizations/consumers)."""
    lowered = segment.lower()
    if lowered in ALIASES:
        return lowered, None
    if lowered == CONSUMER_TENANT:
        return lowered, CONSUMER_TENANT
    tenant = current().state.world.tenant_for(lowered)
    if tenant is None:
        raise EntraError(90002, surface=surface, tenant=segment)
    return tenant.id, tenant.id


def allows_user(segment: str, tenant_id: str | None, user_tenant: str) -> bool:
    """Return True if an account of user_tenant may sign in at this tenant path."""
    if tenant_id is not None:
        return tenant_id == user_tenant
    if segment == "organizations":
        return user_tenant != CONSUMER_TENANT
    if segment == "consumers":
        return user_tenant == CONSUMER_TENANT
    return True
