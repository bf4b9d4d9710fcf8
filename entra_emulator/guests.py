"""B2B guests: a user of one tenant invited into another, with an object of their own there.

The person signs in with their home name and password; at the resource tenant's path Entra
issues tokens for the guest object (its own oid, tid of the resource tenant, idp and acct=1),
while organizations and common still mean the home tenant. docs/emulator.md, "Guests".
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from flask.typing import ResponseReturnValue

from entra_emulator.control import ControlError
from entra_emulator.control import json_body
from entra_emulator.runtime import current
from entra_emulator.world import ROLE_IDS
from entra_emulator.world import ConfigError
from entra_emulator.world import Tenant
from entra_emulator.world import User
from entra_emulator.world import World
from entra_emulator.world import stable_id

MARK = "#EXT#"


def guest_upn(home_username: str, tenant: Tenant) -> str:
    """Return Entra's guest UPN form: alias_homedomain#EXT#@<the tenant's initial domain>."""
    alias, _, domain = home_username.partition("@")
    initial = next((d for d in tenant.domains if ".onmicrosoft." in d), tenant.domains[0])
    return f"{alias}_{domain}{MARK}@{initial}"


def invite(
    world: World,
    home_username: str,
    tenant_id: str,
    *,
    oid: str | None = None,
    display_name: str | None = None,
    roles: Iterable[str] = (),
    storage_roles: Iterable[str] = (),
    dynamics_orgs: Iterable[str] = (),
    app_roles: Mapping[str, list[str]] | None = None,
) -> User:
    """Create (or return) the guest object of a home user in another tenant."""
    home = world.users.get(home_username.lower())
    if home is None or home.guest:
        raise ConfigError(f"user: unknown user {home_username!r}")
    if home.personal:
        raise ConfigError("user: personal accounts as guests are not modelled")
    tenant = world.tenants.get(tenant_id)
    if tenant is None:
        raise ConfigError(f"tenant: unknown tenant {tenant_id!r}")
    if tenant.id == home.tenant:
        raise ConfigError("tenant: a user is a member of their home tenant, not a guest")
    upn = guest_upn(home.username, tenant)
    if upn in world.users:
        return world.users[upn]
    role_ids = []
    for role in roles:
        if role not in ROLE_IDS and role not in ROLE_IDS.values():
            raise ConfigError(f"roles: unknown directory role {role!r}")
        role_ids.append(ROLE_IDS.get(role, role))
    guest = User(
        username=upn,
        password="",  # a guest object has no password: the home tenant checks the person's
        display_name=display_name or home.display_name,
        tenant=tenant.id,
        # A guest's object id is its own in each tenant, not the home one (inferred form).
        oid=oid or stable_id("guest", tenant.id, home.username),
        roles=role_ids,
        storage_roles=list(storage_roles),
        dynamics_orgs=[o.lower() for o in dynamics_orgs],
        app_roles={k: list(v) for k, v in (app_roles or {}).items()},
        home=home.username,
        home_oid=home.oid,
        home_tenant=home.tenant,
    )
    world.users[upn] = guest
    return guest


def account_at(world: World, user: User, tenant_id: str | None) -> User | None:
    """Return the account a person signs in as at a tenant path; None if they are not there.

    organizations and common (tenant_id None) and the home tenant give the person themselves;
    another tenant gives their guest object there.
    """
    if tenant_id is None or tenant_id == user.tenant:
        return user
    return next(
        (
            u
            for u in world.users.values()
            if u.home == user.username and u.tenant == tenant_id and not u.deleted
        ),
        None,
    )


def guest_claims(settings: Mapping[str, Any], user: User) -> dict[str, Any]:
    """Return the claims a guest's tokens add: idp (home STS) and acct=1."""
    if not user.guest:
        return {}
    claims: dict[str, Any] = {
        "idp": str(settings["guest_idp"]).format(home_tenant=user.home_tenant)
    }
    if settings["guest_acct_claim"]:
        claims["acct"] = 1
    return claims


def describe(user: User) -> dict[str, Any]:
    """Return the control plane's shape of a guest."""
    return {
        "username": user.username,
        "tenant": user.tenant,
        "oid": user.oid,
        "home": user.home,
        "home_tenant": user.home_tenant,
        "home_oid": user.home_oid,
        "user_type": "Guest",
        "roles": user.roles,
    }


def from_table(world: World, item: Mapping[str, Any], where: str, tenant_id: str) -> User:
    """Invite one [[guests]] entry of a world file (tenant already resolved to its GUID)."""
    try:
        return invite(
            world,
            str(item.get("user", "")),
            tenant_id,
            oid=item.get("oid"),
            display_name=item.get("display_name"),
            roles=item.get("roles", ()),
            storage_roles=item.get("storage_roles", ()),
            dynamics_orgs=item.get("dynamics_orgs", ()),
            app_roles=item.get("app_roles"),
        )
    except ConfigError as error:
        raise ConfigError(f"{where}.{error}") from None


# -- control plane ---------------------------------------------------------------------------


def _tenant_id(name: str) -> str:
    """Return the GUID of a tenant named by GUID or domain."""
    tenant = current().state.world.tenant_for(name)
    if tenant is None:
        raise ControlError(f"tenant: unknown tenant {name!r}")
    return tenant.id


def post_guest() -> ResponseReturnValue:
    """Invite a user into a tenant: {"user", "tenant": GUID or domain, "oid"?, "roles"?, ...}."""
    body = json_body()
    try:
        guest = invite(
            current().state.world,
            str(body.get("user") or ""),
            _tenant_id(str(body.get("tenant") or "")),
            oid=body.get("oid"),
            roles=body.get("roles") or (),
            app_roles=body.get("app_roles") or None,
        )
    except ConfigError as error:
        raise ControlError(str(error)) from None
    return describe(guest), 201


def delete_guest() -> ResponseReturnValue:
    """Remove a guest object: {"user": home username, "tenant"}; its refresh tokens stop."""
    body = json_body()
    state = current().state
    tenant_id = _tenant_id(str(body.get("tenant") or ""))
    home = str(body.get("user") or "").lower()
    removed = [
        name for name, u in state.world.users.items() if u.home == home and u.tenant == tenant_id
    ]
    for name in removed:
        del state.world.users[name]
        for record in state.refresh_tokens.values():
            if record.username == name:
                record.revoked = True
    return {"removed": removed}


def get_guests() -> ResponseReturnValue:
    """List every guest object."""
    users = current().state.world.users.values()
    return {"guests": [describe(u) for u in users if u.guest]}


ROUTES = [
    ("/guests", ("GET",), get_guests),
    ("/guests", ("POST",), post_guest),
    ("/guests", ("DELETE",), delete_guest),
]
