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
from app.consent import user_consent
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


@dataclass(frozen=True)
class Check:
    """One readiness item: OK, a problem or information, and what to change where."""

    name: str
    status: str  # "ok", "problem" or "info"
    found: str
    fix: str = ""


@dataclass(frozen=True)
class Report:
    """The checklist, and what Graph said of user consent (kept for Check access)."""

    checks: list[Check]
    consent_policies: list[str]  # authorizationPolicy's permissionGrantPoliciesAssigned
    assignment_required: bool


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
) -> Report:
    """Return the readiness checklist for the admin's tenant."""
    where = ENTERPRISE_APP.format(app=app_name)
    found = graph.get(f"servicePrincipals?$filter=appId eq '{quote(client_id)}'").get("value")
    assigned = _assigned(graph)
    if not found:
        missing = Check(
            "Enterprise app in your tenant",
            "problem",
            "Not found: nobody in your organization has consented yet.",
            "Grant for organization once (below): that creates the enterprise app.",
        )
        checks = [missing, *_policies(graph, assigned), *_who(assigned, connectors, set(), False)]
        return Report(checks, assigned, False)
    sp = found[0]
    required = bool(sp.get("appRoleAssignmentRequired"))
    granted = _granted(graph, sp, connectors)
    checks = [
        Check("Enterprise app in your tenant", "ok", f"{sp.get('displayName')} ({sp.get('id')})"),
        _enabled(sp, where),
        _assignment(graph, sp, where, requesters),
        _visible(sp, where),
        *_policies(graph, assigned),
        *_who(assigned, connectors, granted, required),
        _grants(connectors, granted),
    ]
    return Report(checks, assigned, required)


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


def _assigned(graph: Graph) -> list[str]:
    """Return the permission grant policies assigned to the default user role."""
    policy = graph.get("policies/authorizationPolicy")
    assigned = (policy.get("defaultUserRolePermissions") or {}).get(
        "permissionGrantPoliciesAssigned"
    ) or []
    return [str(p) for p in assigned]


def _policies(graph: Graph, assigned: Sequence[str]) -> list[Check]:
    """Return the user-consent policy and admin consent workflow items."""
    ids = user_consent.self_policies(assigned)
    label = user_consent.policy_label(assigned)
    open_ = user_consent.LEGACY in ids
    if not ids:
        found, status = f"{label}: every connector needs an admin", "info"
    elif open_:
        found, status = f"{label}: users may consent to most connectors", "ok"
    else:
        found, status = f"{label}: some permissions need an admin (each connector below)", "info"
    fix = (
        ""
        if open_
        else f"Grant the connectors below that need an admin, or review {CONSENT_SETTINGS}."
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


def _who(
    assigned: Sequence[str],
    connectors: Mapping[str, Connector],
    granted: set[str],
    required: bool,
) -> list[Check]:
    """Return, per connector, which scopes users may grant themselves and which need an admin."""
    checks = []
    for connector in connectors.values():
        name = f"Who can allow {connector.name}"
        if connector.id in granted:
            checks.append(Check(name, "ok", "Granted for everyone: users connect without asking"))
            continue
        found = user_consent.split(assigned, connector.scopes, assignment_required=required)
        users = [f"{s.name} ({s.why})" for s in found.who(user_consent.USER)]
        admins = [f"{s.name} ({s.why})" for s in found.who(user_consent.ADMIN)]
        depends = [f"{s.name} ({s.why})" for s in found.who(user_consent.DEPENDS)]
        parts = [
            f"{label}: {'; '.join(items)}."
            for label, items in (
                ("Users may grant themselves", users),
                ("Needs an admin", admins),
                ("Depends on your settings", depends),
            )
            if items
        ]
        if not admins and not depends:
            checks.append(Check(name, "ok", " ".join(parts)))
            continue
        fix = (
            f"Use Grant for organization for {connector.name} in the admin console, or approve "
            "users' requests as they arrive."
        )
        if depends:
            fix += (
                " To know in advance, check the permission classifications under "
                f"{CONSENT_SETTINGS.rsplit(' > ', 1)[0]} > Permission classifications."
            )
        checks.append(Check(name, "info", " ".join(parts), fix))
    return checks


def _granted(graph: Graph, sp: Mapping[str, Any], connectors: Mapping[str, Connector]) -> set[str]:
    """Return the ids of the connectors whose scopes the tenant granted for everyone."""
    answer = graph.get(f"oauth2PermissionGrants?$filter=clientId eq '{quote(str(sp.get('id')))}'")
    granted: set[str] = set()
    for item in answer.get("value") or ():
        if item.get("consentType") == "AllPrincipals":
            granted |= {str(s).lower() for s in str(item.get("scope") or "").split()}
    return {
        c.id
        for c in connectors.values()
        if all(s.rsplit("/", 1)[-1].lower() in granted for s in c.scopes)
    }


def _grants(connectors: Mapping[str, Connector], granted: set[str]) -> Check:
    """Return which connectors' scopes the tenant granted for everyone."""
    done = [c.name for c in connectors.values() if c.id in granted]
    found = ", ".join(done) if done else "none yet"
    fix = "" if done else "Use Grant for organization for each connector your users need."
    return Check("Connectors granted for everyone", "ok" if done else "info", found, fix)
