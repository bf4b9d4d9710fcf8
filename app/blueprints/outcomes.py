"""Failed flows turned into the next step, and the shareable page per AADSTS code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import abort
from flask import render_template
from flask.typing import ResponseReturnValue

from app import accounts
from app import diagnosis
from app.blueprints.connectors import all_connectors
from app.errors import EntraError
from app.presenters import support_block

bp = Blueprint("outcomes", __name__)


def failed(error: EntraError, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Render what happened at Entra, who must act and how, in one hop."""
    connector = all_connectors().get(str(purpose.get("connector") or ""))
    found = diagnosis.diagnose(
        error.error,
        error.description,
        codes=error.codes,
        subcode=error.subcode,
        suberror=error.suberror,
        admin_consent=error.admin_consent,
        connector=connector.name if connector else None,
        account_type=purpose.get("account_type"),
    )
    details = support_block(error, connector=connector.name if connector else None)
    template = (
        "outcomes/admin_approval.html"
        if found.route == "admin_approval"
        else ("outcomes/diagnosis.html")
    )
    page = render_template(
        template,
        diagnosis=found,
        connector=connector,
        details=details,
        user=accounts.current_user(),
    )
    return page, 403 if found.route == "admin_approval" else 400


@bp.get("/help/aadsts/<int:code>")
def aadsts(code: int) -> ResponseReturnValue:
    """Show the diagnosis for one AADSTS code, for sharing with a colleague."""
    if code > 99_999_999:
        abort(404)
    found = diagnosis.diagnose(None, f"AADSTS{code}")
    return render_template(
        "outcomes/diagnosis.html",
        diagnosis=found,
        connector=None,
        details=None,
        user=accounts.current_user(),
        shared=True,
    )
