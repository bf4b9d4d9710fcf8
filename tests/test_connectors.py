"""The connector catalogue: scopes, overrides, Dynamics organisations, account types."""

from __future__ import annotations

import pytest

from app.connectors import MSA_TENANT
from app.connectors import SIGN_IN
from app.connectors import account_type_for_tenant
from app.connectors import authority_tenant
from app.connectors import catalogue
from app.errors import ConfigError


def test_the_five_connectors_of_the_product() -> None:
    found = catalogue()
    assert list(found) == ["sharepoint", "onedrive", "outlook", "dynamics", "azure-storage"]
    assert found["sharepoint"].scopes == ("https://graph.microsoft.com/Sites.Read.All",)
    assert found["onedrive"].scopes == ("https://graph.microsoft.com/Files.Read.All",)
    assert found["outlook"].scopes == ("https://graph.microsoft.com/Mail.Read",)
    assert found["dynamics"].scopes == ("https://contoso.crm.dynamics.com/user_impersonation",)
    assert found["azure-storage"].scopes == ("https://storage.azure.com/user_impersonation",)
    assert found["onedrive"].account_types == {"work", "personal"}
    assert found["outlook"].account_types == {"work", "personal"}
    for cid in ("sharepoint", "dynamics", "azure-storage"):
        assert found[cid].account_types == {"work"}
    assert all(c.description for c in found.values())


def test_scope_overrides_replace_the_defaults() -> None:
    found = catalogue({"sharepoint": ["https://graph.microsoft.com/Sites.Selected"]})
    assert found["sharepoint"].scopes == ("https://graph.microsoft.com/Sites.Selected",)
    assert found["onedrive"].scopes == ("https://graph.microsoft.com/Files.Read.All",)


@pytest.mark.parametrize(
    "overrides",
    [
        {"sharepoint": ["Sites.Read.All"]},
        {"sharepoint": ["offline_access"]},
        {
            "sharepoint": [
                "https://graph.microsoft.com/Sites.Read.All",
                "https://storage.azure.com/user_impersonation",
            ]
        },
        {"sharepoint": []},
        {"nope": ["https://graph.microsoft.com/User.Read"]},
        {"onedrive": ["http://graph.microsoft.com/Files.Read"]},
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, list[str]]) -> None:
    with pytest.raises(ConfigError):
        catalogue(overrides)


def test_several_dynamics_organisations() -> None:
    found = catalogue(
        {}, ["https://contoso.crm.dynamics.com", "https://fabrikam.crm4.dynamics.com/"]
    )
    assert found["dynamics"].resource == "https://contoso.crm.dynamics.com"
    assert found["dynamics-fabrikam"].scopes == (
        "https://fabrikam.crm4.dynamics.com/user_impersonation",
    )
    assert "fabrikam.crm4.dynamics.com" in found["dynamics-fabrikam"].name
    assert list(found)[-1] == "azure-storage"


@pytest.mark.parametrize(
    "orgs", [["http://contoso.crm.dynamics.com"], ["https://a.crm.dynamics.com/x"]]
)
def test_bad_dynamics_orgs_are_refused(orgs: list[str]) -> None:
    with pytest.raises(ConfigError):
        catalogue({}, orgs)


def test_authority_follows_the_account_type() -> None:
    found = catalogue()
    assert authority_tenant(found["onedrive"], "personal") == "consumers"
    assert authority_tenant(found["onedrive"], "work") == "organizations"
    assert authority_tenant(found["onedrive"], None) == "common"
    assert authority_tenant(found["outlook"], None) == "common"
    assert authority_tenant(found["sharepoint"], None) == "organizations"
    assert authority_tenant(SIGN_IN, None) == "common"
    with pytest.raises(ValueError):
        authority_tenant(found["sharepoint"], "personal")


def test_account_type_from_tenant() -> None:
    assert account_type_for_tenant(MSA_TENANT) == "personal"
    assert account_type_for_tenant("0b7d3e2c-0000-0000-0000-000000000000") == "work"
