"""Microsoft's managed user-consent policies, as published: what users may not grant themselves.

Source: "Manage app consent policies", section "Microsoft recommended current settings"
(learn.microsoft.com/entra/identity/enterprise-apps/manage-app-consent-policies, updated
2026-01-22). Under "Let Microsoft manage your consent settings" (the policy
microsoft-user-default-recommended) users may consent to any user-consentable delegated
permission except the ones below; the groups say when Microsoft added them. The mail client
policy (microsoft-user-default-allow-consent-apps), on by default beside it, gives the listed
permissions back for six named mail apps.
"""

from __future__ import annotations

SOURCE = (
    "https://learn.microsoft.com/entra/identity/enterprise-apps/manage-app-consent-policies"
    "#microsoft-recommended-current-settings"
)
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"  # Office 365 Exchange Online

# The permissions the recommended policy keeps from user consent, by when Microsoft added them.
RECOMMENDED_EXCLUSIONS: dict[str, tuple[str, ...]] = {
    # MC1097272, July to August 2025: files and sites.
    "2025 files and sites": (
        "Files.Read.All",
        "Files.ReadWrite.All",
        "Sites.Read.All",
        "Sites.ReadWrite.All",
    ),
    # October to November 2025: Outlook mail, calendar and mailbox, Teams chat and meetings,
    # and Exchange Online's mail protocols.
    "late-2025 Outlook mail and calendar": (
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
        "EAS.AccessAsUser.All",  # Exchange Online
        "EWS.AccessAsUser.All",  # Exchange Online
        "IMAP.AccessAsUser.All",  # Exchange Online
        "POP.AccessAsUser.All",  # Exchange Online
    ),
    # 2026: contacts, tasks and people.
    "2026 contacts, tasks and people": (
        "Contacts.ReadWrite",
        "Contacts.Read.Shared",
        "Contacts.ReadWrite.Shared",
        "People.Read",
        "Tasks.Read",
        "Tasks.ReadWrite",
        "Tasks.Read.Shared",
        "Tasks.ReadWrite.Shared",
    ),
}
# The setting recommended_2025_exclusions defaults to all of them (a world file may override).
ALL_EXCLUSIONS = [name for group in RECOMMENDED_EXCLUSIONS.values() for name in group]
# The resources whose permissions the lists name; any other resource's are never excluded.
LISTED_RESOURCES = frozenset({GRAPH_APP_ID, EXCHANGE_APP_ID})

# The mail client policy's apps (client IDs): users may grant them the excluded permissions.
# A tenant's allow_consent_apps replaces the list (an emulator switch, to test with any app).
MAIL_CLIENTS = {
    "f8d98a96-0999-43f5-8af3-69971c7bb423": "Apple Mail",
    "b50c1dbd-1855-4e54-b07c-d3c3029e93d3": "Spark Email",
    "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd": "eM Client",
    "8acd33ea-7197-4a96-bc33-d7cc7101262f": "Android-Samsung",
    "2cee05de-2b8f-45a2-8289-2a06ca32c4c8": "Android-Mail",
    "9e5f94bc-e8a4-4e73-b8be-63364c29d753": "Thunderbird",
}


def excluded(resource_app_id: str, name: str, exclusions: list[str]) -> bool:
    """Return True if the recommended policy keeps this permission from user consent."""
    if resource_app_id not in LISTED_RESOURCES:
        return False
    return name.lower() in {n.lower() for n in exclusions}  # permission names ignore case
