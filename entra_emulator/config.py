"""Load a world TOML file and validate it, naming the offending key in every error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from entra_emulator import app_credentials
from entra_emulator import guests
from entra_emulator.config_data import build_data
from entra_emulator.managed_consent import MAIL_CLIENTS
from entra_emulator.toml_fields import get
from entra_emulator.toml_fields import strings
from entra_emulator.toml_fields import tables
from entra_emulator.world import CONSUMER_TENANT
from entra_emulator.world import DEFAULT_SETTINGS
from entra_emulator.world import MFA_STATES
from entra_emulator.world import POLICIES
from entra_emulator.world import ROLE_IDS
from entra_emulator.world import STORAGE_DATA_ROLES
from entra_emulator.world import Access
from entra_emulator.world import App
from entra_emulator.world import ConfigError
from entra_emulator.world import EnterpriseApp
from entra_emulator.world import Resource
from entra_emulator.world import Scope
from entra_emulator.world import Tenant
from entra_emulator.world import User
from entra_emulator.world import World
from entra_emulator.world import stable_id

DEFAULT_CONFIG = Path(__file__).with_name("world.toml")


def load(path: Path | str | None = None) -> World:
    """Read and validate a world file; raise ConfigError naming the offending key."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return build(data)


def build(data: dict[str, Any]) -> World:
    """Turn parsed TOML into a World."""
    world = World({}, {}, {}, {}, [], {}, _settings(data), [])
    for where, item in tables(data, "tenants"):
        tenant = _tenant(item, where)
        world.tenants[tenant.id] = tenant
    for where, item in tables(data, "resources"):
        world.resources.append(_resource(item, where))
    for where, item in tables(data, "apps"):
        app = _app(world, item, where)
        world.apps[app.client_id] = app
    for where, item in tables(data, "users"):
        user = _user(world, item, where)
        world.users[user.username] = user
    for where, item in tables(data, "guests"):  # B2B guests, after the users they invite
        tid = tenant_id(world, get(item, "tenant", str, where), where + ".tenant")
        guests.from_table(world, item, where, tid)
    for where, item in tables(data, "enterprise_apps"):
        _enterprise_app(world, item, where)
    for where, item in tables(data, "storage_accounts"):
        world.storage_accounts[get(item, "name", str, where)] = strings(item, "containers", where)
    for where, item in tables(data, "grants"):
        world.grants.append(_grant(world, item, where))
    world.data = build_data(data)
    return world


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    """Return the settings with defaults filled in."""
    table = get(data, "settings", dict, "config", {})
    settings = dict(DEFAULT_SETTINGS)
    for key in table:
        if key not in DEFAULT_SETTINGS:
            raise ConfigError(f"settings.{key}: unknown setting")
        settings[key] = get(table, key, type(DEFAULT_SETTINGS[key]), "settings")
    return settings


def _tenant(item: dict[str, Any], where: str) -> Tenant:
    """Validate one [[tenants]] entry."""
    policy = get(item, "user_consent_policy", str, where, "legacy")
    if policy not in POLICIES:
        raise ConfigError(f"{where}.user_consent_policy: expected one of {', '.join(POLICIES)}")
    domains = [d.lower() for d in strings(item, "domains", where)]
    if not domains:
        raise ConfigError(f"{where}.domains: at least one domain is required")
    return Tenant(
        id=get(item, "id", str, where, stable_id("tenant", domains[0])).lower(),
        name=get(item, "name", str, where, domains[0]),
        domains=domains,
        policy=policy,
        workflow=get(item, "admin_consent_workflow", bool, where, False),
        low_impact=strings(item, "low_impact_scopes", where) or ["User.Read"],
        consent_apps=[a.lower() for a in strings(item, "allow_consent_apps", where)]
        if "allow_consent_apps" in item
        else list(MAIL_CLIENTS),
    )


def tenant_id(world: World, name: str, where: str) -> str:
    """Return the GUID of a tenant named by GUID, domain or 'consumers'."""
    if name in ("consumers", CONSUMER_TENANT):
        return CONSUMER_TENANT
    tenant = world.tenant_for(name)
    if tenant is None:
        raise ConfigError(f"{where}: unknown tenant {name!r}")
    return tenant.id


def _user(world: World, item: dict[str, Any], where: str) -> User:
    """Validate one [[users]] entry."""
    username = get(item, "username", str, where).lower()
    if "@" not in username:
        raise ConfigError(f"{where}.username: expected name@domain")
    tid = tenant_id(
        world, get(item, "tenant", str, where, username.split("@")[1]), where + ".tenant"
    )
    roles = []
    for i, role in enumerate(strings(item, "roles", where)):
        if role not in ROLE_IDS and role not in ROLE_IDS.values():
            raise ConfigError(f"{where}.roles[{i}]: unknown directory role {role!r}")
        roles.append(ROLE_IDS.get(role, role))
    for i, role in enumerate(strings(item, "storage_roles", where)):
        if role not in STORAGE_DATA_ROLES:
            raise ConfigError(f"{where}.storage_roles[{i}]: unknown data role {role!r}")
    app_roles = get(item, "app_roles", dict, where, {})
    for client_id in app_roles:
        strings(app_roles, client_id, f"{where}.app_roles")
    default_oid = stable_id("user", username)
    if tid == CONSUMER_TENANT:  # MSA object ids start with 00000000-0000-0000-
        default_oid = "00000000-0000-0000-" + default_oid[19:]
    return User(
        username=username,
        password=get(item, "password", str, where),
        display_name=get(item, "display_name", str, where, username),
        tenant=tid,
        oid=get(item, "oid", str, where, default_oid),
        roles=roles,
        storage_roles=strings(item, "storage_roles", where),
        dynamics_orgs=[o.lower() for o in strings(item, "dynamics_orgs", where)],
        app_roles={k: list(v) for k, v in app_roles.items()},
        access=_access(get(item, "conditional_access", dict, where, {}), where),
        disabled=get(item, "disabled", bool, where, False),
        deleted=get(item, "deleted", bool, where, False),
        password_expired=get(item, "password_expired", bool, where, False),
    )


def _access(item: dict[str, Any], where: str) -> Access:
    """Validate a user's conditional_access table (mfa, blocked); absent means no policy."""
    where += ".conditional_access"
    unknown = set(item) - {"mfa", "blocked", "sign_in_frequency"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    mfa = get(item, "mfa", str, where, "off")
    if mfa not in MFA_STATES:
        raise ConfigError(f"{where}.mfa: expected one of {', '.join(MFA_STATES)}")
    frequency = get(item, "sign_in_frequency", int, where, 0)
    if frequency < 0:
        raise ConfigError(f"{where}.sign_in_frequency: expected whole seconds, 0 for none")
    return Access(
        mfa=mfa, blocked=get(item, "blocked", bool, where, False), sign_in_frequency=frequency
    )


def _app(world: World, item: dict[str, Any], where: str) -> App:
    """Validate one [[apps]] entry."""
    home = get(item, "home_tenant", str, where, "")
    claims = get(item, "group_membership_claims", str, where, "None")
    if claims not in ("None", "DirectoryRole", "SecurityGroup", "All"):
        raise ConfigError(f"{where}.group_membership_claims: expected None, DirectoryRole or All")
    uris = strings(item, "redirect_uris", where)
    for i, uri in enumerate(uris):
        if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            raise ConfigError(f"{where}.redirect_uris[{i}]: https, or http on localhost only")
    app = App(
        client_id=get(item, "client_id", str, where).lower(),
        name=get(item, "name", str, where, "Application"),
        secrets=[],
        expired_secrets=[],
        certificates=[],
        redirect_uris=uris,
        multi_tenant=get(item, "multi_tenant", bool, where, True),
        personal_accounts=get(item, "personal_accounts", bool, where, False),
        group_membership_claims=claims,
        app_roles=strings(item, "app_roles", where),
        home_tenant=tenant_id(world, home, where + ".home_tenant") if home else None,
        required_permissions=strings(item, "required_permissions", where),
        application_permissions=strings(item, "application_permissions", where),
    )
    app_credentials.register(app, item, where)  # secrets and certificates with their lifetimes
    return app


def _enterprise_app(world: World, item: dict[str, Any], where: str) -> None:
    """Validate one [[enterprise_apps]] entry and store it."""
    tid = tenant_id(world, get(item, "tenant", str, where), where + ".tenant")
    client_id = get(item, "client_id", str, where).lower()
    if client_id not in world.apps:
        raise ConfigError(f"{where}.client_id: unknown app {client_id!r}")
    assigned = [u.lower() for u in strings(item, "assigned_users", where)]
    for i, name in enumerate(assigned):
        if name not in world.users:
            raise ConfigError(f"{where}.assigned_users[{i}]: unknown user {name!r}")
    world.enterprise_apps[(tid, client_id)] = EnterpriseApp(
        account_enabled=get(item, "account_enabled", bool, where, True),
        assignment_required=get(item, "assignment_required", bool, where, False),
        assigned_users=assigned,
        visible_to_users=get(item, "visible_to_users", bool, where, True),
    )


def _resource(item: dict[str, Any], where: str) -> Resource:
    """Validate one [[resources]] entry."""
    work_only = get(item, "work_only", bool, where, False)
    scopes = {}
    for i, raw in enumerate(get(item, "scopes", list, where)):
        at = f"{where}.scopes[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{at}: expected a table")
        scope = Scope(
            name=get(raw, "name", str, at),
            description=get(raw, "description", str, at),
            admin_only=get(raw, "admin_only", bool, at, False),
            work_only=get(raw, "work_only", bool, at, work_only),
            low_impact=get(raw, "low_impact", bool, at, False),
        )
        scopes[scope.name] = scope
    return Resource(
        uri=get(item, "uri", str, where).rstrip("/"),
        app_id=get(item, "app_id", str, where).lower(),
        name=get(item, "name", str, where),
        work_only=work_only,
        scopes=scopes,
    )


def _grant(world: World, item: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate one [[grants]] entry (an initial oauth2PermissionGrant)."""
    resource = get(item, "resource", str, where)
    if world.resource_for(resource) is None:
        raise ConfigError(f"{where}.resource: unknown resource {resource!r}")
    principal = get(item, "principal", str, where, "").lower() or None
    if principal and principal not in world.users:
        raise ConfigError(f"{where}.principal: unknown user {principal!r}")
    return {
        "tenant": tenant_id(world, get(item, "tenant", str, where), where + ".tenant"),
        "client_id": get(item, "client_id", str, where).lower(),
        "resource": resource.lower().rstrip("/"),
        "scopes": strings(item, "scopes", where),
        "principal": principal,
    }
