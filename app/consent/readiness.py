"""Tenant readiness: the enterprise app, consent policy and grants read from Graph; Flask-free."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from app.connectors import GRAPH
from app.connectors import Connector
from app.errors import GraphUnavailable

# The delegated Graph permissions the readiness check reads with (admin-only, work accounts).
SCOPES = (
    f"{GRAPH}/Application.Read.All",
    f"{GRAPH}/Policy.Read.All",
    f"{GRAPH}/Directory.Read.All",
)
# What each of those permissions lets the check read, said before the admin is sent to accept.
WHY = {
    f"{GRAPH}/Application.Read.All": "the portal's enterprise app: whether it is enabled, "
    "visible and needs assignment, and who is assigned to it",
    f"{GRAPH}/Policy.Read.All": "your user-consent policy and the admin consent workflow",
    f"{GRAPH}/Directory.Read.All": "the permissions already granted to the portal for your "
    "organization",
}
# The admin's sign-in for the checklist: Graph read scopes, never stored.
SIGN_IN = Connector(
    id="readiness",
    name="Tenant readiness",
    resource=GRAPH,
    scopes=SCOPES,
    account_types=frozenset({"work"}),
    description="Reads your enterprise app, consent settings and grants to check them.",
    admin_consent_likely=True,
    data_plane_note="",
)
ENTERPRISE_APP = "Microsoft Entra admin center > Enterprise applications > {app}"
CONSENT_SETTINGS = (
    "Microsoft Entra admin center > Enterprise applications > Consent and permissions > "
    "User consent settings"
)
POLICY_NAMES = {
    "microsoft-user-default-legacy": ("Allow user consent for apps", True),
    "microsoft-user-default-low": ("Verified publishers, selected permissions", False),
    "microsoft-user-default-recommended": ("Let Microsoft manage your consent settings", False),
}


@dataclass(frozen=True)
class Check:
    """One readiness item: OK, a problem or information, and what to change where."""

    name: str
    status: str  # "ok", "problem" or "info"
    found: str
    fix: str = ""


def as_dicts(checks: Sequence[Check]) -> list[dict[str, str]]:
    """Return checks as plain dicts (kept in the session between pages)."""
    return [asdict(check) for check in checks]


class Graph:
    """A few Graph calls with one admin's access token."""

    def __init__(self, http: requests.Session, base: str, token: str, timeout: float) -> None:
        self.http, self.base, self.token, self.timeout = http, base.rstrip("/"), token, timeout

    def get(self, path: str) -> dict[str, Any]:
        """Return a Graph JSON answer, or raise GraphUnavailable."""
        return dict(self._call("GET", path, None, 200).json())

    def change(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> None:
        """Send a PATCH or DELETE that Graph answers with 204, or raise GraphUnavailable."""
        self._call(method, path, body, 204)

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None, expected: int
    ) -> requests.Response:
        """Make one Graph call; anything but the expected status is GraphUnavailable."""
        try:
            response = self.http.request(
                method,
                f"{self.base}/v1.0/{path}",
                headers={"Authorization": f"Bearer {self.token}"},
                json=body,
                timeout=self.timeout,
            )
        except (requests.RequestException, OSError) as error:
            raise GraphUnavailable(type(error).__name__) from None
        if response.status_code != expected:
            raise GraphUnavailable(f"Graph answered {response.status_code} for {path[:60]}")
        return response


def check(
    graph: Graph,
    client_id: str,
    app_name: str,
    connectors: Mapping[str, Connector],
    requesters: Mapping[str, str],
) -> list[Check]:
    """Return the readiness checklist for the admin's tenant."""
    where = ENTERPRISE_APP.format(app=app_name)
    found = graph.get(f"servicePrincipals?$filter=appId eq '{quote(client_id)}'").get("value")
    if not found:
        missing = Check(
            "Enterprise app in your tenant",
            "problem",
            "Not found: nobody in your organization has consented yet.",
            "Grant for organization once (below): that creates the enterprise app.",
        )
        return [missing, *_policies(graph)]
    sp = found[0]
    checks = [
        Check("Enterprise app in your tenant", "ok", f"{sp.get('displayName')} ({sp.get('id')})"),
        _enabled(sp, where),
        _assignment(graph, sp, where, requesters),
        _visible(sp, where),
        *_policies(graph),
        _grants(graph, sp, connectors),
    ]
    return checks


def _enabled(sp: Mapping[str, Any], where: str) -> Check:
    """Return the "Enabled for users to sign-in?" item."""
    if sp.get("accountEnabled", True):
        return Check('"Enabled for users to sign-in?"', "ok", "Yes")
    fix = f'Set "Enabled for users to sign-in?" to Yes under {where} > Properties.'
    return Check('"Enabled for users to sign-in?"', "problem", "No: nobody can connect", fix)


def _assignment(
    graph: Graph, sp: Mapping[str, Any], where: str, requesters: Mapping[str, str]
) -> Check:
    """Return the "User assignment required?" item, naming requesters who are not assigned."""
    name = '"User assignment required?"'
    if not sp.get("appRoleAssignmentRequired"):
        return Check(name, "ok", "No: everyone in your organization may connect")
    assigned = graph.get(f"servicePrincipals/{quote(str(sp.get('id')))}/appRoleAssignedTo")
    ids = {str(a.get("principalId")) for a in assigned.get("value") or ()}
    left_out = sorted(user for oid, user in requesters.items() if oid not in ids)
    found = "Yes: only assigned users and groups can connect (others get AADSTS50105)"
    if left_out:
        found += "; not assigned: " + ", ".join(left_out)
    fix = (
        f"Assign the people who need it under {where} > Users and groups > Add user/group, or "
        f'set "Assignment required?" to No under {where} > Properties.'
    )
    return Check(name, "problem", found, fix)


def _visible(sp: Mapping[str, Any], where: str) -> Check:
    """Return the "Visible to users?" item (it affects My Apps only, never sign-in)."""
    if "HideApp" in (sp.get("tags") or ()):
        fix = f'Optional: set "Visible to users?" to Yes under {where} > Properties.'
        return Check('"Visible to users?"', "info", "No: hidden in My Apps; sign-in works", fix)
    return Check('"Visible to users?"', "ok", "Yes: shown in My Apps")


def _policies(graph: Graph) -> list[Check]:
    """Return the user-consent policy and admin consent workflow items."""
    policy = graph.get("policies/authorizationPolicy")
    assigned = (policy.get("defaultUserRolePermissions") or {}).get(
        "permissionGrantPoliciesAssigned"
    ) or []
    names = [str(p).rsplit(".", 1)[-1] for p in assigned]
    label, open_ = next((POLICY_NAMES[n] for n in names if n in POLICY_NAMES), ("", False))
    if not names:
        found, status = "Do not allow user consent: every connector needs an admin", "info"
    elif open_:
        found, status = f"{label}: users may consent to most connectors", "ok"
    else:
        found, status = f"{label}: users may not consent to SharePoint, OneDrive or Outlook", "info"
    fix = (
        ""
        if open_
        else f"Grant those connectors for the organization, or review {CONSENT_SETTINGS}."
    )
    workflow = graph.get("policies/adminConsentRequestPolicy")
    on = bool(workflow.get("isEnabled"))
    flow_fix = (
        ""
        if on
        else "Optional: turn on Admin consent requests in the same place; this portal's "
        "requests work either way."
    )
    return [
        Check("User consent policy", status, found, fix),
        Check("Admin consent workflow", "ok" if on else "info", "On" if on else "Off", flow_fix),
    ]


def _grants(graph: Graph, sp: Mapping[str, Any], connectors: Mapping[str, Connector]) -> Check:
    """Return which connectors' scopes the tenant granted for everyone."""
    answer = graph.get(f"oauth2PermissionGrants?$filter=clientId eq '{quote(str(sp.get('id')))}'")
    granted: set[str] = set()
    for item in answer.get("value") or ():
        if item.get("consentType") == "AllPrincipals":
            granted |= {str(s).lower() for s in str(item.get("scope") or "").split()}
    done = [
        c.name
        for c in connectors.values()
        if all(s.rsplit("/", 1)[-1].lower() in granted for s in c.scopes)
    ]
    found = ", ".join(done) if done else "none yet"
    fix = "" if done else "Use Grant for organization for each connector your users need."
    return Check("Connectors granted for everyone", "ok" if done else "info", found, fix)
