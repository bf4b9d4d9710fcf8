"""Runtime state: the world plus grants, codes, refresh tokens, sessions, faults and the log."""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from entra_emulator.world import World


def fingerprint(secret: str) -> str:
    """Return a short hash prefix that can be logged instead of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:10]


def new_secret(prefix: str = "") -> str:
    """Return an opaque random value for a code or token."""
    return prefix + secrets.token_urlsafe(48)


@dataclass
class Grant:
    tenant: str
    client_id: str
    resource: str
    scopes: set[str]
    principal: str | None  # a username, or None for a tenant-wide (AllPrincipals) grant

    def as_dict(self) -> dict[str, Any]:
        """Return the control plane's shape of this grant."""
        return {
            "tenant": self.tenant,
            "client_id": self.client_id,
            "resource": self.resource,
            "scopes": sorted(self.scopes),
            "principal": self.principal,
            "consent_type": "Principal" if self.principal else "AllPrincipals",
        }


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    nonce: str | None
    scopes: list[str]
    username: str
    tenant: str
    segment: str
    session_id: str
    auth_time: int
    created: float = field(default_factory=time.time)
    used: bool = False
    mfa: bool = False  # the sign-in behind the code completed MFA


@dataclass
class RefreshToken:
    username: str
    client_id: str
    tenant: str
    session_id: str
    issued: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    signed_in: float = field(default_factory=time.time)  # the sign-in behind the whole chain
    revoked: bool = False
    used: bool = False
    mfa: bool = False  # that sign-in completed MFA; Conditional Access reads it at refresh


@dataclass
class BrowserSession:
    id: str
    accounts: list[str] = field(default_factory=list)
    session_state: str = field(default_factory=lambda: secrets.token_hex(16))
    mfa_done: set[str] = field(default_factory=set)  # accounts that passed MFA in this browser


@dataclass
class Flow:
    id: str
    kind: str  # authorize, adminconsent, adminconsent-v1
    segment: str
    params: dict[str, str]
    session_id: str
    client_id: str
    redirect_uri: str
    tenant: str | None = None  # the tenant GUID named in the path, if any
    username: str | None = None
    pending: str | None = None  # a user whose password was right but who must set a new one
    force_login: bool = False
    pick_account: bool = False
    created: float = field(default_factory=time.time)


@dataclass
class ConsentRequest:
    id: str
    tenant: str
    client_id: str
    username: str
    scopes: list[str]
    justification: str
    status: str = "pending"
    created: float = field(default_factory=time.time)


@dataclass
class Fault:
    endpoint: str
    status: int | None
    latency_ms: int
    retry_after: int | None
    drop: bool
    remaining: int | None
    path_prefix: str | None = None  # below the API's base URL, e.g. /v1.0/me/drive


class State:
    """Everything that changes while the emulator runs; guard every access with lock."""

    def __init__(self, world: World) -> None:
        """Keep the configured world to reset to, and start from it."""
        self.lock = threading.RLock()
        self._pristine = world
        self.issued: set[str] = set()  # every code and token handed out; survives reset()
        self.reset()

    def reset(self) -> None:
        """Return to the configuration file's state."""
        with self.lock:
            self.world: World = copy.deepcopy(self._pristine)
            self.settings: dict[str, Any] = self.world.settings
            self.grants: list[Grant] = []
            self.codes: dict[str, Code] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.sessions: dict[str, BrowserSession] = {}
            self.flows: dict[str, Flow] = {}
            self.consent_requests: dict[str, ConsentRequest] = {}
            self.faults: list[Fault] = []
            self.log: list[dict[str, Any]] = []
            # Token requests per (client_id, tenant): (whole second, count), throttling.py.
            self.token_windows: dict[tuple[str, str], tuple[int, int]] = {}
            for g in self.world.grants:
                self.add_grant(
                    g["tenant"], g["client_id"], g["resource"], g["scopes"], g["principal"]
                )

    def add_grant(
        self, tenant: str, client_id: str, resource: str, scopes: list[str], principal: str | None
    ) -> Grant:
        """Add scopes to the (tenant, client, resource, principal) grant, creating it if needed."""
        # A grant names the app's service principal: consent re-creates a deleted one.
        self.world.enterprise_app(tenant, client_id).deleted = False
        for grant in self.grants:
            if (grant.tenant, grant.client_id, grant.resource, grant.principal) == (
                tenant,
                client_id,
                resource,
                principal,
            ):
                grant.scopes.update(scopes)
                return grant
        grant = Grant(tenant, client_id, resource, set(scopes), principal)
        self.grants.append(grant)
        return grant

    def remove_grant(
        self, tenant: str, client_id: str, resource: str, scopes: list[str], principal: str | None
    ) -> int:
        """Remove scopes (all when empty) from matching grants; return how many changed."""
        changed = 0
        for grant in list(self.grants):
            key = (grant.tenant, grant.client_id, grant.resource, grant.principal)
            if key != (tenant, client_id, resource, principal):
                continue
            grant.scopes -= set(scopes) if scopes else set(grant.scopes)
            changed += 1
            if not grant.scopes:
                self.grants.remove(grant)
        return changed

    def granted(self, tenant: str, client_id: str, resource: str, username: str) -> set[str]:
        """Return the union of the user's grant and the tenant-wide grant for a resource."""
        out: set[str] = set()
        for grant in self.grants:
            if (grant.tenant, grant.client_id, grant.resource) != (tenant, client_id, resource):
                continue
            if grant.principal in (None, username):
                out |= grant.scopes
        return out

    def take_fault(self, endpoint: str, path: str = "") -> Fault | None:
        """Return the fault armed for an endpoint (and path), counting it down."""
        for fault in self.faults:
            if fault.endpoint != endpoint or not path.startswith(fault.path_prefix or ""):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
            return fault
        return None

    def record(self, entry: dict[str, Any]) -> None:
        """Append to the request log, keeping it bounded."""
        self.log.append(entry)
        del self.log[:-5000]

    def requests(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Return log entries whose fields equal every filter."""
        return [e for e in self.log if all(str(e.get(k)) == str(v) for k, v in filters.items())]
