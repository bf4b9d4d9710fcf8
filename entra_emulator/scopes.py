"""Scope strings: split them into resources and permission names, and echo them back."""

from __future__ import annotations

from dataclasses import dataclass

from entra_emulator.errors import EntraError
from entra_emulator.world import App
from entra_emulator.world import Resource
from entra_emulator.world import World

OIDC = ("openid", "profile", "email", "offline_access")
GRAPH = "https://graph.microsoft.com"


@dataclass(frozen=True)
class ScopeRef:
    raw: str  # as the client wrote it: the echo uses this form
    resource: str  # canonical URI, lower case, e.g. https://contoso.crm.dynamics.com
    name: str  # canonical permission name, e.g. User.Read, or .default
    definition: Resource

    @property
    def full(self) -> str:
        """Return the full-URI form of this scope."""
        return f"{self.resource}/{self.name}"


def split(scope: str | None) -> tuple[list[str], list[str]]:
    """Return (OIDC scopes, resource scopes) of a space-separated scope string."""
    parts = (scope or "").split()
    return [p for p in parts if p.lower() in OIDC], [p for p in parts if p.lower() not in OIDC]


def parse(world: World, raws: list[str], surface: str = "json") -> list[ScopeRef]:
    """Resolve resource scopes; raise 500011 for unknown resources, 70011 for unknown names."""
    refs = []
    for raw in raws:
        uri, _, name = raw.rpartition("/") if "/" in raw else (GRAPH, "", raw)
        resource = world.resource_for(uri)
        if resource is None:
            raise EntraError(500011, surface=surface, resource=uri, tenant="")
        canonical = uri.lower().rstrip("/")
        if "*" not in resource.uri:
            canonical = resource.uri.lower()
        if name == ".default":
            refs.append(ScopeRef(raw, canonical, name, resource))
            continue
        known = {s.lower(): s for s in resource.scopes}
        if name.lower() not in known:
            raise EntraError(70011, surface=surface, scope=raw)
        refs.append(ScopeRef(raw, canonical, known[name.lower()], resource))
    return refs


def by_resource(refs: list[ScopeRef]) -> dict[str, list[ScopeRef]]:
    """Group scope references by resource, keeping the request's order."""
    out: dict[str, list[ScopeRef]] = {}
    for ref in refs:
        out.setdefault(ref.resource, []).append(ref)
    return out


def names(app: App, refs: list[ScopeRef]) -> set[str]:
    """Return the permission names requested, expanding .default to the app's configuration."""
    out: set[str] = set()
    for ref in refs:
        if ref.name != ".default":
            out.add(ref.name)
            continue
        for perm in app.required_permissions:
            uri, _, name = perm.rpartition("/")
            if uri.lower().rstrip("/") == ref.resource:
                out.add(name)
    return out


def echo(refs: list[ScopeRef], granted: set[str], oidc: list[str]) -> str:
    """Return the token response's scope: granted scopes in the requested form (7.25)."""
    shown = [r.raw for r in refs if r.name in granted or r.name == ".default"]
    if refs and refs[0].name != ".default":
        full_form = "://" in refs[0].raw
        requested = {r.name for r in refs}
        for name in sorted(granted - requested):  # earlier grants for the resource are listed too
            shown.append(f"{refs[0].resource}/{name}" if full_form else name)
    if refs and refs[0].resource == GRAPH:
        shown += ["profile", "openid", "email"]
    elif not refs:
        shown += [s for s in ("profile", "openid", "email") if s in oidc or s == "email"]
    return " ".join(shown)
