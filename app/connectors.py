"""The catalogue of connector types: resource, scopes, account types, admin consent."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import ConfigError

MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
WORK = "work"
PERSONAL = "personal"
ACCOUNT_TYPES = (WORK, PERSONAL)
GRAPH = "https://graph.microsoft.com"
STORAGE = "https://storage.azure.com"

# What Microsoft's consent page says for each delegated permission (the user-consent display
# text of the permissions reference), so people read the words Microsoft shows them. Keyed by
# permission name per resource kind; Dynamics organizations all share their one permission.
GRAPH_WORDS = {
    "User.Read": "Sign you in and read your profile",
    "Sites.Read.All": "Read items in all site collections",
    "Sites.ReadWrite.All": "Edit or delete items in all site collections",
    "Sites.Selected": "Access selected site collections",
    "Files.Read": "Read your files",
    "Files.Read.All": "Read all files that you can access",
    "Files.ReadWrite": "Have full access to your files",
    "Files.ReadWrite.All": "Have full access to all files you can access",
    "Mail.Read": "Read your mail",
    "Mail.ReadBasic": "Read your basic mail",
    "Mail.ReadWrite": "Read and write access to your mail",
    "offline_access": "Maintain access to data you have given it access to",
}
DYNAMICS_WORDS = {"user_impersonation": "Access Common Data Service as organization users"}
STORAGE_WORDS = {"user_impersonation": "Access Azure Storage"}


@dataclass(frozen=True)
class Connector:
    """One kind of connection a person can make; plain data."""

    id: str
    name: str
    resource: str
    scopes: tuple[str, ...]
    account_types: frozenset[str]
    description: str
    admin_consent_likely: bool
    data_plane_note: str

    @property
    def allows_personal(self) -> bool:
        """Return True when personal Microsoft accounts may connect."""
        return PERSONAL in self.account_types

    @property
    def scope_words(self) -> list[tuple[str, str]]:
        """Return (Microsoft's wording, full URI) for each scope, as the consent page shows it."""
        return [(scope_words(scope), scope) for scope in self.scopes]

    @property
    def consent_lines(self) -> list[tuple[str, str]]:
        """Return what Microsoft's consent page lists: the scopes, then offline_access (MSAL's)."""
        return [*self.scope_words, (GRAPH_WORDS["offline_access"], "offline_access")]

    @property
    def scope_string(self) -> str:
        """Return the scopes as one space-separated string, as stored on a connection."""
        return " ".join(self.scopes)


# Signing in to the portal itself: the smallest Graph scope, any account type, "common".
SIGN_IN = Connector(
    id="sign-in",
    name="Sign in",
    resource=GRAPH,
    scopes=(f"{GRAPH}/User.Read",),
    account_types=frozenset({WORK, PERSONAL}),
    description="Reads your name and email address so the portal knows who you are.",
    admin_consent_likely=False,
    data_plane_note="",
)


# Telling the portal who was turned away at Microsoft's approval page: OpenID Connect scopes
# only (MSAL adds openid, profile and offline_access), so Microsoft asks for no new permission.
IDENTIFY = Connector(
    id="identify",
    name="Sign in",
    resource=GRAPH,
    scopes=(),
    account_types=frozenset({WORK}),
    description="Tells the portal who you are, so it can file your request under your name.",
    admin_consent_likely=False,
    data_plane_note="",
)


def _base() -> list[Connector]:
    """Return the four fixed connectors with product defaults (Dynamics is per org)."""
    work = frozenset({WORK})
    both = frozenset({WORK, PERSONAL})
    return [
        Connector(
            id="sharepoint",
            name="SharePoint",
            resource=GRAPH,
            scopes=(f"{GRAPH}/Sites.Read.All",),
            account_types=work,
            description="Reads the SharePoint sites, lists and document libraries you can open.",
            admin_consent_likely=True,
            data_plane_note="Access is limited to the sites you can open yourself.",
        ),
        Connector(
            id="onedrive",
            name="OneDrive",
            resource=GRAPH,
            scopes=(f"{GRAPH}/Files.Read.All",),
            account_types=both,
            description="Reads the files in your OneDrive and the files others shared with you.",
            admin_consent_likely=True,
            data_plane_note="Work accounts need a provisioned OneDrive.",
        ),
        Connector(
            id="outlook",
            name="Outlook",
            resource=GRAPH,
            scopes=(f"{GRAPH}/Mail.Read",),
            account_types=both,
            description="Reads the email messages in your mailbox. It cannot send or delete mail.",
            admin_consent_likely=True,
            data_plane_note="Work accounts need an Exchange Online mailbox.",
        ),
        Connector(
            id="azure-storage",
            name="Azure Storage",
            resource=STORAGE,
            scopes=(f"{STORAGE}/user_impersonation",),
            account_types=work,
            description="Reads blobs and files in the Azure Storage accounts you have access to.",
            admin_consent_likely=False,
            data_plane_note=(
                "You also need an Azure data role such as Storage Blob Data Reader on the "
                "storage account; Owner or Contributor alone is not enough."
            ),
        ),
    ]


def _dynamics(org: str, connector_id: str, several: bool) -> Connector:
    """Return the Dynamics 365 connector for one organization URL."""
    host = urlsplit(org).hostname or org
    return Connector(
        id=connector_id,
        name=f"Dynamics 365 ({host})" if several else "Dynamics 365",
        resource=org,
        scopes=(f"{org}/user_impersonation",),
        account_types=frozenset({WORK}),
        description=f"Reads the Dynamics 365 records you can see in {host}.",
        admin_consent_likely=False,
        data_plane_note="You also need a security role in that Dynamics 365 environment.",
    )


def dynamics_ids(orgs: Sequence[str]) -> list[tuple[str, str]]:
    """Return (id, org URL) pairs: "dynamics" first, then "dynamics-<first host label>"."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(orgs):
        org = _normalise_origin(raw, "PORTAL_DYNAMICS_ORGS")
        label = (urlsplit(org).hostname or "").split(".")[0]
        cid = "dynamics" if index == 0 else f"dynamics-{label}"
        if cid in seen:
            raise ConfigError(f"PORTAL_DYNAMICS_ORGS gives two organizations the id {cid!r}")
        seen.add(cid)
        out.append((cid, org))
    return out


def catalogue(
    scope_overrides: Mapping[str, Sequence[str]] | None = None,
    dynamics_orgs: Sequence[str] = ("https://contoso.crm.dynamics.com",),
) -> dict[str, Connector]:
    """Return every connector by id, with per-deployment scope overrides applied."""
    orgs = list(dynamics_orgs)
    base = _base()
    dynamics = [_dynamics(org, cid, len(orgs) > 1) for cid, org in dynamics_ids(orgs)]
    by_id = {c.id: c for c in [*base[:3], *dynamics, *base[3:]]}  # the order of product.md
    for cid, scopes in (scope_overrides or {}).items():
        if cid not in by_id:
            raise ConfigError(f"PORTAL_CONNECTOR_SCOPES names unknown connector {cid!r}")
        by_id[cid] = dataclasses.replace(by_id[cid], scopes=tuple(scopes))
    for connector in by_id.values():
        validate(connector)
    return by_id


def validate(connector: Connector) -> None:
    """Refuse scopes that are reserved, not full URIs, or span several resources."""
    if not connector.scopes:
        raise ConfigError(f"connector {connector.id!r} has no scopes")
    for scope in connector.scopes:
        if scope in RESERVED_SCOPES:
            raise ConfigError(f"connector {connector.id!r}: MSAL adds {scope!r} itself")
        resource, sep, name = scope.rpartition("/")
        parts = urlsplit(resource)
        if not sep or not name or parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"connector {connector.id!r}: scope {scope!r} is not a full URI")
        # One token request targets one resource (pitfall 6), so one resource per connector.
        if resource.rstrip("/") != connector.resource.rstrip("/"):
            raise ConfigError(
                f"connector {connector.id!r}: scope {scope!r} is not for {connector.resource}"
            )


def scope_words(scope: str) -> str:
    """Return Microsoft's consent-page wording for a scope, or its permission name if unknown."""
    resource, _, name = scope.rpartition("/")
    host = urlsplit(resource).hostname or ""
    if not resource or resource.rstrip("/") == GRAPH:
        table = GRAPH_WORDS
    elif resource.rstrip("/") == STORAGE:
        table = STORAGE_WORDS
    elif host.endswith(".dynamics.com"):
        table = DYNAMICS_WORDS
    else:
        table = {}
    return table.get(name) or next(
        (words for key, words in table.items() if key.lower() == name.lower()), name or scope
    )


def authority_tenant(connector: Connector, account_type: str | None) -> str:
    """Return the authority segment for this connector and chosen account type."""
    if account_type == PERSONAL:
        if not connector.allows_personal:
            raise ValueError(f"{connector.id} does not accept personal accounts")
        return "consumers"
    if account_type == WORK:
        return "organizations"
    if account_type is None:
        return "common" if connector.allows_personal else "organizations"
    raise ValueError(f"unknown account type {account_type!r}")


def account_type_for_tenant(tenant_id: str) -> str:
    """Return "personal" for the consumer tenant, else "work"."""
    return PERSONAL if tenant_id == MSA_TENANT else WORK


def _normalise_origin(raw: str, name: str) -> str:
    """Return https://host[:port] for an org URL, refusing anything else."""
    text = raw.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
        raise ConfigError(
            f"{name}: {raw!r} must be an https origin such as https://org.crm.dynamics.com"
        )
    return text
