"""The AADSTS catalogue: one Diagnosis per code Entra answers with (entra-protocol.md §5).

Data, and the types it is made of; `app.diagnosis` picks an entry for an error and its context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from enum import StrEnum
from typing import Literal

Route = Literal["admin_approval", "diagnosis", "reconnect", "retry"]
AccountType = Literal["work", "personal"]


class Actor(StrEnum):
    """Who must act on a diagnosis."""

    USER = "user"
    TENANT_ADMIN = "tenant_admin"
    OPERATOR = "operator"
    HELPDESK = "helpdesk"

    @property
    def label(self) -> str:
        """Return the heading for this actor's steps."""
        return _ACTOR_LABELS[self]

    @property
    def who(self) -> str:
        """Return this actor as staff name them ("the user's organization's administrator")."""
        return _ACTOR_NAMES[self]


_ACTOR_LABELS = {
    Actor.USER: "What you can do",
    Actor.TENANT_ADMIN: "What your administrator must do",
    Actor.OPERATOR: "What the portal's operator must do",
    Actor.HELPDESK: "What your helpdesk can do",
}


_ACTOR_NAMES = {
    Actor.USER: "the user",
    Actor.TENANT_ADMIN: "an administrator of the user's organization",
    Actor.OPERATOR: "the portal's operator",
    Actor.HELPDESK: "the helpdesk",
}


@dataclass(frozen=True)
class Step:
    """One thing one actor should do."""

    actor: Actor
    text: str


@dataclass(frozen=True)
class Diagnosis:
    """A failure explained: what happened, who must act and how."""

    code: int | None
    key: str
    title: str
    summary: str
    actors: tuple[Actor, ...]
    steps: tuple[Step, ...]
    doc_url: str
    route: Route
    known: bool = True

    @property
    def aadsts(self) -> str:
        """Return the code as Entra prints it ("AADSTS50105"), or "" without one."""
        return "" if self.code is None else f"AADSTS{self.code}"

    @property
    def primary(self) -> Actor:
        """Return the actor who must act first."""
        return self.actors[0]

    def steps_for(self, actor: Actor) -> tuple[str, ...]:
        """Return the texts of this actor's steps, in order."""
        return tuple(step.text for step in self.steps if step.actor == actor)

    def steps_by_actor(self) -> list[tuple[Actor, tuple[str, ...]]]:
        """Return each actor with their steps, primary actor first."""
        return [(actor, self.steps_for(actor)) for actor in self.actors]


# --- The catalogue -------------------------------------------------------------------------

PORTAL = "the Connector Consent Portal"
CONSENT_ROLES = (
    "Global Administrator",
    "Privileged Role Administrator",
    "Cloud Application Administrator",
    "Application Administrator",
)

_USER = Actor.USER
_ADMIN = Actor.TENANT_ADMIN
_OPS = Actor.OPERATOR
_HELP = Actor.HELPDESK

_ROLES = ", ".join(CONSENT_ROLES[:-1]) + " or " + CONSENT_ROLES[-1]
_APP = "Microsoft Entra admin center > Enterprise applications > Connector Consent Portal"
APP_IN_ADMIN_CENTER = _APP  # where an administrator finds the portal's app; admin pages, mails

_LEARN = "https://learn.microsoft.com/entra"
DOC_ERROR_CODES = f"{_LEARN}/identity-platform/reference-error-codes"
_DOC_CONSENT = "https://learn.microsoft.com/troubleshoot/entra/entra-id/app-integration/troubleshoot-consent-issues"
_DOC_GRANT = f"{_LEARN}/identity/enterprise-apps/grant-admin-consent"
_DOC_WORKFLOW = f"{_LEARN}/identity/enterprise-apps/configure-admin-consent-workflow"
_DOC_USER_CONSENT = f"{_LEARN}/identity/enterprise-apps/configure-user-consent"
_DOC_PROPERTIES = f"{_LEARN}/identity/enterprise-apps/application-properties"
_DOC_ASSIGN = f"{_LEARN}/identity/enterprise-apps/assign-user-or-group-access-portal"
_DOC_REPLY_URL = f"{_LEARN}/identity-platform/reply-url"
_DOC_AUTH_CODE = f"{_LEARN}/identity-platform/v2-oauth2-auth-code-flow"
_DOC_ADMIN_CONSENT = f"{_LEARN}/identity-platform/v2-admin-consent"
_DOC_REFRESH = f"{_LEARN}/identity-platform/refresh-tokens"
_DOC_CA = f"{_LEARN}/identity/conditional-access/troubleshoot-conditional-access"
_DOC_MSAL = f"{_LEARN}/msal/python/advanced/msal-error-handling-python"

_SETUP_PROBLEM = Step(
    _USER,
    "This is a setup problem in the portal, not in your account: send the support details "
    "below to your helpdesk.",
)
_INTERNAL_PROBLEM = Step(
    _USER,
    "Try again. If it happens again, send the support details below to your helpdesk.",
)
_ADMIN_GRANTS = Step(
    _ADMIN,
    "Grant consent for the organization: press Grant for organization for {connector} in the "
    f"portal's admin console, or open {_APP} > Permissions > Grant admin consent. Roles that "
    f"can: {_ROLES}.",
)


def _entry(
    code: int | None,
    key: str,
    title: str,
    summary: str,
    steps: Sequence[Step],
    route: Route = "diagnosis",
    doc_url: str = DOC_ERROR_CODES,
) -> Diagnosis:
    """Build a catalogue entry; its actors are those of its steps, in order of appearance."""
    actors = tuple(dict.fromkeys(step.actor for step in steps))
    return Diagnosis(code, key, title, summary, actors, tuple(steps), doc_url, route)


def _internal(code: int, key: str, summary: str, fix: str) -> Diagnosis:
    """Build an entry for a portal bug the user can only retry and report."""
    steps = (Step(_OPS, fix), _INTERNAL_PROBLEM)
    return _entry(code, key, "Internal sign-in error", summary, steps, doc_url=_DOC_AUTH_CODE)


def _client_secret(code: int, key: str, what: str) -> Diagnosis:
    """Build an entry for a client credential that Entra refused."""
    return _entry(
        code,
        key,
        "The portal cannot prove its identity to Microsoft",
        f"Microsoft refused {PORTAL}'s own credentials: {what}. Nobody can connect until the "
        "operator fixes it.",
        (
            Step(
                _OPS,
                "Create a new client secret under the app registration's Certificates & "
                "secrets, put its Value (not its Secret ID) into the portal's settings, and "
                "restart the portal.",
            ),
            Step(_USER, "Nothing is wrong with your account. Try again later."),
        ),
    )


def _reconnect(code: int, key: str, title: str, summary: str) -> Diagnosis:
    """Build an entry whose cure is to reconnect the connector."""
    steps = (Step(_USER, "Reconnect {connector}; your connection code keeps working afterwards."),)
    return _entry(code, key, title, summary, steps, "reconnect", _DOC_REFRESH)


CONSENT_REQUIRED = _entry(
    65001,
    "consent_required",
    "Access to {connector} has not been approved",
    "Microsoft has no consent on record that lets " + PORTAL + " use {connector} for your "
    "account, so it would not issue a token.",
    (
        Step(
            _USER,
            "Reconnect {connector} and press Accept on Microsoft's Permissions requested page.",
        ),
        Step(
            _USER,
            'If Microsoft answers "Need admin approval", send your administrators an approval '
            "request from this page.",
        ),
        _ADMIN_GRANTS,
    ),
    "admin_approval",
    _DOC_CONSENT,
)

CONSENT_DECLINED = _entry(
    65004,
    "consent_declined",
    "Access was not granted",
    "Cancel was pressed on Microsoft's Permissions requested page, so {connector} was not "
    "given access.",
    (
        Step(
            _USER, "Connect {connector} again and press Accept on the Permissions requested page."
        ),
        Step(_USER, "If you'd rather not grant it yourself, ask your administrator to approve it."),
        _ADMIN_GRANTS,
    ),
    "retry",
    _DOC_CONSENT,
)

CONSENT_CANCELLED = _entry(
    65004,
    "consent_cancelled",
    "An administrator must approve {connector}",
    "{connector} needs an approval from your IT administrator before you can connect it, so no "
    "connection was made. Nothing is wrong with your account.",
    (
        _ADMIN_GRANTS,
        Step(
            _USER,
            "Send your administrators an approval request from this page; its status page "
            "shows when they decide.",
        ),
    ),
    "admin_approval",
    _DOC_GRANT,
)

ADMIN_DECLINED = _entry(
    65004,
    "admin_consent_declined",
    "Consent was not granted",
    "Microsoft came back from the organization-wide consent page for {connector} without "
    "granting it: Cancel was pressed, or the page was left. Nothing was recorded.",
    (
        Step(
            _ADMIN,
            "Start Grant for organization for {connector} again and press Accept on Microsoft's "
            "consent page.",
        ),
        Step(_ADMIN, f"Sign in to Microsoft with an account that holds one of: {_ROLES}."),
    ),
    "diagnosis",
    _DOC_ADMIN_CONSENT,
)

ADMIN_NOT_PERMITTED = _entry(
    90093,
    "admin_consent_not_permitted",
    "This account can't grant consent for the organization",
    "The account used on Microsoft's consent page for {connector} holds no role that can "
    "grant permissions for the whole organization, so nothing was granted.",
    (
        Step(
            _ADMIN,
            f"Sign in to Microsoft with an account that holds one of: {_ROLES}, then press "
            "Grant for organization again.",
        ),
        Step(
            _ADMIN,
            "A role that is only eligible in Privileged Identity Management must be activated "
            "first.",
        ),
    ),
    "diagnosis",
    _DOC_GRANT,
)

PERSONAL_NO_ADMIN_CONSENT = _entry(
    None,
    "personal_account_consent",
    "Personal accounts have no administrator to approve {connector}",
    "You signed in with a personal Microsoft account. Personal accounts have no organization "
    "and no admin consent: only you can grant {connector} access.",
    (
        Step(
            _USER,
            "Connect {connector} again and press Accept on Microsoft's Permissions requested page.",
        ),
        Step(
            _USER,
            "If {connector} is for your work, connect it with your work or school account "
            "instead; your organization's administrators can approve it there.",
        ),
    ),
    "diagnosis",
    f"{_LEARN}/identity-platform/supported-accounts-validation",
)

PERSONAL_WORK_ONLY = _entry(
    None,
    "personal_account_unsupported",
    "{connector} needs a work or school account",
    "You signed in with a personal Microsoft account, and {connector} only works with work or "
    "school accounts.",
    (Step(_USER, "Connect {connector} again and sign in with your work or school account."),),
    "diagnosis",
    f"{_LEARN}/identity-platform/supported-accounts-validation",
)

_BY_CODE_ENTRIES = (
    CONSENT_REQUIRED,
    CONSENT_DECLINED,
    _entry(
        90094,
        "admin_approval_required",
        "An administrator must approve {connector}",
        "Your organization lets only administrators grant the permissions {connector} asks for, "
        'so Microsoft showed "Need admin approval" instead of a consent page.',
        (
            _ADMIN_GRANTS,
            Step(
                _ADMIN,
                "To let users consent for themselves instead, review Enterprise applications > "
                "Consent and permissions > User consent settings.",
            ),
            Step(
                _USER,
                "Send your administrators an approval request from this page. When they approve "
                "it, you get a Try again link.",
            ),
            Step(_USER, "If you have an administrator account, sign in with it and grant consent."),
        ),
        "admin_approval",
        _DOC_USER_CONSENT,
    ),
    _entry(
        90095,
        "admin_approval_requested",
        "Your request went to your administrators",
        "Your organization uses Microsoft's admin consent workflow: the request sent from the "
        '"Approval required" page waits for a reviewer. Nothing is granted until they approve.',
        (
            Step(
                _ADMIN,
                "Review the request under Microsoft Entra admin center > Enterprise applications "
                "> Admin consent requests, or approve it in the portal's admin console.",
            ),
            Step(
                _USER,
                "After a reviewer approves, connect {connector} again: approval is not pushed to "
                "the portal. A request sent from this page shows its status here too.",
            ),
        ),
        "admin_approval",
        _DOC_WORKFLOW,
    ),
    _entry(
        90093,
        "admin_only_consent",
        "Only an administrator can approve this",
        "The permissions {connector} needs can only be granted by an administrator, and your "
        "account holds no role that can grant them.",
        (
            _ADMIN_GRANTS,
            Step(_USER, "Send your administrators an approval request from this page."),
        ),
        "admin_approval",
        _DOC_GRANT,
    ),
    _entry(
        90008,
        "user_read_missing",
        "The portal's app registration is missing User.Read",
        "Microsoft requires " + PORTAL + " to ask for the Microsoft Graph permission "
        '"Sign in and read user profile" (User.Read), and its app registration does not.',
        (
            Step(
                _OPS,
                "In the app registration, open API permissions, add Microsoft Graph > Delegated "
                "> User.Read, and grant consent again where tenants need it.",
            ),
            _SETUP_PROBLEM,
        ),
    ),
    _entry(
        50105,
        "user_not_assigned",
        "Your account is not assigned to " + PORTAL,
        'Your organization turned on "User assignment required" for ' + PORTAL + ": only "
        "users and groups assigned to it may sign in, and your account is not one of them.",
        (
            Step(
                _ADMIN,
                f"Assign the user, or a group they are in: {_APP} > Users and groups > "
                "Add user/group.",
            ),
            Step(
                _ADMIN,
                'Or, if everyone may use the portal, set "Assignment required?" (User '
                f"assignment required) to No under {_APP} > Properties.",
            ),
            Step(
                _ADMIN,
                "While User assignment required is on, users cannot consent for themselves: "
                "grant admin consent for {connector} as well.",
            ),
            Step(
                _USER,
                "Ask your administrator to assign your account to " + PORTAL + ", then connect "
                "{connector} again. The support details below tell them which sign-in failed.",
            ),
        ),
        doc_url=_DOC_ASSIGN,
    ),
    _entry(
        7000112,
        "app_disabled",
        "The Connector Consent Portal is disabled in your organization",
        'An administrator set "Enabled for users to sign-in?" to No for ' + PORTAL + ", so "
        "Microsoft issues it no tokens for anyone in your organization.",
        (
            Step(
                _ADMIN,
                f'Open {_APP} > Properties, set "Enabled for users to sign-in?" to Yes, and save.',
            ),
            Step(
                _USER,
                "Ask your administrator to enable " + PORTAL + "; you cannot fix this yourself.",
            ),
        ),
        doc_url=_DOC_PROPERTIES,
    ),
    _entry(
        700016,
        "app_not_found",
        "The portal's app is not known to this organization",
        "Microsoft found no application with " + PORTAL + "'s client ID in the directory it was "
        "asked about: the client ID or tenant is wrong, or the app was never added there.",
        (
            Step(
                _OPS,
                "Compare the portal's client ID and tenant settings with the app registration's "
                "Overview page (Application (client) ID, Directory (tenant) ID).",
            ),
            Step(
                _ADMIN,
                "For a multi-tenant portal, an administrator adds it to the organization by "
                "granting admin consent once.",
            ),
        ),
    ),
    _entry(
        50011,
        "redirect_uri_mismatch",
        "The portal's reply address is not registered",
        "The redirect URI " + PORTAL + " sent matches none in its app registration, so "
        "Microsoft stopped the sign-in.",
        (
            Step(
                _OPS,
                "Under the app registration's Authentication, Web platform, add the portal's "
                "callback URL (ending in /auth/callback) exactly as the portal sends it.",
            ),
            _SETUP_PROBLEM,
        ),
        doc_url=_DOC_REPLY_URL,
    ),
    _entry(
        500113,
        "no_redirect_uri_registered",
        "The portal's app has no reply address",
        "The app registration of " + PORTAL + " has no redirect URI at all, so Microsoft "
        "cannot send anyone back to the portal.",
        (
            Step(
                _OPS,
                "Under the app registration's Authentication, add a Web platform with the "
                "portal's callback URL (ending in /auth/callback).",
            ),
            _SETUP_PROBLEM,
        ),
        doc_url=_DOC_REPLY_URL,
    ),
    _entry(
        900971,
        "no_redirect_uri_sent",
        "The sign-in request had no reply address",
        "The sign-in request from " + PORTAL + " carried no redirect URI.",
        (
            Step(
                _OPS,
                "Check that the portal's redirect URI setting is an absolute URL and that no "
                "proxy strips it from the request.",
            ),
            _SETUP_PROBLEM,
        ),
        doc_url=_DOC_REPLY_URL,
    ),
    _client_secret(
        7000215,
        "client_secret_invalid",
        "the client secret is wrong (often the secret's ID was configured instead of its value)",
    ),
    _client_secret(7000222, "client_secret_expired", "the client secret has expired"),
    _client_secret(
        7000218,
        "client_secret_missing",
        "the token request carried no client secret or certificate",
    ),
    _reconnect(
        70008,
        "grant_expired",
        "Your {connector} connection expired",
        "The sign-in code or refresh token behind {connector} expired or was revoked, so the "
        "portal can no longer get tokens for it.",
    ),
    _entry(
        54005,
        "code_already_used",
        "That sign-in was already used",
        "The sign-in code Microsoft sent back had already been redeemed, usually because the "
        "page was reloaded or opened twice.",
        (
            Step(_USER, "Start connecting {connector} again from its page."),
            Step(
                _OPS,
                "If it happens without reloads, look in the logs for a callback handled twice.",
            ),
        ),
        "retry",
        _DOC_AUTH_CODE,
    ),
    _entry(
        700082,
        "refresh_token_inactive",
        "Your {connector} connection was idle too long",
        "Microsoft expires a refresh token that has not been used for 90 days, and the "
        "{connector} connection was idle that long.",
        (
            Step(_USER, "Reconnect {connector}; your connection code keeps working afterwards."),
            Step(
                _OPS,
                "Schedule the keep-alive job (consent-portal jobs run) so idle connections are "
                "refreshed before the limit.",
            ),
        ),
        "reconnect",
        _DOC_REFRESH,
    ),
    _reconnect(
        50173,
        "grant_revoked",
        "Your sign-in to {connector} was revoked",
        "The grant behind the {connector} connection is no longer valid: the password changed, "
        "or an administrator revoked the account's sessions.",
    ),
    _reconnect(
        70043,
        "sign_in_frequency",
        "Your organization requires you to sign in again",
        "A Conditional Access sign-in frequency policy of your organization ended the session "
        "behind the {connector} connection.",
    ),
    _entry(
        50076,
        "mfa_required",
        "Multi-factor sign-in required",
        "Your organization requires multi-factor authentication for this access, and the saved "
        "{connector} connection cannot complete it on its own.",
        (
            Step(
                _USER,
                "Reconnect {connector} and complete the multi-factor sign-in (for example, "
                "approve the prompt in Microsoft Authenticator).",
            ),
        ),
        "reconnect",
    ),
    _entry(
        50079,
        "mfa_registration_required",
        "Set up multi-factor authentication",
        "Your organization requires you to register a multi-factor authentication method "
        "before you can use {connector}.",
        (
            Step(
                _USER,
                "Reconnect {connector}; Microsoft walks you through registering a method such "
                "as Microsoft Authenticator.",
            ),
        ),
        "reconnect",
    ),
    _entry(
        50057,
        "user_disabled",
        "The account is disabled",
        "Your organization disabled the Microsoft account behind the {connector} connection, "
        "so Microsoft no longer signs it in or issues tokens for it. Nothing was deleted here.",
        (
            Step(
                _ADMIN,
                "If the account should work again, enable it: Microsoft Entra admin center > "
                "Users > the user > Edit properties > Settings > Account enabled.",
            ),
            Step(
                _USER,
                "Once your IT administrator has enabled the account, Reconnect {connector}; your "
                "connection code keeps working afterwards.",
            ),
        ),
        "reconnect",
    ),
    _entry(
        53003,
        "conditional_access_blocked",
        "Blocked by your organization's access policy",
        "A Conditional Access policy of your organization blocked this sign-in, for example "
        "because of the device, the location or the app.",
        (
            Step(
                _ADMIN,
                "Find the sign-in in Microsoft Entra admin center > Sign-in logs by its "
                "correlation ID; the Conditional Access tab names the policy that blocked it.",
            ),
            Step(
                _USER,
                "Try again from a device and network your organization allows (for example a "
                "managed work device, the office network or the VPN).",
            ),
            Step(
                _USER,
                "If it still fails, contact your IT department with the support details below.",
            ),
        ),
        doc_url=_DOC_CA,
    ),
    _entry(
        50058,
        "no_session",
        "Sign-in needed",
        "Microsoft was asked to sign you in silently, but you have no active session with it.",
        (Step(_USER, "Try again; Microsoft will ask you to sign in."),),
        "retry",
        _DOC_AUTH_CODE,
    ),
    _entry(
        50126,
        "wrong_password",
        "Wrong user name or password",
        "Microsoft did not accept the user name or password.",
        (
            Step(
                _USER,
                "Try again and check your user name and password. If you forgot the password, "
                "use your organization's password reset.",
            ),
        ),
        "retry",
    ),
    _entry(
        50034,
        "account_not_found",
        "Account not found in this organization",
        "The account you signed in with does not exist in the directory the portal asked.",
        (
            Step(_USER, "Sign in with your work or school account of this organization."),
            Step(
                _ADMIN,
                "If this person should have access, create their account or invite them as a "
                "guest (Microsoft Entra admin center > Users).",
            ),
        ),
    ),
    _entry(
        50020,
        "account_not_in_tenant",
        "This account can't be used with your organization's portal",
        "The account belongs to another organization, or is a personal Microsoft account, and "
        "is neither a member nor a guest of the organization the portal signs in to.",
        (
            Step(
                _ADMIN,
                "To let this person in, invite them as a guest: Microsoft Entra admin center > "
                "Users > Invite external user.",
            ),
            Step(_USER, "Sign in with an account of the organization that runs this portal."),
            Step(
                _OPS,
                "If the portal should accept accounts of any organization, configure it with the "
                "organizations or common authority.",
            ),
        ),
    ),
    _entry(
        500208,
        "account_type_not_allowed",
        "This type of account is not allowed here",
        "The account's type (work or school, or personal) does not fit the organization the "
        "portal signs in to.",
        (
            Step(
                _USER,
                "Sign in with another account: a work or school account of your organization.",
            ),
        ),
    ),
    _entry(
        9002332,
        "work_only_app_at_consumers",
        "The portal accepts work or school accounts only",
        "The portal started a personal-account sign-in (/consumers), but its app registration "
        "only accepts work or school accounts.",
        (
            Step(
                _OPS,
                "Use an organizations, common or tenant authority, or change the app "
                "registration's supported account types.",
            ),
            _SETUP_PROBLEM,
        ),
    ),
    _entry(
        50194,
        "single_tenant_app_at_common",
        "The portal is registered for one organization only",
        "The portal's app registration accepts accounts of one organization only, but the "
        "portal signed in through the shared /common endpoint.",
        (
            Step(
                _OPS,
                "Set the portal's tenant to your directory (tenant) ID or domain, or make the "
                "app registration multi-tenant.",
            ),
            _SETUP_PROBLEM,
        ),
    ),
    _entry(
        90002,
        "tenant_not_found",
        "Organization not found",
        "Microsoft could not find the organization (tenant) the portal asked for: its name or ID "
        "is wrong, or it no longer exists.",
        (
            Step(
                _OPS,
                "Check the portal's tenant setting: a directory (tenant) ID or a verified domain.",
            ),
            Step(_USER, "If you typed an organization name or domain, check it and try again."),
        ),
    ),
    _entry(
        70011,
        "scope_not_found",
        "The portal asked for a permission that doesn't exist",
        "Microsoft rejected a permission (scope) that " + PORTAL + " asked for on behalf of "
        "{connector}: it does not exist for this resource, or not for this kind of account.",
        (
            Step(
                _OPS,
                "Check {connector}'s scopes in the portal's connector catalogue (full URI form, "
                "one resource per token request).",
            ),
            Step(
                _USER,
                "If you signed in with a personal Microsoft account, connect with a work or "
                "school account instead.",
            ),
        ),
    ),
    _entry(
        28002,
        "invalid_scope_value",
        "The portal asked for an invalid permission",
        "A permission (scope) that " + PORTAL + " asked for on behalf of {connector} is not valid.",
        (
            Step(_OPS, "Check {connector}'s scopes in the portal's connector catalogue."),
            _SETUP_PROBLEM,
        ),
    ),
    _entry(
        28003,
        "empty_scope",
        "The portal asked for no permission",
        "The sign-in request from " + PORTAL + " for {connector} carried an empty scope.",
        (
            Step(_OPS, "Check {connector}'s scopes in the portal's connector catalogue."),
            _SETUP_PROBLEM,
        ),
    ),
    _internal(
        28000,
        "scopes_span_resources",
        "The portal asked for one token covering several resources, which Microsoft refuses.",
        "Redeem the code with one resource's scopes and get the others with "
        "acquire_token_silent; the logs name the request.",
    ),
    _internal(
        700022,
        "scopes_span_resources_multi",
        "The portal asked for one token covering several resources, which Microsoft refuses.",
        "Request one resource's scopes per token request; the logs name the request.",
    ),
    _internal(
        501481,
        "pkce_mismatch",
        "The code verifier the portal sent did not match the sign-in's code challenge (PKCE).",
        "Check that each sign-in flow is stored server-side and redeemed once, by the session "
        "that started it.",
    ),
    _internal(
        700005,
        "code_wrong_tenant",
        "The sign-in code was redeemed at another organization than the one that issued it.",
        "Redeem codes at the authority (tenant) that the sign-in used.",
    ),
    _entry(
        65005,
        "permission_not_configured",
        "The portal's app registration lacks a permission",
        "{connector} needs a permission that is missing from the required permissions of "
        + PORTAL
        + "'s app registration, or names a resource that does not exist.",
        (
            Step(_OPS, "Add the API permission under the app registration's API permissions."),
            Step(_ADMIN, "After the operator adds it, grant consent for the organization again."),
        ),
        doc_url=_DOC_CONSENT,
    ),
    _entry(
        650056,
        "misconfigured_application",
        "The portal's app registration is misconfigured",
        "The app registration of " + PORTAL + " does not list a permission that the sign-in for "
        "{connector} asked for, or an administrator has not consented to it.",
        (
            Step(_OPS, "Add the permission under the app registration's API permissions."),
            _ADMIN_GRANTS,
        ),
        doc_url=_DOC_CONSENT,
    ),
    _entry(
        650057,
        "resource_not_configured",
        "The portal's app registration lacks an API",
        "The sign-in for {connector} asked for an API (resource) that is not among the required "
        "permissions of " + PORTAL + "'s app registration.",
        (
            Step(
                _OPS, "Add the API and its permission under the app registration's API permissions."
            ),
            Step(_ADMIN, "After the operator adds it, grant consent for the organization again."),
        ),
        doc_url=_DOC_CONSENT,
    ),
    _entry(
        650052,
        "service_not_enabled",
        "{connector} isn't available in your organization",
        "Your organization has not subscribed to or enabled the Microsoft service behind "
        "{connector} (for example SharePoint Online, Exchange Online or Dynamics 365).",
        (
            Step(
                _ADMIN,
                "Check in the Microsoft 365 admin center that the organization has the service "
                "and that it is set up.",
            ),
            Step(
                _USER,
                "Ask your administrator whether {connector} is available to your organization.",
            ),
        ),
    ),
    _entry(
        500011,
        "resource_not_in_tenant",
        "{connector} isn't available in your organization",
        "The Microsoft service behind {connector} was not found in your organization's "
        "directory: it was never set up there, or its address is wrong.",
        (
            Step(
                _ADMIN,
                "Check in the Microsoft 365 admin center that the organization has the service.",
            ),
            Step(
                _OPS, "Check {connector}'s resource address (for example the Dynamics 365 org URL)."
            ),
            Step(
                _USER,
                "Ask your administrator whether {connector} is available to your organization.",
            ),
        ),
    ),
    _entry(
        9002313,
        "malformed_request",
        "Reconnect {connector}",
        "Microsoft could not read the portal's request, for example because a stored token "
        "is damaged.",
        (
            Step(_USER, "Reconnect {connector}; your connection code keeps working afterwards."),
            Step(_OPS, "Look in the logs for this request; a stored token may be corrupt."),
        ),
        "reconnect",
    ),
)

# Outcomes with an OAuth `error` but no AADSTS code.
_BY_ERROR_ENTRIES = (
    _entry(
        None,
        "access_denied",
        "Access was denied",
        "Microsoft did not grant access to {connector} and gave no further reason.",
        (
            _INTERNAL_PROBLEM,
            Step(_HELP, "Find the sign-in in the Entra sign-in logs by its correlation ID."),
        ),
        "retry",
    ),
    _entry(
        None,
        "interaction_required",
        "Sign in again to {connector}",
        "Microsoft needs you to sign in again before {connector} can be used.",
        (Step(_USER, "Reconnect {connector}; your connection code keeps working afterwards."),),
        "reconnect",
        _DOC_MSAL,
    ),
    _entry(
        None,
        "invalid_grant",
        "Your {connector} connection needs renewing",
        "Microsoft no longer accepts the saved sign-in behind {connector}.",
        (Step(_USER, "Reconnect {connector}; your connection code keeps working afterwards."),),
        "reconnect",
        _DOC_MSAL,
    ),
    _entry(
        None,
        "invalid_client",
        "The portal cannot prove its identity to Microsoft",
        "Microsoft refused " + PORTAL + "'s own credentials.",
        (
            Step(_USER, "Nothing is wrong with your account. Try again later."),
            Step(_OPS, "Check the client ID and client secret in the portal's settings."),
        ),
    ),
    _entry(
        None,
        "unauthorized_client",
        "The portal may not sign in this way",
        "Microsoft refused to let " + PORTAL + " sign in: the app is disabled, unknown in this "
        "organization, or not allowed this kind of sign-in.",
        (
            Step(
                _OPS, "Check the app registration and the portal's client ID and tenant settings."
            ),
            _SETUP_PROBLEM,
        ),
    ),
    _entry(
        None,
        "invalid_request",
        "Internal sign-in error",
        "Microsoft could not accept the sign-in request that " + PORTAL + " sent.",
        (_INTERNAL_PROBLEM, Step(_OPS, "Look in the logs for this request.")),
        doc_url=_DOC_AUTH_CODE,
    ),
    _entry(
        None,
        "invalid_scope",
        "The portal asked for a permission Microsoft refused",
        "Microsoft refused a permission (scope) that " + PORTAL + " asked for on behalf of "
        "{connector}.",
        (
            Step(_OPS, "Check {connector}'s scopes in the portal's connector catalogue."),
            Step(
                _USER,
                "If you signed in with a personal Microsoft account, connect with a work or "
                "school account instead.",
            ),
        ),
    ),
    _entry(
        None,
        "invalid_resource",
        "{connector} isn't available in your organization",
        "Microsoft does not know the service behind {connector} in your organization.",
        (
            Step(
                _ADMIN,
                "Check in the Microsoft 365 admin center that the organization has the service.",
            ),
            Step(_OPS, "Check {connector}'s resource address."),
        ),
    ),
    _entry(
        None,
        "temporarily_unavailable",
        "Microsoft sign-in is temporarily unavailable",
        "Microsoft's sign-in service is busy or briefly unavailable; nothing is wrong with your "
        "account.",
        (Step(_USER, "Wait a minute and try again."),),
        "retry",
    ),
    _entry(
        None,
        "server_error",
        "Microsoft sign-in had an internal error",
        "Microsoft's sign-in service failed while handling the request; nothing is wrong with "
        "your account.",
        (_INTERNAL_PROBLEM,),
        "retry",
    ),
)

BY_CODE: Mapping[int, Diagnosis] = {d.code: d for d in _BY_CODE_ENTRIES if d.code is not None}

# A stored connection's refresh failed: the same code means something else than at sign-in (the
# account existed and the app worked when the connection was made).
_AT_REFRESH_ENTRIES = (
    _entry(
        50034,
        "account_deleted",
        "The account was deleted",
        "The Microsoft account behind the {connector} connection no longer exists in your "
        "organization's directory, so Microsoft issues no tokens for it. Nothing was deleted "
        "here: the connection and its code wait for the account.",
        (
            Step(
                _ADMIN,
                "If the account was deleted by mistake, restore it within 30 days: Microsoft Entra "
                "admin center > Users > Deleted users > the user > Restore user.",
            ),
            Step(
                _USER,
                "Once the account is restored, Reconnect {connector}; your connection code keeps "
                "working afterwards. If it is gone for good, the connection can be revoked.",
            ),
        ),
        "reconnect",
        _DOC_REFRESH,
    ),
    _entry(
        65001,
        "consent_withdrawn",
        "Access to {connector} was withdrawn",
        "Microsoft no longer has a consent on record for " + PORTAL + " to use {connector} for "
        "this account: an administrator or the account's owner removed the permissions.",
        (
            Step(
                _USER,
                "Reconnect {connector} and press Accept on Microsoft's Permissions requested page; "
                "your connection code keeps working afterwards.",
            ),
            Step(
                _USER,
                'If Microsoft answers "Need admin approval", send your administrators an approval '
                "request from that page.",
            ),
            _ADMIN_GRANTS,
        ),
        "reconnect",
        _DOC_CONSENT,
    ),
    _entry(
        700016,
        "app_removed",
        PORTAL[:1].upper() + PORTAL[1:] + " was removed from your organization",
        "An administrator deleted " + PORTAL + "'s enterprise application (its service "
        "principal) in your organization, and its permissions with it, so Microsoft issues it "
        "no tokens there.",
        (
            Step(
                _ADMIN,
                "If the portal should work again, add it back by granting consent for the "
                "organization: press Grant for organization in the portal's admin console, or "
                "sign in to the portal as an administrator and accept.",
            ),
            Step(
                _USER,
                "Once your administrator has added the portal again, Reconnect {connector}; your "
                "connection code keeps working afterwards.",
            ),
        ),
        "reconnect",
        _DOC_PROPERTIES,
    ),
)
AT_REFRESH: Mapping[int, Diagnosis] = {d.code: d for d in _AT_REFRESH_ENTRIES if d.code is not None}
CATALOGUE: Mapping[str, Diagnosis] = {
    d.key: d
    for d in (
        *_BY_CODE_ENTRIES,
        *_AT_REFRESH_ENTRIES,
        *_BY_ERROR_ENTRIES,
        CONSENT_CANCELLED,
        ADMIN_DECLINED,
        ADMIN_NOT_PERMITTED,
        PERSONAL_NO_ADMIN_CONSENT,
        PERSONAL_WORK_ONLY,
    )
}
# OAuth error values that mean the same as a code (entra-protocol.md §5).
_ERROR_ALIASES = {"consent_required": 65001, "login_required": 50058}
BY_ERROR: Mapping[str, Diagnosis] = {d.key: d for d in _BY_ERROR_ENTRIES} | {
    error: BY_CODE[code] for error, code in _ERROR_ALIASES.items()
}
OAUTH_ERRORS = frozenset(BY_ERROR) | {"unsupported_response_type"}


def unknown(code: int | None, error: str = "") -> Diagnosis:
    """Return an honest diagnosis for a code or error the catalogue does not know."""
    error = re.sub(r"[^a-z0-9_.-]", "", error)[:64]
    if code is not None:
        title = f"Sign-in failed with AADSTS{code}"
        what = f"Microsoft answered with error code AADSTS{code}"
    elif error:
        title, what = "Sign-in failed", f"Microsoft answered with the error {error}"
    else:
        title, what = "Sign-in failed", "The sign-in failed without an error code"
    lookup = f"AADSTS{code}" if code is not None else "the error"
    steps = (
        Step(_USER, "Copy the support details below and send them to your helpdesk."),
        Step(
            _HELP,
            f"Look up {lookup} in Microsoft's error code reference and find the sign-in in the "
            "Entra sign-in logs by its correlation ID.",
        ),
    )
    summary = f"{what}, which {PORTAL} does not know how to explain yet."
    return replace(_entry(code, "unknown", title, summary, steps), known=False)
