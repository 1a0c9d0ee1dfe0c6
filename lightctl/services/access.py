"""Who may do what: the roles, the permissions, and the one table between them that every API
route and every CLI command is checked against.

A route declares the permission it needs (``web.routing.Route``; a route without one cannot be
registered); a CLI command declares how it acts (``lightctl.cli.rules``): through the API (the
route's permission applies) or on the daemon's records directly, checked here for the local
caller. Nothing else decides access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    PUBLIC = "public"
    """No credentials: signing in (the sign-in page and ``POST /api/v1/session``), nothing that
    shows state. Granted to nobody because nobody needs it."""
    READ = "read"
    """See state, records and reports."""
    OPERATE = "operate"
    """Scenes (the one switch), shows, overrides, hand-back, curtailment."""
    MAINTAIN = "maintain"
    """Faults and work orders."""
    ADMINISTER = "administer"
    """Users, tokens, sessions, the audit, configuration reload."""


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    MAINTENANCE = "maintenance"
    VIEWER = "viewer"


GRANTS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.READ, Permission.OPERATE, Permission.MAINTAIN, Permission.ADMINISTER}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.MAINTENANCE: frozenset({Permission.READ, Permission.MAINTAIN}),
    Role.VIEWER: frozenset({Permission.READ}),
}
"""The one table. An admin may do everything (an admin could make an operator account for
themselves anyway; the audit says who did what)."""

LOCAL_USER = "local"
"""The caller the daemon's own machine acts as: the CLI run by the daemon's OS user, proved by
reading the local credential (a 0600 file beside the database). A user name nobody can take."""

RESERVED_NAMES = frozenset({LOCAL_USER, "lightctl", "expiry", "schedule", "startup", "anonymous"})
"""Names the records already use for the daemon's own actions: no user may take them."""


def grants(role: Role) -> frozenset[Permission]:
    return GRANTS[role]


def role_may(role: Role, permission: Permission) -> bool:
    return permission is Permission.PUBLIC or permission in GRANTS[role]


def within(scope: Role, role: Role) -> bool:
    """Whether a token scoped to ``scope`` gives nothing that ``role`` lacks."""
    return GRANTS[scope] <= GRANTS[role]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request (or a local CLI command) acts as, as authentication found them."""

    name: str
    role: Role
    via: str
    """"session", "token", or "local"."""
    grants: frozenset[Permission]
    """What the caller may do: the role's grants, for a token those of its scope that its user
    still has."""
    user_id: int | None = None
    crew: str | None = None
    session_id: int | None = None
    token_id: int | None = None

    def may(self, permission: Permission) -> bool:
        return permission is Permission.PUBLIC or permission in self.grants

    def describe(self) -> str:
        how = f"token #{self.token_id}" if self.token_id is not None else self.via
        return f"{self.name} ({self.role.value}, {how})"


def local_caller() -> Caller:
    return Caller(LOCAL_USER, Role.ADMIN, "local", GRANTS[Role.ADMIN])


class AccessDenied(PermissionError):
    """A caller asked for what its role does not grant (HTTP 403)."""


def require(caller: Caller, permission: Permission) -> None:
    """Raise :class:`AccessDenied` unless ``caller`` may do what ``permission`` covers."""
    if not caller.may(permission):
        raise AccessDenied(
            f"{caller.describe()} may not {permission.value}: that needs the role "
            f"{' or '.join(r.value for r in Role if permission in GRANTS[r])}"
        )
