"""Settings: embedded defaults, PORTAL_* variables, overrides; production fails fast."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from app.errors import ConfigError
from app.identity import credentials
from app.identity.settings import certificate_list
from app.identity.settings import secret_list
from app.notify import senders
from app.platform import database
from app.platform import instance
from app.platform import ratelimits
from app.platform import security
from app.platform import staff
from app.tokens import vault

log = logging.getLogger(__name__)
# The demo world's client secret says so in its value; one like it is public, so never real.
PUBLISHED_SECRET_MARK = "not-for-production"
DEV_SECRET_KEYS = frozenset({"", "dev", "development", "secret", "change-me", "changeme"})
COOKIE_NAME = "ccp_session"

DEFAULTS: dict[str, Any] = {
    "PRODUCTION": False,
    "SECRET_KEY": "",
    "SECRET_KEY_FALLBACKS": [],
    "ENCRYPTION_KEYS": "",
    "HASH_KEY": "",
    "DATABASE_URL": "",
    "REDIS_URL": "",
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "REDIRECT_URI": "",
    "AUTHORITY_HOST": "",
    "CLIENT_ID": "",
    "CLIENT_SECRET": "",
    "CLIENT_CERTIFICATE": "",
    "CLIENT_CERTIFICATE_KEY": "",
    # Declare CP1 (Continuous Access Evaluation): off only where tools call Graph themselves and
    # cannot send a claims challenge back (they would retry a revoked 28-hour token).
    "CAE": True,
    # Several credentials for rotation without downtime, newest first; the single ones above
    # are tried after them. Expiry of secrets: ISO dates, by position (certificates state theirs).
    "CLIENT_SECRETS": [],
    "CLIENT_SECRETS_EXPIRES": [],
    "CLIENT_SECRET_EXPIRES": "",
    "CLIENT_CERTIFICATES": [],
    "CLIENT_CERTIFICATE_KEYS": [],
    "APP_TENANT": "",  # the app registration's tenant: Graph (Application.Read.All) dates secrets
    "OPERATOR_EMAILS": [],  # who is mailed when a credential is refused or about to expire
    "CA_FILE": "",
    "RESOURCE_URLS": {},
    "CONNECTOR_SCOPES": {},
    "DYNAMICS_ORGS": ["https://contoso.crm.dynamics.com"],
    "HTTP_TIMEOUT": 10.0,
    "REDIS_TIMEOUT": 0.5,
    "DATABASE_CONNECT_TIMEOUT": 2.0,
    # gunicorn's threads per worker (gunicorn.conf.py reads the same PORTAL_THREADS): the
    # PostgreSQL pool keeps as many connections, so a busy worker does not open one per request.
    "THREADS": 16,
    "FLOW_TTL": 600,
    "REFRESH_LOCK_TTL": 60,
    # Upstream refreshes at once per worker process; a caller waits this long for a slot, then
    # gets 503 + Retry-After. See docs/operations.md (gunicorn sizing).
    "REFRESH_CONCURRENCY": 4,
    "REFRESH_SLOT_WAIT": 1.0,
    # Upstream refreshes per second per tenant, across every instance (Redis, else the
    # database); 0 is no limit. A caller waits up to REFRESH_RATE_WAIT for its tenant's next
    # slot, else gets 503 with a Retry-After at its place in line. docs/operations.md.
    "REFRESH_RATE": 0.0,
    "REFRESH_RATE_WAIT": 1.0,
    "RATELIMIT_TOKEN": "120/minute",
    "RATELIMIT_IP": "600/minute",
    # Proxies whose X-Forwarded-* headers count (CIDRs); none: the socket peer is the client.
    "TRUSTED_PROXIES": [],
    # Request size: the token API's body, a form's body, and all headers together (bytes).
    "API_MAX_BODY": 8 * 1024,
    "FORM_MAX_BODY": 64 * 1024,
    "HEADER_MAX_BYTES": 32 * 1024,
    "SESSION_IDLE_MINUTES": 60,
    "SESSION_MAX_HOURS": 12,  # absolute limit: an active session still ends (principle 9)
    "LAST_USED_RESOLUTION": 60,
    "ACCESS_TRAIL_DAYS": 90,  # the access trail's rows older than this are pruned by jobs run
    # Consent requests and notifications (issue 4)
    "CONSENT_REQUEST_DAYS": 30,
    "ADMIN_USERS": [],
    "HELPDESK_USERS": [],
    "SMTP_URL": "",
    "MAIL_FROM": "Connector Consent Portal <portal@localhost>",
    "WEBHOOK_URLS": [],
    "WEBHOOK_SECRET": "",
    "NOTIFY_MODE": "thread",
    "NOTIFY_MAX_ATTEMPTS": 5,
    "NOTIFY_BACKOFF": 2.0,
    # Helpdesk links and keep-alive (issue 5)
    "LINK_MAX_DAYS": 30,
    "KEEPALIVE_DAYS": 14,
    "HELPDESK_CONTACT": "",
    # Data for tools: the proxy and table exports
    "STORAGE_ACCOUNTS": [],
    "DATA_TIMEOUT": 30.0,
    "EXPORT_MAX_WAIT": 30.0,
}


def load(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill app.config from defaults, PORTAL_* variables and overrides, then check it."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PORTAL")
    app.config.update(overrides or {})
    coerce(app.config)
    check_credentials(app.config)
    staff.check(app.config)  # staff by tenant-id/object-id only: a username stops start-up
    try:
        senders.check_secret(str(app.config["WEBHOOK_SECRET"] or ""))
    except ValueError as refused:
        raise ConfigError(str(refused)) from None
    if app.config["PRODUCTION"]:
        refuse_incomplete(app.config)
    else:
        fill_development(app.config, Path(app.instance_path), explicit(overrides))
    derive(app.config)


def explicit(overrides: Mapping[str, Any] | None) -> set[str]:
    """Return the settings that a PORTAL_* variable or an override gives a value."""
    given = {k.removeprefix("PORTAL_"): v for k, v in os.environ.items() if k.startswith("PORTAL_")}
    given.update(overrides or {})
    return {key for key, value in given.items() if value not in (None, "")}  # `PORTAL_X=` is unset


def coerce(config: dict[str, Any], keys: Iterable[str] = DEFAULTS) -> None:
    """Turn environment strings into the type of each setting's default."""
    for key in keys:
        convert = ZERO_IS_OFF.get(key) or COERCE[type(DEFAULTS[key])]
        config[key] = convert(key, config.get(key))


def refuse_incomplete(config: Mapping[str, Any]) -> None:
    """Raise ConfigError naming every missing or development value (production only)."""
    problems: list[str] = []
    for key in ("CLIENT_ID", "AUTHORITY_HOST", "ENCRYPTION_KEYS", "HASH_KEY", "DATABASE_URL"):
        if not config.get(key):
            problems.append(f"PORTAL_{key} is not set")
    secrets, _ = secret_list(config)
    certificates = certificate_list(config)
    if not secrets and not certificates:
        problems.append("set PORTAL_CLIENT_SECRET or PORTAL_CLIENT_CERTIFICATE")
    if config.get("CLIENT_CERTIFICATE") and not config.get("CLIENT_CERTIFICATE_KEY"):
        problems.append("PORTAL_CLIENT_CERTIFICATE_KEY is not set")
    if any(PUBLISHED_SECRET_MARK in secret for secret in secrets):
        problems.append("PORTAL_CLIENT_SECRET is a published development secret")
    secret = str(config.get("SECRET_KEY") or "")
    if secret.lower() in DEV_SECRET_KEYS or len(secret) < 32:
        problems.append("PORTAL_SECRET_KEY is missing, a development value or under 32 characters")
    if config.get("AUTHORITY_HOST") and not str(config["AUTHORITY_HOST"]).startswith("https://"):
        problems.append("PORTAL_AUTHORITY_HOST must be an https URL")
    if not problems:
        try:
            vault.Vault.from_config(config["ENCRYPTION_KEYS"], config["HASH_KEY"])
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))


def check_credentials(config: Mapping[str, Any]) -> None:
    """Refuse expiry dates that do not parse and certificates listed without their keys."""
    for key in ("CLIENT_SECRET_EXPIRES", "CLIENT_SECRETS_EXPIRES"):
        value = config.get(key)
        for text in value if isinstance(value, list) else [value or ""]:
            try:
                credentials.parse_expiry(str(text))
            except ValueError:
                raise ConfigError(
                    f"PORTAL_{key}: {str(text)[:40]!r} is not an ISO 8601 date such as 2027-03-31"
                ) from None
    if len(config.get("CLIENT_SECRETS_EXPIRES") or ()) > len(config.get("CLIENT_SECRETS") or ()):
        raise ConfigError("PORTAL_CLIENT_SECRETS_EXPIRES has more dates than PORTAL_CLIENT_SECRETS")
    if len(config.get("CLIENT_CERTIFICATE_KEYS") or ()) != len(
        config.get("CLIENT_CERTIFICATES") or ()
    ):
        raise ConfigError("PORTAL_CLIENT_CERTIFICATE_KEYS needs one key file per certificate")


def fill_development(config: dict[str, Any], folder: Path, given: set[str]) -> None:
    """Fill what is missing for one machine: keys, SQLite, and the demo's identity provider."""
    keys = instance.dev_keys(folder)
    for key in ("SECRET_KEY", "ENCRYPTION_KEYS", "HASH_KEY"):
        if not config.get(key):
            config[key] = keys[key]
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{folder / 'portal.db'}"
    if not config.get("AUTHORITY_HOST"):
        use_demo(config, folder, given)


def use_demo(config: dict[str, Any], folder: Path, given: set[str]) -> None:
    """Take the running demo's URL and emulator for every setting not given explicitly."""
    recorded = instance.running_demo(folder)
    if recorded is None and config.get("IDENTITY_CHECK") is False:
        return  # a command that never signs anyone in (db, keys, links, consent jobs)
    if recorded is None:
        raise ConfigError(
            f"no identity provider: PORTAL_AUTHORITY_HOST is not set and no demo runs on {folder}; "
            "start `consent-portal demo` on this instance folder, or set PORTAL_AUTHORITY_HOST, "
            "PORTAL_CLIENT_ID and PORTAL_CLIENT_SECRET (PORTAL_CA_FILE and PORTAL_RESOURCE_URLS "
            "for an emulator)"
        )
    if given & {"CLIENT_CERTIFICATE", "CLIENT_CERTIFICATES", "CLIENT_SECRETS"}:
        given = given | {"CLIENT_SECRET"}  # credentials of one's own replace the demo's secret
    chosen = {k: v for k, v in recorded.items() if k in DEFAULTS and k not in given}
    config.update(chosen)
    coerce(config, chosen)


def derive(config: dict[str, Any]) -> None:
    """Set the framework settings that follow from the portal's own."""
    public = config["PUBLIC_URL"].rstrip("/")
    config["PUBLIC_URL"] = public
    config["AUTHORITY_HOST"] = config["AUTHORITY_HOST"].rstrip("/")
    config["REDIRECT_URI"] = config["REDIRECT_URI"] or f"{public}/auth/callback"
    for key in ("RATELIMIT_TOKEN", "RATELIMIT_IP"):  # a typo fails at start-up, not per request
        ratelimits.parse(str(config[key]))
    security.trusted_networks(config["TRUSTED_PROXIES"])  # a bad CIDR stops start-up
    https = urlsplit(public).scheme == "https"
    config.update(
        SQLALCHEMY_DATABASE_URI=config["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=database.engine_options(
            config["DATABASE_URL"],
            config["HTTP_TIMEOUT"],
            config["DATABASE_CONNECT_TIMEOUT"],
            pool_size=config["THREADS"],
        ),
        SESSION_COOKIE_NAME=f"__Host-{COOKIE_NAME}" if https else COOKIE_NAME,
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Strict would drop the cookie on Entra's redirect back
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        SESSION_TYPE="redis" if config["REDIS_URL"] else "sqlalchemy",
        SESSION_KEY_PREFIX="ccp:session:",
        SESSION_PERMANENT=True,
        SESSION_SQLALCHEMY_TABLE="sessions",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        PREFERRED_URL_SCHEME="https" if https else "http",
    )
    if config["PRODUCTION"]:
        config["DEBUG"] = False
        if not config["REDIS_URL"]:  # every gunicorn worker would count on its own
            log.warning("PORTAL_REDIS_URL is not set: rate limits are kept per worker process")


def _bool(key: str, value: Any) -> bool:
    """Coerce true/false, 1/0, yes/no."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "", "none"):
        return False
    raise ConfigError(f"PORTAL_{key} must be true or false, not {value!r}")


def _positive(key: str, value: Any) -> float:
    """Coerce an int, float or numeric string above 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"PORTAL_{key} must be a number, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"PORTAL_{key} must be positive")
    return number


def _rate(key: str, value: Any) -> float:
    """Coerce a rate: a number above 0, or 0 for no limit."""
    try:
        if float(value) == 0:
            return 0.0
    except (TypeError, ValueError):
        pass  # _positive names the problem
    return _positive(key, value)


def _whole(key: str, value: Any) -> int:
    """Coerce a number of at least 1 to an int."""
    number = _positive(key, value)
    if number < 1:  # int() would turn 0.5 into 0: no slots, no retries, no days
        raise ConfigError(f"PORTAL_{key} must be a whole number of at least 1")
    return int(number)


def _text(key: str, value: Any) -> str:
    """Coerce to a stripped string; None is empty."""
    return "" if value is None else str(value).strip()


def _list(key: str, value: Any) -> list[str]:
    """Coerce a list or a comma-separated string."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def _dict(key: str, value: Any) -> dict[str, Any]:
    """Coerce a dict or a JSON object string."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"PORTAL_{key} must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"PORTAL_{key} must be a JSON object")
    return dict(value)


# Each setting takes its default's type; looked up by type(), as isinstance(True, int) holds.
COERCE: dict[type, Callable[[str, Any], Any]] = {
    bool: _bool, int: _whole, float: _positive, str: _text, list: _list, dict: _dict,
}  # fmt: skip
# Settings where 0 means off, coerced by name before their type.
ZERO_IS_OFF: dict[str, Callable[[str, Any], Any]] = {"REFRESH_RATE": _rate}
