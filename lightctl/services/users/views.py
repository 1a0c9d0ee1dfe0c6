"""The answers of account operations as JSON: what the API returns and what the CLI prints,
whichever way the command went (through the API, or on the records directly)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from lightctl.services.users.accounts import NewToken, NewUser
from lightctl.store.users import UserRecord


def user_added(new: NewUser, zone: tzinfo) -> dict[str, Any]:
    out: dict[str, Any] = {"user": new.user.as_json(zone)}
    if new.password is not None:
        out["password"] = new.password
    return out


def user_changed(user: UserRecord, zone: tzinfo) -> dict[str, Any]:
    return {"user": user.as_json(zone)}


def password_set(name: str, generated: str | None, sessions_ended: int) -> dict[str, Any]:
    out: dict[str, Any] = {"user": name, "sessions_ended": sessions_ended}
    if generated is not None:
        out["password"] = generated
    return out


def user_disabled(name: str, sessions_ended: int, tokens_revoked: int) -> dict[str, Any]:
    return {"user": name, "disabled": True, "sessions_ended": sessions_ended, "tokens_revoked": tokens_revoked}


def user_enabled(name: str) -> dict[str, Any]:
    return {"user": name, "disabled": False}


def token_created(new: NewToken, zone: tzinfo) -> dict[str, Any]:
    return {**new.token.as_json(zone), "token": new.secret}


def token_revoked(token_id: int) -> dict[str, Any]:
    return {"revoked": token_id}
