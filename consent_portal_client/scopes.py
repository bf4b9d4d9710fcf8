"""Map the scopes an SDK asks for onto the token API, where a connection has one resource."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consent_portal_client.errors import ScopeNotAllowed

GRAPH = "https://graph.microsoft.com"
DEFAULT = ".default"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True)
class Ask:
    """What to ask the portal for: resource is None when no scope names one."""

    resource: str | None
    scope: str | None  # the body's "scope"; None asks for the connection's own scopes


def resource_of(scope: str) -> str:
    """Return the resource a scope belongs to, lower-cased and without a trailing slash."""
    if "/" not in scope:  # Entra reads a bare name such as Files.Read.All as Graph's
        return GRAPH
    resource = scope.rpartition("/")[0].rstrip("/")
    return resource.lower()  # resource identifiers compare without regard to case in Entra


def full_name(scope: str) -> str:
    """Return a scope with its resource, as the portal stores it."""
    return scope if "/" in scope else f"{GRAPH}/{scope}"


def resource_scopes(scopes: Sequence[str]) -> list[str]:
    """Return the scopes without blanks, duplicates and the OpenID Connect ones."""
    names = (s.strip() for s in scopes)
    return list(dict.fromkeys(s for s in names if s and s.lower() not in OIDC_SCOPES))


def plan(scopes: Sequence[str]) -> Ask:
    """Turn get_token's scopes into a token API request; refuse a mix of resources."""
    names = resource_scopes(scopes)
    if not names:
        return Ask(None, None)
    resources = sorted({resource_of(s) for s in names})
    if len(resources) > 1:
        raise ScopeNotAllowed(f"a token is for one resource, and these scopes name {resources}")
    if any(s.rpartition("/")[2] == DEFAULT for s in names):
        return Ask(resources[0], None)  # .default: whatever the connection was consented for
    return Ask(resources[0], " ".join(sorted(full_name(s) for s in names)))


def answered_resource(scope: str) -> str | None:
    """Return the resource of the scopes a token answer carries, if it names any."""
    names = resource_scopes(scope.split())
    return resource_of(names[0]) if names else None
