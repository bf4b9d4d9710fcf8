"""SharePoint through Graph: the tenant's sites, their lists and list items with fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import request

from entra_emulator.dataset import ItemList
from entra_emulator.dataset import children
from entra_emulator.dataset import iso
from entra_emulator.dataset import stamp
from entra_emulator.dataset import tree
from entra_emulator.graph_common import GraphError
from entra_emulator.graph_common import collection
from entra_emulator.graph_common import data
from entra_emulator.graph_common import page
from entra_emulator.runtime import current
from entra_emulator.world import stable_id

LIBRARY = "Documents"  # every site's default document library ("Shared Documents")
EXPAND = re.compile(r"fields(?:\(\$?select=([^)]*)\))?")


@dataclass(frozen=True)
class Site:
    host: str
    name: str  # "" for the root site, "Team" for the team site

    @property
    def id(self) -> str:
        """Return Graph's composite site id: host, site collection id, web id."""
        tail = (self.name,) if self.name else ()  # the root site's ids predate team sites
        collection_id, web_id = (
            stable_id("site", self.host, *tail),
            stable_id("web", self.host, *tail),
        )
        return f"{self.host},{collection_id},{web_id}"

    @property
    def web_url(self) -> str:
        """Return the site's address."""
        return f"https://{self.host}" + (f"/sites/{self.name}" if self.name else "")

    @property
    def team(self) -> bool:
        """Return True for the team site, which holds the configured lists and library."""
        return bool(self.name)


def sites_of(claims: dict[str, Any]) -> list[Site]:
    """Return the caller's tenant's sites: the root site, plus a team site for work tenants."""
    tenant = current().state.world.tenants.get(claims["tid"])
    host = f"{(tenant.domains[0] if tenant else 'personal').split('.')[0]}.sharepoint.com"
    return [Site(host, "")] + ([Site(host, "Team")] if tenant else [])


def find_site(claims: dict[str, Any], ref: str) -> Site:
    """Return the site named by id, "root" or "<host>:/sites/<name>"; raise itemNotFound."""
    sites = sites_of(claims)
    for site in sites:
        by_path = f"{site.host}:/sites/{site.name}".lower()
        if ref == "root" and not site.name:
            return site
        if ref.lower() in (site.id, site.host if not site.name else "", by_path, by_path + ":"):
            return site
    raise GraphError(404, "itemNotFound", "Requested site could not be found")


def site_json(site: Site, tenant_name: str) -> dict[str, Any]:
    """Return a site resource."""
    return {
        "id": site.id,
        "name": site.name,
        "displayName": f"{tenant_name} Team" if site.team else "Communication site",
        "webUrl": site.web_url,
        "createdDateTime": iso(stamp(site.id, "created")),
        "lastModifiedDateTime": iso(stamp(site.id, "modified")),
        "siteCollection": {"hostname": site.host},
    }


def _tenant_name(claims: dict[str, Any]) -> str:
    """Return the display name of the caller's tenant."""
    tenant = current().state.world.tenants.get(claims["tid"])
    return tenant.name if tenant else "Personal"


def site_get(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one site (GET /sites/root, /sites/{id}, /sites/{host}:/sites/{name})."""
    return site_json(find_site(claims, match["site"]), _tenant_name(claims))


def sites_search(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the tenant's sites whose name or display name contains ?search= (* for all)."""
    wanted = (request.args.get("search") or "*").strip().strip('"').lower()
    found = [site_json(s, _tenant_name(claims)) for s in sites_of(claims)]
    if wanted != "*":
        found = [s for s in found if wanted in f"{s['name']} {s['displayName']}".lower()]
    span, next_link = page("sites", len(found))
    return collection("sites", [found[i] for i in span], next_link)


def _lists_of(site: Site) -> list[ItemList | None]:
    """Return the site's lists; None stands for the document library."""
    return [None, *data().lists] if site.team else [None]


def _list_json(site: Site, item_list: ItemList | None) -> dict[str, Any]:
    """Return a list resource (genericList, or documentLibrary for None)."""
    name = item_list.name if item_list else LIBRARY
    list_id = stable_id("list", site.id, name.lower())
    path = f"Lists/{name}" if item_list else "Shared Documents"
    return {
        "@odata.etag": f'"{list_id},1"',
        "id": list_id,
        "name": name,
        "displayName": name,
        "description": "",
        "webUrl": f"{site.web_url}/{path}",
        "createdDateTime": iso(stamp(list_id, "created")),
        "lastModifiedDateTime": iso(stamp(list_id, "modified")),
        "parentReference": {"siteId": site.id},
        "list": {
            "contentTypesEnabled": False,
            "hidden": False,
            "template": "genericList" if item_list else "documentLibrary",
        },
    }


def _find_list(site: Site, ref: str) -> tuple[ItemList | None, dict[str, Any]]:
    """Return a list by id or name; raise itemNotFound."""
    for item_list in _lists_of(site):
        body = _list_json(site, item_list)
        if ref.lower() in (body["id"], body["name"].lower()) or (
            item_list is None and ref.lower() == "shared documents"
        ):
            return item_list, body
    raise GraphError(404, "itemNotFound", "The specified list was not found")


def lists(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return the lists of a site."""
    site = find_site(claims, match["site"])
    found = [_list_json(site, x) for x in _lists_of(site)]
    span, next_link = page("lists", len(found))
    return collection(f"sites('{site.id}')/lists", [found[i] for i in span], next_link)


def list_get(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one list."""
    return _find_list(find_site(claims, match["site"]), match["list"])[1]


def _expanded() -> list[str] | None:
    """Return None without expand=fields, else the fields to select ([] for all)."""
    raw = request.args.get("$expand") or request.args.get("expand") or ""
    found = EXPAND.fullmatch(raw.strip())
    if found is None:
        return None
    return [f.strip() for f in (found.group(1) or "").split(",") if f.strip()]


def _item(list_body: dict[str, Any], index: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Return list item number index, with its fields when expanded."""
    etag = f'"{stable_id("item", list_body["id"], str(index))},1"'
    created, modified = stamp(list_body["id"], str(index)), stamp(list_body["id"], str(index), "m")
    body: dict[str, Any] = {
        "@odata.etag": etag,
        "id": str(index),
        "eTag": etag,
        "createdDateTime": iso(created),
        "lastModifiedDateTime": iso(max(created, modified)),
        "webUrl": f"{list_body['webUrl']}/{index}_.000",
        "contentType": {"id": "0x0100", "name": fields.get("ContentType", "Item")},
        "parentReference": {
            "id": list_body["id"],
            "siteId": list_body["parentReference"]["siteId"],
        },
    }
    wanted = _expanded()
    if wanted is not None:
        extra = {
            "Created": body["createdDateTime"],
            "Modified": body["lastModifiedDateTime"],
            "AuthorLookupId": "6",
            "EditorLookupId": "6",
            "_UIVersionString": "1.0",
        }
        full = {"@odata.etag": etag, "id": str(index), **fields, **extra}
        keep = ("@odata.etag", "id")
        body["fields"] = {k: v for k, v in full.items() if not wanted or k in wanted or k in keep}
    return body


def _library_fields(site: Site) -> list[dict[str, Any]]:
    """Return the document library's entries as list item fields (files and folders)."""
    nodes = tree(data().library if site.team else [], data().big_file_bytes)
    out, queue = [], children(nodes, nodes[""])
    while queue:
        node = queue.pop(0)
        kind = "Folder" if node.folder else "Document"
        out.append(
            {
                "FileLeafRef": node.name,
                "LinkFilename": node.name,
                "ContentType": kind,
                "FileSizeDisplay": str(node.size),
                "DocIcon": node.name.rsplit(".", 1)[-1],
            }
        )
        queue.extend(children(nodes, node) if node.folder else [])
    return out


def list_items(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return a page of list items (?expand=fields for their values), @odata.nextLink after."""
    site = find_site(claims, match["site"])
    item_list, body = _find_list(site, match["list"])
    library = _library_fields(site) if item_list is None else []
    total = item_list.items if item_list else len(library)
    span, next_link = page("list_items", total)
    value = []
    for i in span:  # list item ids count from 1, as SharePoint's do
        fields = item_list.fields(i + 1) if item_list else library[i]
        value.append(_item(body, i + 1, fields))
    context = f"sites('{site.id}')/lists('{body['id']}')/items"
    return collection(context, value, next_link)


def list_item(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one list item by id."""
    site = find_site(claims, match["site"])
    item_list, body = _find_list(site, match["list"])
    index = int(match["item"])
    library = _library_fields(site) if item_list is None else []
    if not 1 <= index <= (item_list.items if item_list else len(library)):
        raise GraphError(404, "itemNotFound", "The specified list item was not found")
    return _item(body, index, item_list.fields(index) if item_list else library[index - 1])
