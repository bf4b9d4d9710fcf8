"""The world file: the demo world loads, and mistakes are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_emulator import ConfigError
from entra_emulator import cli
from entra_emulator import config
from entra_emulator.world import CONSUMER_TENANT

TENANT = """
[[tenants]]
id = "11111111-1111-1111-1111-111111111111"
domains = ["example.test"]
"""


def test_demo_world_matches_the_product_definition() -> None:
    world = config.load()
    assert {t.domains[0] for t in world.tenants.values()} == {
        "contoso.test",
        "fabrikam.test",
        "northwind.test",
    }
    assert all(u.password == "demo" for u in world.users.values() if not u.guest)
    assert world.users["pat@outlook.test"].tenant == CONSUMER_TENANT
    assert world.users["pat@outlook.test"].oid.startswith("00000000-0000-0000-")
    portal = world.apps["5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"]
    assert portal.redirect_uris == [
        "http://127.0.0.1/auth/callback",
        "http://localhost/auth/callback",
        "http://127.0.0.1/signed-out",
        "http://localhost/signed-out",
    ]
    assert portal.group_membership_claims == "DirectoryRole"
    data = world.data
    assert [x.name for x in data.lists] == ["Tasks", "Contacts", "Inventory"]
    assert [e.name for e in data.entity_sets] == ["accounts", "contacts"]
    assert any(e.path == "big.bin" and e.size is None for e in data.drive)
    assert any(e.path == "big.bin" and e.size is None for e in data.blobs["demostorage/exports"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[users]]\nusername = "a@nowhere.test"\npassword = "x"',
            "users[0].tenant: unknown tenant",
        ),
        (TENANT + '[[users]]\nusername = "a@example.test"', "users[0].password: missing"),
        (
            TENANT + '[[users]]\nusername = "a@example.test"\npassword = "x"\nroles = ["Boss"]',
            "users[0].roles[0]: unknown directory role 'Boss'",
        ),
        (
            '[[tenants]]\ndomains = ["a.test"]\nuser_consent_policy = "open"',
            "tenants[0].user_consent_policy",
        ),
        ("[settings]\nspeed = 1", "settings.speed: unknown setting"),
        (
            '[settings]\ncode_lifetime_seconds = "ten"',
            "settings.code_lifetime_seconds: expected int",
        ),
        ("tenants = 3", "config.tenants: expected a list"),
        (
            "[[apps]]\nclient_id = 'x'\nredirect_uris = ['http://evil.test/cb']",
            "apps[0].redirect_uris[0]",
        ),
        ("[data]\nmessages = -1", "data.messages: expected 0 to"),
        ("[data]\npage_sizes = { pages = 3 }", "data.page_sizes.pages: unknown page size"),
        (
            '[[data.lists]]\nname = "L"\ncolumns = [{ name = "C", type = "choice" }]',
            "data.lists[0].columns[0].choices: a choice column needs choices",
        ),
        (
            '[[data.lists]]\nname = "L"\ncolumns = [{ name = "C", type = "money" }]',
            "data.lists[0].columns[0].type: expected one of",
        ),
        ('[[data.drive]]\npath = "a:b"', "data.drive[0].path: expected a relative path"),
        (
            '[[storage_accounts]]\nname = "s"\ncontainers = ["a"]\n'
            'blobs = [{ container = "a", name = "x" }, { container = "b", name = "y" }]',
            "storage_accounts[0].blobs[1].container: 'b' is not in",
        ),
    ],
)
def test_mistakes_name_the_offending_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "world.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(path)


def test_cli_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "world.toml"
    path.write_text("[settings]\nspeed = 1")
    assert cli.main(["--port", "0", "--state-dir", str(tmp_path), "--config", str(path)]) == 2
    assert "settings.speed" in capsys.readouterr().out
