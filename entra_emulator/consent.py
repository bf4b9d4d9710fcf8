"""The consent engine: who may consent to what, and what /authorize does next (protocol 4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from entra_emulator import managed_consent
from entra_emulator.errors import EntraError
from entra_emulator.scopes import ScopeRef
from entra_emulator.scopes import by_resource
from entra_emulator.scopes import names
from entra_emulator.state import State
from entra_emulator.world import App
from entra_emulator.world import User

# Role template IDs that may grant tenant-wide delegated consent (protocol 4.5).
ADMIN_ROLES = frozenset(
    {
        "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
        "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
        "158c047a-c907-4556-b7ef-446551a6b5f7",  # Cloud Application Administrator
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",  # Application Administrator
    }
)


@dataclass
class Decision:
    kind: str  # issue, consent, need_admin, approval, personal
    missing: dict[str, set[str]] = field(default_factory=dict)
    admin: bool = False


def is_admin(user: User) -> bool:
    """Return True if the user holds a role that grants tenant-wide consent."""
    return not user.personal and bool(ADMIN_ROLES & set(user.roles))


def check_app(state: State, app: App, user: User) -> None:
    """Raise the page for an app that is absent, disabled or gated in the user's tenant."""
    if user.personal:
        return
    if not app.multi_tenant and app.home_tenant not in (None, user.tenant):
        raise EntraError(700016, client_id=app.client_id, tenant=user.tenant).page()
    props = state.world.enterprise_app(user.tenant, app.client_id)
    if not props.account_enabled:
        raise EntraError(7000112, client_id=app.client_id, app_name=app.name).page()
    if props.assignment_required and user.username not in props.assigned_users:
        raise EntraError(
            50105, client_id=app.client_id, app_name=app.name, username=user.username
        ).page()


def personal_refused(user: User, refs: list[ScopeRef]) -> bool:
    """Return True if a personal account asks for a work-only permission."""
    return user.personal and any(
        ref.definition.work_only
        or (ref.name in ref.definition.scopes and ref.definition.scopes[ref.name].work_only)
        for ref in refs
    )


def missing(state: State, app: App, user: User, refs: list[ScopeRef]) -> dict[str, set[str]]:
    """Return, per resource, the requested permissions not yet granted to this user."""
    out = {}
    for resource, group in by_resource(refs).items():
        have = state.granted(user.tenant, app.client_id, resource, user.username)
        lacking = names(app, group) - have
        if lacking:
            out[resource] = lacking
    return out


def user_may_consent(state: State, app: App, user: User, resource: str, name: str) -> bool:
    """Return True if the tenant's policy lets this user consent to one permission."""
    if user.personal:
        return True  # personal accounts consent for themselves; no tenant policy applies
    definition = state.world.resource_for(resource)
    scope = definition.scopes.get(name) if definition else None
    if definition is None or scope is None or scope.admin_only:
        return False
    if state.world.enterprise_app(user.tenant, app.client_id).assignment_required:
        return False  # assignment-required apps never offer user consent (4.2)
    tenant = state.world.tenants[user.tenant]
    if tenant.policy == "legacy":
        return True
    if tenant.policy == "low":
        return scope.low_impact or name in tenant.low_impact
    if tenant.policy in ("recommended-2025", "allow-consent-apps"):
        same_tenant = app.home_tenant == user.tenant
        if same_tenant and not state.settings["policy_applies_to_same_tenant_apps"]:
            return True
        if tenant.policy == "allow-consent-apps" and app.client_id in tenant.consent_apps:
            return True  # the mail client policy gives its apps the excluded list back
        exclusions = state.settings["recommended_2025_exclusions"]
        return not managed_consent.excluded(definition.app_id, name, exclusions)
    return False  # disabled


def decide(state: State, app: App, user: User, refs: list[ScopeRef], prompt: str) -> Decision:
    """Return what the authorize endpoint does for a signed-in user (4.3 steps 5 to 9)."""
    if personal_refused(user, refs):
        return Decision("personal")
    lacking = missing(state, app, user, refs)
    if not lacking and prompt != "consent":
        return Decision("issue")
    if prompt == "consent" and not lacking:
        lacking = {res: names(app, group) for res, group in by_resource(refs).items()}
    if is_admin(user):
        return Decision("consent", lacking, admin=True)
    if all(user_may_consent(state, app, user, r, n) for r, ns in lacking.items() for n in ns):
        return Decision("consent", lacking)
    if not user.personal and state.world.tenants[user.tenant].workflow:
        return Decision("approval", lacking)
    return Decision("need_admin", lacking)


def record(state: State, app: App, user: User, lacking: dict[str, set[str]], org: bool) -> None:
    """Store the grants of an accepted consent page: per user, or tenant-wide for admins."""
    principal = None if org and is_admin(user) else user.username
    for resource, scope_names in lacking.items():
        state.add_grant(user.tenant, app.client_id, resource, sorted(scope_names), principal)
