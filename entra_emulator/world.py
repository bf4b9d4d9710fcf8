"""The emulator's configuration: tenants, users, apps and resources read from a TOML file."""

from __future__ import annotations

import fnmatch
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from entra_emulator.dataset import Data
from entra_emulator.managed_consent import ALL_EXCLUSIONS
from entra_emulator.managed_consent import MAIL_CLIENTS

CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
ALIASES = ("common", "organizations", "consumers")
# allow-consent-apps: recommended-2025 plus the mail client policy beside it (managed_consent.py).
POLICIES = ("disabled", "low", "legacy", "recommended-2025", "allow-consent-apps")
# Directory role template IDs (permissions-reference); names may be used in the file instead.
ROLE_IDS = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "User": "b79fbf4d-3ef9-4689-8143-76b194e85509",
}
STORAGE_DATA_ROLES = (
    "Storage Blob Data Reader",
    "Storage Blob Data Contributor",
    "Storage Blob Data Owner",
)
DEFAULT_SETTINGS: dict[str, Any] = {
    "access_token_lifetime_seconds": 3599,
    "refresh_token_lifetime_seconds": 90 * 86400,
    "code_lifetime_seconds": 600,
    "single_use_refresh_tokens": False,
    "policy_applies_to_same_tenant_apps": True,
    # Microsoft does not document what a refresh for a deleted user answers: 50034 (inferred).
    "deleted_user_refresh_error": 50034,
    "mfa_demo_code": "123456",  # the code the emulator's "Enter code" page accepts
    # Service protection: token requests per second per (client_id, tenant), then 429 +
    # Retry-After; 0 is off. Microsoft publishes no number (throttling.py).
    "token_requests_per_second": 0,
    # Access tokens for clients declaring the CP1 capability (CAE): Entra gives 20 to 28 hours.
    "cae_access_token_lifetime_seconds": 28 * 3600,
    # Microsoft's published list (managed_consent.py); a world file may replace it.
    "recommended_2025_exclusions": list(ALL_EXCLUSIONS),
    # B2B guests (entra_emulator/guests.py): the idp claim names the home tenant's STS (the
    # v1 form, inferred for v2 tokens too), and acct=1 is sent as if the app asked for it.
    "guest_idp": "https://sts.windows.net/{home_tenant}/",
    "guest_acct_claim": True,
}
_NAMESPACE = uuid.UUID("0c5b4f7e-3d1a-4e9b-8c2f-5a6d7e8f9a0b")


class ConfigError(ValueError):
    """A configuration file that does not describe a valid world."""


def stable_id(*parts: str) -> str:
    """Return a GUID that is the same for the same names on every start."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


@dataclass
class Tenant:
    id: str
    name: str
    domains: list[str]
    policy: str
    workflow: bool
    low_impact: list[str]
    # The apps the mail client policy (allow-consent-apps) lets users grant the excluded list.
    consent_apps: list[str] = field(default_factory=lambda: list(MAIL_CLIENTS))


MFA_STATES = ("off", "required", "registration")


@dataclass
class Access:
    """A user's Conditional Access outcome; the default (off, not blocked) changes nothing."""

    mfa: str = "off"
    blocked: bool = False
    sign_in_frequency: int = 0  # seconds a sign-in lasts for refreshes; 0: no such policy


@dataclass
class User:
    username: str
    password: str
    display_name: str
    tenant: str
    oid: str
    roles: list[str]
    storage_roles: list[str]
    dynamics_orgs: list[str]
    app_roles: dict[str, list[str]]
    access: Access = field(default_factory=Access)
    disabled: bool = False  # accountEnabled false: no sign-in, no refresh (AADSTS50057)
    deleted: bool = False  # soft-deleted (restorable for 30 days): unknown at sign-in and refresh
    password_expired: bool = False  # the sign-in asks for a new password first (AADSTS50055)
    # A critical event's time (sessions revoked, password changed): CAE resources refuse
    # capable tokens issued before it with a claims challenge.
    critical_event_at: float = 0.0
    # A B2B guest: the invited person's home username, object id and tenant (guests.py).
    home: str | None = None
    home_oid: str = ""
    home_tenant: str = ""

    @property
    def personal(self) -> bool:
        """Return True for a personal Microsoft account."""
        return self.tenant == CONSUMER_TENANT

    @property
    def guest(self) -> bool:
        """Return True for a guest object (userType Guest) invited from another tenant."""
        return self.home is not None


@dataclass
class Credential:
    """One secret or certificate of an app: its Graph keyId, name and lifetime (epoch seconds)."""

    key_id: str
    display_name: str
    start: float
    end: float

    def expired(self, now: float | None = None) -> bool:
        """Return True once the credential's endDateTime has passed."""
        return (time.time() if now is None else now) >= self.end


@dataclass
class App:
    client_id: str
    name: str
    secrets: list[str]
    expired_secrets: list[str]
    certificates: list[str]
    redirect_uris: list[str]
    multi_tenant: bool
    personal_accounts: bool
    group_membership_claims: str
    app_roles: list[str]
    home_tenant: str | None
    required_permissions: list[str]
    # Lifetimes of secrets and certificates by value or PEM (entra_emulator/app_credentials.py).
    credentials: dict[str, Credential] = field(default_factory=dict)
    application_permissions: list[str] = field(default_factory=list)  # Graph roles, app-only


@dataclass
class EnterpriseApp:
    account_enabled: bool = True
    assignment_required: bool = False
    assigned_users: list[str] = field(default_factory=list)
    visible_to_users: bool = True
    deleted: bool = False  # the service principal was deleted: no tokens (AADSTS700016)


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    admin_only: bool
    work_only: bool
    low_impact: bool


@dataclass
class Resource:
    uri: str
    app_id: str
    name: str
    work_only: bool
    scopes: dict[str, Scope]

    def matches(self, uri: str) -> bool:
        """Return True if uri (lower case, no trailing slash) names this resource."""
        return uri == self.app_id or fnmatch.fnmatchcase(uri, self.uri.lower())


@dataclass
class World:
    tenants: dict[str, Tenant]
    users: dict[str, User]
    apps: dict[str, App]
    enterprise_apps: dict[tuple[str, str], EnterpriseApp]
    resources: list[Resource]
    storage_accounts: dict[str, list[str]]
    settings: dict[str, Any]
    grants: list[dict[str, Any]]
    data: Data = field(default_factory=Data)  # what Graph, Dataverse and Storage serve

    def tenant_for(self, segment: str) -> Tenant | None:
        """Return the tenant named by a GUID or one of its domains."""
        segment = segment.lower()
        for tenant in self.tenants.values():
            if segment == tenant.id or segment in tenant.domains:
                return tenant
        return None

    def enterprise_app(self, tenant_id: str, client_id: str) -> EnterpriseApp:
        """Return the app's properties in a tenant, creating the defaults on first use."""
        return self.enterprise_apps.setdefault((tenant_id, client_id), EnterpriseApp())

    def resource_for(self, uri: str) -> Resource | None:
        """Return the resource that owns a URI such as https://graph.microsoft.com."""
        uri = uri.lower().rstrip("/")
        return next((r for r in self.resources if r.matches(uri)), None)
