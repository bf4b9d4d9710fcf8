"""Which of a connector's scopes a tenant's users may grant themselves; Flask-free.

Computed, before any redirect, from the user-consent policies Microsoft Graph reports for the
tenant (authorizationPolicy's permissionGrantPoliciesAssigned) and Microsoft's published list
for its managed policy: "Manage app consent policies", section "Microsoft recommended current
settings" (updated 2026-01-22). The portal keeps its own copy of that list here; it never
imports the emulator, which has another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.connectors import GRAPH

SOURCE = (
    "https://learn.microsoft.com/entra/identity/enterprise-apps/manage-app-consent-policies"
    "#microsoft-recommended-current-settings"
)
EXCHANGE = ("https://outlook.office365.com", "https://outlook.office.com")  # Exchange Online
# What "Let Microsoft manage your consent settings" keeps from user consent, by when Microsoft
# added it: (what staff read, the permission names). Graph's names, and Exchange Online's four.
MANAGED_EXCLUSIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "2025 files and sites": (
        "on Microsoft's list since July 2025 (files and sites, MC1097272)",
        ("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All"),
    ),
    "late-2025 Outlook mail and calendar": (
        "on Microsoft's list since late 2025 (Outlook mail, calendar and mailbox)",
        (
            "Mail.Read",
            "Mail.ReadWrite",
            "Mail.ReadBasic",
            "Mail.Read.Shared",
            "Mail.ReadBasic.Shared",
            "Mail.ReadWrite.Shared",
            "MailboxItem.Read",
            "Calendars.Read",
            "Calendars.ReadBasic",
            "Calendars.ReadWrite",
            "Calendars.Read.Shared",
            "Calendars.ReadWrite.Shared",
            "Chat.Read",
            "Chat.ReadWrite",
            "OnlineMeetings.Read",
            "OnlineMeetings.ReadWrite",
            "MailboxFolder.Read",
            "MailboxFolder.ReadWrite",
            "MailboxSettings.Read",
            "MailboxSettings.ReadWrite",
            "EAS.AccessAsUser.All",
            "EWS.AccessAsUser.All",
            "IMAP.AccessAsUser.All",
            "POP.AccessAsUser.All",
        ),
    ),
    "2026 contacts, tasks and people": (
        "on Microsoft's list since 2026 (contacts, tasks and people)",
        (
            "Contacts.ReadWrite",
            "Contacts.Read.Shared",
            "Contacts.ReadWrite.Shared",
            "People.Read",
            "Tasks.Read",
            "Tasks.ReadWrite",
            "Tasks.Read.Shared",
            "Tasks.ReadWrite.Shared",
        ),
    ),
}
_LISTED = {
    name.lower(): why for why, names in MANAGED_EXCLUSIONS.values() for name in names
}  # permission names ignore case
# Graph delegated permissions that need an admin by their own definition, whatever the policy
# (the permissions reference's "Admin consent required"); the ones a deployment might configure.
ADMIN_ONLY = frozenset(
    name.lower()
    for name in (
        "Sites.Selected",
        "Sites.FullControl.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
        "User.Read.All",
        "Application.Read.All",
        "Policy.Read.All",
    )
)
SELF = "managepermissiongrantsforself."
LEGACY = "microsoft-user-default-legacy"
LOW = "microsoft-user-default-low"
RECOMMENDED = "microsoft-user-default-recommended"
MAIL_CLIENTS = "microsoft-user-default-allow-consent-apps"  # six named mail apps only
# The admin center's names for Microsoft's built-in user-consent policies.
POLICY_LABELS = {
    LEGACY: "Allow user consent for apps",
    LOW: "Allow user consent for apps from verified publishers, for selected permissions",
    RECOMMENDED: "Let Microsoft manage your consent settings",
    MAIL_CLIENTS: "Popular mail clients consentable for users",
}
USER, ADMIN, DEPENDS = "user", "admin", "depends"


@dataclass(frozen=True)
class Scope:
    """One scope of a connector: who may grant it in this tenant, and why (for staff)."""

    uri: str
    name: str
    who: str  # USER, ADMIN or DEPENDS
    why: str


@dataclass(frozen=True)
class Split:
    """A connector's scopes under a tenant's user-consent policies."""

    policy: str  # the policies' names as the admin center shows them
    scopes: tuple[Scope, ...]

    def who(self, who: str) -> list[Scope]:
        """Return the scopes that USER, ADMIN or DEPENDS may grant."""
        return [scope for scope in self.scopes if scope.who == who]


def self_policies(assigned: Sequence[str]) -> list[str]:
    """Return the user-consent policy ids among Graph's permissionGrantPoliciesAssigned."""
    return [p[len(SELF) :] for p in (str(a).lower() for a in assigned) if p.startswith(SELF)]


def policy_label(assigned: Sequence[str]) -> str:
    """Return the tenant's user-consent setting in the admin center's words."""
    ids = self_policies(assigned)
    if not ids:
        return "Do not allow user consent"
    if RECOMMENDED in ids:  # the mail client policy rides along with it by default
        ids = [p for p in ids if p != MAIL_CLIENTS] or ids
    return "; ".join(POLICY_LABELS.get(p, f"a custom policy ({p})") for p in ids)


def listed(scope: str) -> str:
    """Return why Microsoft's managed policy keeps this scope from users, or "" if it does not."""
    resource, _, name = scope.rpartition("/")
    if resource.rstrip("/") not in (GRAPH, *EXCHANGE):
        return ""
    return _LISTED.get(name.lower(), "")


def split(
    assigned: Sequence[str], scopes: Sequence[str], *, assignment_required: bool = False
) -> Split:
    """Return who may grant each scope: one policy allowing it is enough (Microsoft's rule)."""
    ids = self_policies(assigned)
    return Split(
        policy_label(assigned),
        tuple(_one(scope, ids, assignment_required) for scope in scopes),
    )


def _one(scope: str, ids: Sequence[str], assignment_required: bool) -> Scope:
    """Return who may grant one scope under these user-consent policies."""
    resource, _, name = scope.rpartition("/")
    if assignment_required:
        return Scope(scope, name, ADMIN, '"Assignment required?" is Yes: only an admin can grant')
    if resource.rstrip("/") == GRAPH and name.lower() in ADMIN_ONLY:
        return Scope(scope, name, ADMIN, "needs an admin by its definition, whatever the policy")
    if not ids:
        return Scope(scope, name, ADMIN, "user consent is off")
    verdicts = [_verdict(scope, policy) for policy in ids]
    for who in (USER, DEPENDS):
        why = next((why for found, why in verdicts if found == who), None)
        if why is not None:
            return Scope(scope, name, who, why)
    return Scope(scope, name, ADMIN, verdicts[0][1])


def _verdict(scope: str, policy: str) -> tuple[str, str]:
    """Return (who, why) under one policy; each is evaluated on its own."""
    if policy == LEGACY:
        return USER, "users may grant any permission that needs no admin"
    if policy == RECOMMENDED:
        why = listed(scope)
        return (ADMIN, why) if why else (USER, "not on Microsoft's list")
    if policy == LOW:
        return DEPENDS, (
            "only if an admin classified it low impact and the app is from a verified publisher "
            "or registered in your tenant"
        )
    if policy == MAIL_CLIENTS:  # it gives the list back to six named mail apps, never this portal
        return ADMIN, "the mail client policy covers six named mail apps only"
    return DEPENDS, f"depends on the custom policy {policy}"
