"""Configuration: defaults, PORTAL_* coercion, development fill-ins and production refusal."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.errors import ConfigError
from app.platform import config
from app.platform import instance
from entra_emulator import config as world_config
from entra_emulator.emulator import PORTAL_CLIENT_ID


def fresh(tmp_path: Path) -> Flask:
    """Return a bare Flask app with its instance folder under tmp_path."""
    return Flask("cfgtest", instance_path=str(tmp_path / "instance"))


def key() -> str:
    """Return a random 32-byte base64 key."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


ENTRA = {"AUTHORITY_HOST": "https://login.microsoftonline.com"}
# The demo world's secret is public: production must refuse it.
DEMO_SECRET = world_config.load().apps[PORTAL_CLIENT_ID].secrets[0]
DEMO: dict[str, Any] = {
    "AUTHORITY_HOST": "https://127.0.0.1:5999",
    "CLIENT_ID": "demo-client",
    "CLIENT_SECRET": "demo-secret",
    "CA_FILE": "/tmp/demo/emulator/ca.pem",
    "RESOURCE_URLS": {"https://graph.microsoft.com": "https://127.0.0.1:5999/graph"},
    "PUBLIC_URL": "http://127.0.0.1:5610/",
    "TENANT": "contoso.test",
}
PRODUCTION_OK: dict[str, Any] = {
    "PRODUCTION": True,
    "CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "CLIENT_SECRET": "a-real-secret-from-the-vault",
    "AUTHORITY_HOST": "https://login.microsoftonline.com",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ENCRYPTION_KEYS": f"k2:{key()},k1:{key()}",
    "HASH_KEY": key(),
    "DATABASE_URL": "postgresql+psycopg://portal@db/portal",
    "PUBLIC_URL": "https://portal.example.com",
}


@pytest.fixture(autouse=True)
def no_portal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's PORTAL_* variables out of these tests."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)


def test_development_fills_keys_sqlite_and_cookies(tmp_path: Path) -> None:
    app = fresh(tmp_path)
    config.load(app, ENTRA)
    c = app.config
    instance_folder = Path(app.instance_path)
    assert c["PRODUCTION"] is False
    assert c["AUTHORITY_HOST"] == "https://login.microsoftonline.com"
    assert c["DATABASE_URL"] == f"sqlite:///{instance_folder / 'portal.db'}"
    assert c["SQLALCHEMY_DATABASE_URI"] == c["DATABASE_URL"]
    assert c["SESSION_TYPE"] == "sqlalchemy"
    assert c["REDIRECT_URI"] == "http://127.0.0.1:5000/auth/callback"
    assert c["SESSION_COOKIE_NAME"] == "ccp_session"
    assert c["SESSION_COOKIE_SECURE"] is False
    assert c["SESSION_COOKIE_HTTPONLY"] is True
    assert c["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert c["SESSION_COOKIE_PATH"] == "/"
    assert c["HTTP_TIMEOUT"] == 10.0
    assert c["FLOW_TTL"] == 600


def test_every_setting_takes_its_defaults_type(tmp_path: Path) -> None:
    app = fresh(tmp_path)
    config.load(app, ENTRA)
    for key, default in config.DEFAULTS.items():
        assert type(app.config[key]) is type(default), key


def test_development_without_an_identity_provider_or_demo_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(fresh(tmp_path), None)
    message = str(caught.value)
    assert "consent-portal demo" in message
    for name in ("PORTAL_AUTHORITY_HOST", "PORTAL_CLIENT_ID", "PORTAL_CLIENT_SECRET"):
        assert name in message


def test_development_uses_the_running_demos_settings(tmp_path: Path) -> None:
    app = fresh(tmp_path)
    instance.record_demo(Path(app.instance_path), DEMO)
    config.load(app, None)
    for key in ("AUTHORITY_HOST", "CLIENT_ID", "CLIENT_SECRET", "CA_FILE", "RESOURCE_URLS"):
        assert app.config[key] == DEMO[key]
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:5610"
    assert app.config["REDIRECT_URI"] == "http://127.0.0.1:5610/auth/callback"
    assert "TENANT" not in app.config  # only portal settings are taken from the file


def test_explicit_settings_beat_the_demos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = fresh(tmp_path)
    instance.record_demo(Path(app.instance_path), DEMO)
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://portal.example.com")
    config.load(app, {"CLIENT_ID": "mine", "CLIENT_CERTIFICATE": "/c.pem"})
    assert app.config["PUBLIC_URL"] == "https://portal.example.com"
    assert app.config["CLIENT_ID"] == "mine"
    assert app.config["CLIENT_SECRET"] == ""  # a certificate replaces the demo's secret
    assert app.config["AUTHORITY_HOST"] == DEMO["AUTHORITY_HOST"]


def test_a_dead_demos_settings_are_ignored(tmp_path: Path) -> None:
    app = fresh(tmp_path)
    folder = Path(app.instance_path)
    folder.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process, as after a demo killed with SIGKILL
    (folder / instance.DEMO_FILE).write_text(json.dumps({"pid": gone.pid, "settings": DEMO}))
    with pytest.raises(ConfigError, match="consent-portal demo"):
        config.load(app, None)


def test_development_keys_are_generated_once_and_private(tmp_path: Path) -> None:
    first = fresh(tmp_path)
    config.load(first, ENTRA)
    keys_file = Path(first.instance_path) / "dev-keys.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    second = fresh(tmp_path)
    config.load(second, ENTRA)
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS", "HASH_KEY"):
        assert first.config[name] == second.config[name]
        assert len(first.config[name]) >= 32
    assert json.loads(keys_file.read_text())["HASH_KEY"] == first.config["HASH_KEY"]


def test_environment_values_are_coerced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("PORTAL_FLOW_TTL", "120")
    monkeypatch.setenv(
        "PORTAL_DYNAMICS_ORGS", "https://a.crm.dynamics.com,https://b.crm4.dynamics.com"
    )
    monkeypatch.setenv(
        "PORTAL_CONNECTOR_SCOPES", '{"outlook": ["https://graph.microsoft.com/Mail.ReadBasic"]}'
    )
    monkeypatch.setenv("PORTAL_CLIENT_ID", "12345")
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://portal.example.com/")
    app = fresh(tmp_path)
    config.load(app, ENTRA)
    c = app.config
    assert c["HTTP_TIMEOUT"] == 2.5
    assert c["FLOW_TTL"] == 120
    assert c["DYNAMICS_ORGS"] == ["https://a.crm.dynamics.com", "https://b.crm4.dynamics.com"]
    assert c["CONNECTOR_SCOPES"] == {"outlook": ["https://graph.microsoft.com/Mail.ReadBasic"]}
    assert c["CLIENT_ID"] == "12345"
    assert c["PUBLIC_URL"] == "https://portal.example.com"
    assert c["REDIRECT_URI"] == "https://portal.example.com/auth/callback"
    assert c["SESSION_COOKIE_NAME"] == "__Host-ccp_session"
    assert c["SESSION_COOKIE_SECURE"] is True
    assert c["SESSION_COOKIE_DOMAIN"] is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_PRODUCTION", "maybe"),
        ("PORTAL_HTTP_TIMEOUT", "soon"),
        ("PORTAL_RESOURCE_URLS", "[1]"),
        ("PORTAL_REFRESH_CONCURRENCY", "0"),
        ("PORTAL_REFRESH_CONCURRENCY", "0.5"),  # int() would make it 0: every refresh a 503
    ],
)
def test_bad_environment_values_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        config.load(fresh(tmp_path), ENTRA)


def test_production_with_everything_starts(tmp_path: Path) -> None:
    app = fresh(tmp_path)
    config.load(app, PRODUCTION_OK)
    assert app.config["DEBUG"] is False
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-ccp_session"
    assert not (Path(app.instance_path) / "dev-keys.json").exists()


def test_production_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION_OK.items():
        monkeypatch.setenv(f"PORTAL_{name}", str(value).lower() if value is True else str(value))
    app = fresh(tmp_path)
    config.load(app, None)
    assert app.config["PRODUCTION"] is True


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"CLIENT_ID": ""}, "PORTAL_CLIENT_ID"),
        ({"CLIENT_SECRET": ""}, "PORTAL_CLIENT_SECRET"),
        ({"AUTHORITY_HOST": ""}, "PORTAL_AUTHORITY_HOST"),
        ({"SECRET_KEY": ""}, "PORTAL_SECRET_KEY"),
        ({"SECRET_KEY": "dev"}, "PORTAL_SECRET_KEY"),
        ({"ENCRYPTION_KEYS": ""}, "PORTAL_ENCRYPTION_KEYS"),
        ({"HASH_KEY": ""}, "PORTAL_HASH_KEY"),
        ({"ENCRYPTION_KEYS": "k1:tooshort"}, "PORTAL_ENCRYPTION_KEYS"),
        ({"CLIENT_SECRET": "", "CLIENT_CERTIFICATE": "/c.pem"}, "PORTAL_CLIENT_CERTIFICATE_KEY"),
        ({"CLIENT_SECRET": DEMO_SECRET}, "PORTAL_CLIENT_SECRET is a published"),
    ],
)
def test_production_refuses_to_start_incomplete(
    tmp_path: Path, change: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        config.load(fresh(tmp_path), PRODUCTION_OK | change)
    assert not (tmp_path / "instance" / "dev-keys.json").exists()


def test_production_lists_every_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(fresh(tmp_path), {"PRODUCTION": True})
    message = str(caught.value)
    for name in ("CLIENT_ID", "AUTHORITY_HOST", "ENCRYPTION_KEYS", "HASH_KEY", "SECRET_KEY"):
        assert f"PORTAL_{name}" in message


def test_a_certificate_replaces_the_secret(tmp_path: Path) -> None:
    settings = PRODUCTION_OK | {
        "CLIENT_SECRET": "",
        "CLIENT_CERTIFICATE": "/etc/portal/cert.pem",
        "CLIENT_CERTIFICATE_KEY": "/etc/portal/key.pem",
    }
    app = fresh(tmp_path)
    config.load(app, settings)
    assert app.config["CLIENT_CERTIFICATE"] == "/etc/portal/cert.pem"


def test_redis_switches_sessions(tmp_path: Path) -> None:
    app = fresh(tmp_path)
    config.load(app, ENTRA | {"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert app.config["SESSION_TYPE"] == "redis"


def test_a_rate_limit_that_is_not_one_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a rate limit"):
        config.load(fresh(tmp_path), ENTRA | {"RATELIMIT_IP": "600 a minute"})
