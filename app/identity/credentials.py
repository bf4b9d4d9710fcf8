"""The portal's own client credentials: several secrets and certificates, newest first; no Flask.

MSAL takes one credential per client, so the ring hands out one at a time and moves on to the
next when Entra refuses the one in use for what only the credential can cause (the three codes
below). Each credential's expiry is known from its certificate, from a setting, or from Graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

log = logging.getLogger(__name__)
# 7000215 invalid secret, 7000222 expired secret, 700027 bad client assertion (certificate).
FAILOVER_CODES = frozenset({7000215, 7000222, 700027})
WARNING_DAYS = 30  # /readyz warns and the admin page flags a credential this close to its end
REMINDER_DAYS = (30, 7, 1)  # the operators are mailed once at each


@dataclass(frozen=True)
class ClientCredential:
    """One configured secret or certificate: never printed with its value."""

    kind: str  # "secret" or "certificate"
    position: int  # 1 is tried first
    fingerprint: str  # stable, public: a secret's SHA-256 prefix, a certificate's thumbprint
    hint: str  # a secret's first three characters (Graph's hint); a certificate's subject
    expires_at: datetime | None = None
    expiry_source: str = ""  # "certificate", "setting", "graph" or "" (unknown)
    secret: str = field(default="", repr=False)
    certificate_path: str = ""
    key_path: str = ""

    @property
    def label(self) -> str:
        """Return how pages, mails and logs name it: kind, place and a public hint."""
        if self.kind == "secret":
            return f"client secret {self.position} ({self.hint}…)"
        return f"certificate {self.position} ({self.hint}, thumbprint {self.fingerprint[:8]})"

    def days_left(self, now: datetime) -> float | None:
        """Return the days until it expires (negative once expired), or None when unknown."""
        if self.expires_at is None:
            return None
        return (self.expires_at - now).total_seconds() / 86400


def load(
    secrets: Sequence[str],
    secret_expiries: Sequence[str],
    certificates: Sequence[tuple[str, str]],
) -> list[ClientCredential]:
    """Return the credentials in the order tried: certificates, then secrets, each newest first."""
    found = [_certificate(i + 1, cert, key) for i, (cert, key) in enumerate(certificates)]
    for i, secret in enumerate(secrets):
        expiry = parse_expiry(secret_expiries[i]) if i < len(secret_expiries) else None
        found.append(
            ClientCredential(
                kind="secret",
                position=len(found) + 1,
                fingerprint=hashlib.sha256(secret.encode()).hexdigest()[:16],
                hint=secret[:3],
                expires_at=expiry,
                expiry_source="setting" if expiry else "",
                secret=secret,
            )
        )
    return found


def parse_expiry(text: str) -> datetime | None:
    """Return an ISO 8601 date or date-time as UTC (a bare date: its midnight); '' is None."""
    text = text.strip()
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))  # ValueError: config refuses
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _certificate(position: int, certificate_path: str, key_path: str) -> ClientCredential:
    """Return a certificate credential with the expiry its PEM states (unknown if unreadable)."""
    try:
        with open(certificate_path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError) as error:
        log.warning("client certificate %d unreadable: %s", position, type(error).__name__)
        return ClientCredential("certificate", position, "", "unreadable", None, "", "",
                                certificate_path, key_path)  # fmt: skip
    subject = certificate.subject.rfc4514_string() or "no subject"
    return ClientCredential(
        kind="certificate",
        position=position,
        fingerprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - x5t
        hint=subject[:80],
        expires_at=certificate.not_valid_after_utc,
        expiry_source="certificate",
        certificate_path=certificate_path,
        key_path=key_path,
    )


def msal_credential(credential: ClientCredential) -> Any:
    """Return MSAL's client_credential: the secret, or the certificate read from its files."""
    if credential.kind == "secret":
        return credential.secret
    with open(credential.certificate_path, "rb") as handle:
        certificate = x509.load_pem_x509_certificate(handle.read())
    with open(credential.key_path) as handle:
        private_key = handle.read()
    return {
        "private_key": private_key,
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - x5t is SHA-1
        "public_certificate": certificate.public_bytes(Encoding.PEM).decode("ascii"),
    }


def refused_code(result: Mapping[str, Any] | None) -> int | None:
    """Return the AADSTS code when a token answer refuses the client credential itself."""
    if not result or result.get("error") != "invalid_client":
        return None
    codes = [int(c) for c in result.get("error_codes") or () if str(c).isdigit()]
    return next((c for c in codes if c in FAILOVER_CODES), None)


# (the refused credential, its AADSTS code, the one used from now on or None)
FailoverHook = Callable[[ClientCredential, int, ClientCredential | None], None]


class CredentialRing:
    """The credentials of one process: the one in use, the refused ones, and what is known."""

    def __init__(self, credentials: Sequence[ClientCredential]) -> None:
        self._credentials = list(credentials)
        self._current = 0
        self._refused: dict[int, int] = {}  # position -> AADSTS code
        self._msal: dict[int, Any] = {}  # position -> MSAL's credential, read once
        self._lock = threading.Lock()
        self.on_failover: FailoverHook | None = None

    def __len__(self) -> int:
        return len(self._credentials)

    @property
    def current(self) -> int:
        """Return the position (from 1) of the credential in use."""
        return self._current + 1

    def msal(self, position: int) -> Any:
        """Return MSAL's client_credential for a position (files are read once)."""
        known = self._msal.get(position)
        if known is None:
            if not self._credentials:
                return ""
            known = msal_credential(self._credentials[position - 1])  # OSError: unavailable
            self._msal[position] = known
        return known

    def refused(self, position: int, code: int) -> int | None:
        """Record that Entra refused a credential; return the next position to try, or None."""
        with self._lock:
            first = position not in self._refused
            self._refused[position] = code
            following = next(
                (p for p in range(position + 1, len(self._credentials) + 1)
                 if p not in self._refused),
                None,
            )  # fmt: skip
            if following is not None and self._current < following - 1:
                self._current = following - 1
        if first and self.on_failover is not None:  # once per credential, not per request
            refused = self._credentials[position - 1]
            chosen = self._credentials[following - 1] if following else None
            try:
                self.on_failover(refused, code, chosen)
            except Exception:  # an alert must never fail the request that found the problem
                log.exception("credential alert failed")
        return following

    def learn_expiries(self, by_hint: Mapping[str, datetime]) -> None:
        """Fill in secrets' unknown expiries from Graph's passwordCredentials, matched by hint."""
        with self._lock:
            for i, known in enumerate(self._credentials):
                end = by_hint.get(known.hint) if known.kind == "secret" else None
                if end is not None and known.expiry_source in ("", "graph"):
                    self._credentials[i] = dataclasses.replace(
                        known, expires_at=end, expiry_source="graph"
                    )

    def status(self) -> list[dict[str, Any]]:
        """Return each credential as plain values: label, kind, expiry, in use, refused."""
        with self._lock:
            current, refused = self._current + 1, dict(self._refused)
            credentials = list(self._credentials)
        return [
            {
                "credential": c,
                "in_use": c.position == current,
                "refused": refused.get(c.position),
            }
            for c in credentials
        ]

    def credentials(self) -> list[ClientCredential]:
        """Return the credentials in the order tried."""
        with self._lock:
            return list(self._credentials)


def warnings(rows: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    """Return what an operator should hear now: refused credentials and ends within 30 days."""
    out = []
    for row in rows:
        credential: ClientCredential = row["credential"]
        days = credential.days_left(now)
        if row.get("refused"):
            out.append(f"{credential.label} was refused by Entra (AADSTS{row['refused']})")
        elif days is not None and days <= 0:
            out.append(f"{credential.label} expired on {credential.expires_at:%Y-%m-%d}")
        elif days is not None and days <= WARNING_DAYS:
            out.append(
                f"{credential.label} expires on {credential.expires_at:%Y-%m-%d} "
                f"(in {max(0, int(days))} days)"
            )
    return out
