"""OneDrive and site libraries through Graph: drives, items, children and file content."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import redirect

from entra_emulator import content
from entra_emulator import graph_download as downloads
from entra_emulator.dataset import FileEntry
from entra_emulator.dataset import Node
from entra_emulator.dataset import children
from entra_emulator.dataset import iso
from entra_emulator.dataset import stamp
from entra_emulator.dataset import tree
from entra_emulator.graph_common import GraphError
from entra_emulator.graph_common import collection
from entra_emulator.graph_common import data
from entra_emulator.graph_common import page
from entra_emulator.graph_sites import find_site
from entra_emulator.graph_sites import sites_of
from entra_emulator.resources import user_of
from entra_emulator.world import CONSUMER_TENANT
from entra_emulator.world import stable_id

NOT_FOUND = ("itemNotFound", "The resource could not be found.")


@dataclass(frozen=True)
class Drive:
    id: str
    kind: str  # business, personal or documentLibrary
    name: str
    web_url: str
    owner: dict[str, Any]
    entries: tuple[FileEntry, ...]
    seed_root: str  # a file's content seed is seed_root + "/" + its path

    def nodes(self) -> dict[str, Node]:
        """Return the drive's folders and files by lower-cased path."""
        return tree(list(self.entries), data().big_file_bytes)

    def item_id(self, node: Node) -> str:
        """Return a OneDrive-style item id, stable per drive and path."""
        digest = hashlib.sha256(f"{self.id}/{node.path.lower()}".encode()).digest()
        return "01" + base64.b32encode(digest).decode()[:32]


def _drive_id(*parts: str) -> str:
    """Return a "b!..." drive id derived from names."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "b!" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def user_drive(claims: dict[str, Any]) -> Drive:
    """Return the signed-in user's OneDrive; nobody sees another user's drive."""
    user = user_of(claims)
    if user is None:
        raise GraphError(404, *NOT_FOUND)
    personal = user.tenant == CONSUMER_TENANT
    org = user.username.split("@")[1].split(".")[0]
    folder = user.username.replace("@", "_").replace(".", "_")
    web_url = f"https://{org}-my.sharepoint.com/personal/{folder}/Documents"
    if personal:
        web_url = f"https://onedrive.live.com/?id=root&cid={user.oid[-16:]}"
    owner = {"user": {"id": user.oid, "displayName": user.display_name}}
    kind = "personal" if personal else "business"
    return Drive(
        _drive_id("user", user.oid), kind, "OneDrive", web_url, owner, tuple(data().drive), ""
    )


def _site_drive(claims: dict[str, Any], site_ref: str) -> Drive:
    """Return a site's document library."""
    site = find_site(claims, site_ref)
    entries = tuple(data().library) if site.team else ()
    owner = {"group": {"id": stable_id("group", site.id), "displayName": site.name or "Site"}}
    return Drive(
        _drive_id("site", site.id),
        "documentLibrary",
        "Documents",
        f"{site.web_url}/Shared Documents",
        owner,
        entries,
        f"/sites/{site.name}",
    )


def resolve(claims: dict[str, Any], match: re.Match[str]) -> Drive:
    """Return the drive a path names: me/drive, sites/{id}/drive or drives/{id} (yours only)."""
    if match["site"]:
        return _site_drive(claims, match["site"])
    mine = user_drive(claims)
    if not match["drive"] or match["drive"] == mine.id:
        return mine
    for site in sites_of(claims):
        library = _site_drive(claims, site.id)
        if library.id == match["drive"]:
            return library
    raise GraphError(404, *NOT_FOUND)


def _node(drive: Drive, nodes: dict[str, Node], match: re.Match[str]) -> Node:
    """Return the item a path names: root, root:/{path}: or items/{id}."""
    if match["item"]:
        found = next((n for n in nodes.values() if drive.item_id(n) == match["item"]), None)
    else:
        found = nodes.get((match["path"] or "").strip("/").lower())
    if found is None:
        raise GraphError(404, *NOT_FOUND)
    return found


def _etag(drive: Drive, node: Node) -> str:
    """Return the item's eTag, which changes when its size does."""
    return "{" + stable_id("etag", drive.id, node.path.lower(), str(node.size)).upper() + "},1"


def _times(drive: Drive, node: Node) -> tuple[str, str]:
    """Return (created, last modified) of an item."""
    created, modified = stamp(drive.id, node.path), stamp(drive.id, node.path, str(node.size))
    return iso(created), iso(max(created, modified))


def item_json(drive: Drive, nodes: dict[str, Node], node: Node) -> dict[str, Any]:
    """Return a driveItem: a folder with childCount, or a file with its download URL."""
    created, modified = _times(drive, node)
    etag = _etag(drive, node)
    body: dict[str, Any] = {
        "id": drive.item_id(node),
        "name": node.name,
        "size": node.size,
        "eTag": f'"{etag}"',
        "cTag": f'"c:{etag}"',
        "createdDateTime": created,
        "lastModifiedDateTime": modified,
        "webUrl": drive.web_url + ("/" + quote(node.path) if node.path else ""),
        "createdBy": drive.owner,
        "lastModifiedBy": drive.owner,
        "fileSystemInfo": {"createdDateTime": created, "lastModifiedDateTime": modified},
    }
    if node.path:
        parent = nodes[node.parent.lower()]
        path = "/drive/root:" + (f"/{parent.path}" if parent.path else "")
        body["parentReference"] = {
            "driveId": drive.id,
            "driveType": drive.kind,
            "id": drive.item_id(parent),
            "path": path,
        }
    else:
        body["root"] = {}
    if node.folder:
        body["folder"] = {"childCount": len(children(nodes, node))}
    else:
        body["file"] = {"mimeType": content.mime_type(node.name)}
        body["@microsoft.graph.downloadUrl"] = _download_url(drive, node)
    return body


def drive_get(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return a drive resource with its quota."""
    drive = resolve(claims, match)
    used = drive.nodes()[""].size
    quota = {"total": 1 << 40, "used": used, "remaining": (1 << 40) - used, "state": "normal"}
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#drives/$entity",
        "id": drive.id,
        "driveType": drive.kind,
        "name": drive.name,
        "webUrl": drive.web_url,
        "owner": drive.owner,
        "quota": quota,
    }


def item_get(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one driveItem (root, by path or by id)."""
    drive = resolve(claims, match)
    nodes = drive.nodes()
    return item_json(drive, nodes, _node(drive, nodes, match))


def item_children(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return a page of a folder's children, sorted by name, with @odata.nextLink after."""
    drive = resolve(claims, match)
    nodes = drive.nodes()
    folder = _node(drive, nodes, match)
    inside = children(nodes, folder) if folder.folder else []
    span, next_link = page("drive_children", len(inside))
    value = [item_json(drive, nodes, inside[i]) for i in span]
    return collection(f"drives('{drive.id}')/items", value, next_link)


def item_content(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Answer a file's bytes (Range, If-None-Match), or 302 to its download URL if configured."""
    drive = resolve(claims, match)
    node = _node(drive, drive.nodes(), match)
    if node.folder:  # only driveItems with the file facet have content
        raise GraphError(400, "invalidRequest", "The item is a folder and has no content.")
    if data().content_redirect:
        return redirect(_download_url(drive, node), code=302)
    return downloads.serve(_file_claims(drive, node))


def _download_url(drive: Drive, node: Node) -> str:
    """Return the pre-authenticated download URL of this version of a file."""
    return downloads.download_url(_file_claims(drive, node))


def _file_claims(drive: Drive, node: Node) -> dict[str, Any]:
    """Return what serving a file needs: seed, size, name, type, eTag, modification time."""
    seed = f"{drive.seed_root}/{node.path}"
    return {
        "seed": seed,
        "size": node.size,
        "name": node.name,
        "etag": _etag(drive, node),
        "modified": _times(drive, node)[1],
    }
