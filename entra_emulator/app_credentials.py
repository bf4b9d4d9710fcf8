"""An app's secrets and certificates with their lifetimes, as Graph's application lists them.

A secret (passwordCredential) or a certificate (keyCredential) stops working at its endDateTime:
the token endpoint answers 7000222 for the secret, 700027 for the certificate. A secret given
without an end lasts two years from when it was loaded, Graph's default for addPassword; a
certificate ends when the certificate itself does, as the Entra admin center takes its dates.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from entra_emulator.world import App
from entra_emulator.world import ConfigError
from entra_emulator.world import Credential
from entra_emulator.world import stable_id

DEFAULT_SECRET_SECONDS = 2 * 365 * 86400  # addPassword's default endDateTime: two years on


def iso(epoch: float) -> str:
    """Return Graph's UTC ISO 8601 form of an epoch time."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def parse_end(value: Any, where: str, now: float) -> float:
    """Return the epoch of an end: a TOML datetime, an ISO 8601 string, or seconds from now."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a date-time or seconds")
    if isinstance(value, int | float):
        return now + float(value)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: expected an ISO 8601 date-time") from None
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    raise ConfigError(f"{where}: expected a date-time or seconds")


def spec(
    item: Any, where: str, now: float, value_key: str = "value"
) -> tuple[str | None, str, float | None]:
    """Return (value or None, display name, end or None) of a secrets or certificates entry."""
    if isinstance(item, str):
        return item, "", None
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a string or a table")
    unknown = set(item) - {value_key, "display_name", "end_date_time", "expires_in"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    value = item.get(value_key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}.{value_key}: expected a non-empty string")
    end = None
    for key in ("end_date_time", "expires_in"):
        if key in item:
            end = parse_end(item[key], f"{where}.{key}", now)
    return value, str(item.get("display_name") or ""), end


def add_secret(app: App, value: str, display_name: str = "", end: float | None = None) -> None:
    """Register a secret on an app with its lifetime."""
    now = time.time()
    app.secrets.append(value)
    app.credentials[value] = Credential(
        key_id=stable_id("password", app.client_id, value),
        display_name=display_name or f"Secret {len(app.secrets)}",
        start=now,
        end=end if end is not None else now + DEFAULT_SECRET_SECONDS,
    )


def add_expired_secret(app: App, value: str) -> None:
    """Register a secret whose endDateTime has already passed (world file: expired_secrets)."""
    now = time.time()
    app.expired_secrets.append(value)
    app.credentials[value] = Credential(
        stable_id("password", app.client_id, value), "Expired secret", now - 2 * 86400, now - 86400
    )


def add_certificate(app: App, pem: str, display_name: str = "", end: float | None = None) -> None:
    """Register a certificate; it ends with the certificate unless an earlier end is given."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ConfigError(f"{app.client_id}: a certificate is not a PEM certificate") from None
    not_after = certificate.not_valid_after_utc.timestamp()
    app.certificates.append(pem)
    app.credentials[pem] = Credential(
        key_id=stable_id("key", app.client_id, pem),
        display_name=display_name or certificate.subject.rfc4514_string(),
        start=certificate.not_valid_before_utc.timestamp(),
        end=min(end, not_after) if end is not None else not_after,
    )


def register(app: App, item: dict[str, Any], where: str) -> None:
    """Add the secrets, expired_secrets and certificates of a world-file or control-plane app."""
    now = time.time()
    for i, entry in enumerate(_list(item, "secrets", where)):
        value, name, end = spec(entry, f"{where}.secrets[{i}]", now)
        if value is None:
            raise ConfigError(f"{where}.secrets[{i}].value: missing")
        add_secret(app, value, name, end)
    for i, value in enumerate(_list(item, "expired_secrets", where)):
        if not isinstance(value, str):
            raise ConfigError(f"{where}.expired_secrets[{i}]: expected a string")
        add_expired_secret(app, value)
    for i, entry in enumerate(_list(item, "certificates", where)):
        pem, name, end = spec(entry, f"{where}.certificates[{i}]", now, "pem")
        if pem is None:
            raise ConfigError(f"{where}.certificates[{i}].pem: missing")
        add_certificate(app, pem, name, end)


def _list(item: dict[str, Any], key: str, where: str) -> list[Any]:
    """Return an optional list."""
    value = item.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where}.{key}: expected a list")
    return value


def credential(app: App, value: str) -> Credential:
    """Return the lifetime of a registered secret or certificate (added on first sight)."""
    known = app.credentials.get(value)
    if known is None:  # an App built in code without add_secret: it lasts the default span
        now = time.time()
        known = Credential(stable_id("password", app.client_id, value), "", now, now + 1e9)
        app.credentials[value] = known
    return known


def password_credentials(app: App) -> list[dict[str, Any]]:
    """Return the app's secrets as Graph's passwordCredential objects (never the value)."""
    return [
        {
            "customKeyIdentifier": None,
            "displayName": found.display_name,
            "endDateTime": iso(found.end),
            "hint": value[:3],  # Graph: "the first three characters of the password"
            "keyId": found.key_id,
            "secretText": None,
            "startDateTime": iso(found.start),
        }
        for value, found in _registered(app, app.secrets + app.expired_secrets)
    ]


def key_credentials(app: App) -> list[dict[str, Any]]:
    """Return the app's certificates as Graph's keyCredential objects (key omitted, as Graph)."""
    out = []
    for pem, found in _registered(app, app.certificates):
        thumbprint = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA1())  # noqa: S303
        out.append(
            {
                "customKeyIdentifier": base64.b64encode(thumbprint).decode(),
                "displayName": found.display_name,
                "endDateTime": iso(found.end),
                "key": None,  # returned only with $select=keyCredentials on a single app
                "keyId": found.key_id,
                "startDateTime": iso(found.start),
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            }
        )
    return out


def _registered(app: App, values: Iterable[str]) -> list[tuple[str, Credential]]:
    """Return each value with its lifetime, without duplicates, in registration order."""
    seen: dict[str, Credential] = {}
    for value in values:
        seen.setdefault(value, credential(app, value))
    return list(seen.items())
