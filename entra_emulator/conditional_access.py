"""Conditional Access (MFA, a block, sign-in frequency) and the account lifecycle at refresh."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask.typing import ResponseReturnValue

from entra_emulator import scopes
from entra_emulator.control import ControlError
from entra_emulator.control import json_body
from entra_emulator.errors import CATALOGUE
from entra_emulator.errors import EntraError
from entra_emulator.runtime import current
from entra_emulator.world import MFA_STATES
from entra_emulator.world import User
from entra_emulator.world import World


def check_refresh(
    world: World, user: User, scope: str | None, signed_in: float, mfa: bool = False
) -> None:
    """Raise the AADSTS error Entra answers a refresh with when a policy now applies to user.

    `mfa` tells whether the sign-in behind the refresh-token chain completed MFA.
    """
    if user.deleted:
        code = int(world.settings["deleted_user_refresh_error"])
        raise EntraError(
            code if code in CATALOGUE else 50034, error="invalid_grant", username=user.username
        )
    if user.disabled:  # a disabled account's refresh tokens stop working at once
        raise EntraError(50057)
    access = user.access
    if access.blocked:
        raise EntraError(53003, suberror="message_only")
    frequency = access.sign_in_frequency
    if frequency and time.time() - signed_in > frequency:
        issued = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(signed_in))
        raise EntraError(70043, issued=issued, lifetime=f"{frequency} seconds")
    if access.mfa == "off" or (mfa and access.mfa == "required"):
        return  # an MFA sign-in's refresh tokens carry the claim the policy asks for
    # Entra names the resource's app id in the message ('00000003-...' for Graph).
    refs = scopes.parse(world, scopes.split(scope)[1])
    resource = refs[0].definition.app_id if refs else ""
    code = 50076 if access.mfa == "required" else 50079
    raise EntraError(code, suberror="basic_action", resource=resource)


def post_access(username: str) -> ResponseReturnValue:
    """Set a user's Conditional Access outcome (mfa, blocked); keys left out keep their value."""
    user = _user(username)
    body = json_body()
    unknown = set(body) - {"mfa", "blocked", "sign_in_frequency"}
    if unknown:
        raise ControlError(
            f"{sorted(unknown)[0]}: unknown key (expected mfa, blocked, sign_in_frequency)"
        )
    mfa = body.get("mfa", user.access.mfa)
    if mfa not in MFA_STATES:
        raise ControlError(f"mfa: expected one of {', '.join(MFA_STATES)}")
    blocked = body.get("blocked", user.access.blocked)
    if not isinstance(blocked, bool):
        raise ControlError("blocked: expected a boolean")
    frequency = body.get("sign_in_frequency", user.access.sign_in_frequency)
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 0:
        raise ControlError("sign_in_frequency: expected whole seconds, 0 for none")
    user.access.mfa, user.access.blocked = mfa, blocked
    user.access.sign_in_frequency = frequency
    return {
        "username": user.username,
        "mfa": mfa,
        "blocked": blocked,
        "sign_in_frequency": frequency,
    }


ACCOUNT_SWITCHES = ("disabled", "deleted", "password_expired")


def post_account(username: str) -> ResponseReturnValue:
    """Change an account as an admin does in Entra: disable, delete, restore, reset a password.

    Keys: disabled, deleted, password_expired (booleans) and password (a new one); keys left out
    keep their value.
    """
    user = _user(username)
    body = json_body()
    unknown = set(body) - {*ACCOUNT_SWITCHES, "password"}
    if not body or unknown:
        raise ControlError(
            "expected one or more of disabled, deleted, password_expired (booleans), password"
        )
    for key in ACCOUNT_SWITCHES:
        if key in body and not isinstance(body[key], bool):
            raise ControlError(f"{key}: expected a boolean")
    if "password" in body:
        if not isinstance(body["password"], str) or not body["password"]:
            raise ControlError("password: expected a non-empty string")
        change_password(user, body["password"])
    for key in ACCOUNT_SWITCHES:
        if key in body:
            setattr(user, key, body[key])
    return {"username": user.username, **{key: getattr(user, key) for key in ACCOUNT_SWITCHES}}


def change_password(user: User, password: str) -> None:
    """Set a new password; only public clients' refresh tokens die with the old one.

    Microsoft's token revocation table: a changed or reset password revokes password-based
    tokens, while confidential clients' refresh tokens stay alive.
    """
    state = current().state
    user.password, user.password_expired = password, False
    user.critical_event_at = time.time()  # a CAE critical event: capable tokens are challenged
    for record in state.refresh_tokens.values():
        app = state.world.apps.get(record.client_id)
        public = app is not None and not app.secrets and not app.certificates
        if record.username == user.username and public:
            record.revoked = True


def _user(username: str) -> User:
    """Return the world's user of this name (deleted ones too), or refuse the request."""
    user = current().state.world.users.get(username.lower())
    if user is None:
        raise ControlError(f"username: unknown user {username!r}")
    return user


ROUTES: list[tuple[str, tuple[str, ...], Callable[..., ResponseReturnValue]]] = [
    ("/users/<username>/conditional-access", ("POST",), post_access),
    ("/users/<username>/account", ("POST",), post_account),
]
