"""Which tenant a sign-in is for, Flask-free: a domain resolved to its tenant, guests told apart.

A B2B guest signs in at the resource tenant's own path (a GUID or a domain): organizations and
common always mean the account's home tenant. So the portal turns the domain a person names on
the Authenticate page, in a domain_hint or in a helpdesk link into that tenant's GUID (from OIDC
discovery, which answers AADSTS90002 for a domain nobody has) and uses it as the authority.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from app.connectors import MSA_TENANT
from app.errors import IdentityUnavailable

log = logging.getLogger(__name__)

GENERIC = frozenset({"common", "organizations", "consumers"})
DOMAIN = re.compile(r"^(?=.{3,253}$)[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9-]{1,63})+$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_KNOWN = 512  # resolved domains kept per process; names come from people, so bounded


def clean(name: str | None) -> str | None:
    """Return a domain or tenant GUID in lower case, or None for anything else (aliases too)."""
    value = (name or "").strip().lower()
    if value.startswith("@"):
        value = value[1:]
    if "@" in value:  # someone typed their e-mail address: its domain names the organization
        value = value.rsplit("@", 1)[1]
    if value in GENERIC or not (DOMAIN.match(value) or GUID.match(value)):
        return None
    return value


class TenantDirectory:
    """Resolves domains to tenant GUIDs through discovery, remembering the answers."""

    def __init__(self, http: requests.Session, authority_host: str, timeout: float) -> None:
        self._http = http
        self._host = authority_host.rstrip("/")
        self._timeout = timeout
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str | None) -> str | None:
        """Return the tenant GUID a domain or GUID names; None when no tenant has it.

        Raises IdentityUnavailable when the identity provider cannot be asked.
        """
        value = clean(name)
        if value is None:
            return None
        with self._lock:
            known = self._known.get(value)
        if known is not None:
            return known
        url = f"{self._host}/{value}/v2.0/.well-known/openid-configuration"
        try:
            response = self._http.get(url, timeout=self._timeout)
        except (requests.RequestException, OSError) as error:
            log.warning("tenant discovery failed: %s", type(error).__name__)
            raise IdentityUnavailable() from None
        if 400 <= response.status_code < 500:  # AADSTS90002: no tenant has this name
            return None
        try:
            response.raise_for_status()
            endpoint = str(response.json().get("token_endpoint") or "")
        except (requests.RequestException, ValueError) as error:
            log.warning("tenant discovery failed: %s", type(error).__name__)
            raise IdentityUnavailable() from None
        segments = [part for part in urlsplit(endpoint).path.split("/") if part]
        tenant = segments[0].lower() if segments else ""
        if not GUID.match(tenant) or tenant == MSA_TENANT:
            return None
        with self._lock:
            if len(self._known) < MAX_KNOWN:
                self._known[value] = tenant
        return tenant


@dataclass(frozen=True)
class Tenancy:
    """Whose data a work account's connection reads, in the words the pages use."""

    guest: bool  # the account is a guest in the tenant (its home tenant is another)
    tenant: str  # the tenant's domain when known, else its tenant id
    home: str  # the account's own organization: its username's domain


def of_account(
    home_account_id: str, tenant_id: str, username: str, domain: str | None = None
) -> Tenancy | None:
    """Return the tenancy of a work account in a tenant; None for a personal account.

    MSAL's home_account_id is "<oid>.<home tenant id>" (client_info), the same for a guest's
    every tenant, so a home tenant other than the token's tid marks a guest.
    """
    if tenant_id == MSA_TENANT:
        return None
    home_tenant = home_account_id.rsplit(".", 1)[-1].lower() if "." in home_account_id else ""
    return Tenancy(
        guest=bool(home_tenant) and home_tenant != tenant_id.lower(),
        tenant=domain or tenant_id,
        home=username.rsplit("@", 1)[-1] if "@" in username else username,
    )
