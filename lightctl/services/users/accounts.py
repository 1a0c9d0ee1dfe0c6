"""What an administrator does with users, API tokens and sessions, and a user's own password
change. Every operation takes the caller it acts for and checks it against the one table
(lightctl.services.access) first, whichever way it came: the API or the CLI on the daemon's
machine acting on the records directly."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lightctl.model.access import AccessSettings
from lightctl.model.times import to_ms
from lightctl.services.access import (
    GRANTS,
    RESERVED_NAMES,
    Caller,
    Permission,
    Role,
    require,
    within,
)
from lightctl.services.users.passwords import PasswordRefused, Passwords, generate_password
from lightctl.services.users.tokens import digest, new_api_token
from lightctl.store import Store
from lightctl.store.sessions import SessionRecord
from lightctl.store.tokens import TokenRecord
from lightctl.store.users import NameTaken, UserRecord

log = logging.getLogger("lightctl.access")

NAME = re.compile(r"^[\w][\w.@-]{0,63}$")
"""User names: letters (any script: 值班员 is a name), digits, ``_ . @ -``; up to 64."""
CREW = re.compile(r"^[\w][\w.-]{0,63}$")
DAY_MS = 86_400_000
FIRST_ADMIN = "admin"


class AccountError(ValueError):
    """A request about accounts that cannot be done as asked (HTTP 400); the message says why."""


class UnknownAccount(LookupError):
    """No such user, token or session (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class NewUser:
    user: UserRecord
    password: str | None
    """The generated password, to be shown once; None when the caller chose it."""


@dataclass(frozen=True, slots=True)
class NewToken:
    token: TokenRecord
    secret: str
    """Shown once: only its digest is kept."""


def parse_role(text: object) -> Role:
    try:
        return Role(str(text))
    except ValueError:
        raise AccountError(f"unknown role {text!r}: one of {', '.join(r.value for r in Role)}") from None


class Accounts:
    def __init__(
        self,
        store: Store,
        settings: AccessSettings,
        clock: Callable[[], float],
        *,
        first_password_file: Path | None = None,
    ) -> None:
        """``first_password_file``: where the daemon wrote the first admin's password; removed
        when that password is changed (it no longer works)."""
        self.store = store
        self.settings = settings
        self.clock = clock
        self.passwords = Passwords(settings.password_hash, min_length=settings.password_min_length)
        self.first_password_file = first_password_file

    def now_ms(self) -> int:
        return to_ms(self.clock())

    # -- users -------------------------------------------------------------------------------

    async def users(self, caller: Caller) -> list[UserRecord]:
        require(caller, Permission.ADMINISTER)
        return await self.store.users.all()

    async def add_user(
        self, caller: Caller, *, name: object, role: object, crew: object = None, password: object = None
    ) -> NewUser:
        require(caller, Permission.ADMINISTER)
        if not isinstance(name, str) or not NAME.match(name):
            raise AccountError(f"bad user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit")
        if name in RESERVED_NAMES:
            raise AccountError(f"the name {name!r} is reserved for the daemon's own records")
        the_role = parse_role(role)
        the_crew = self._crew(the_role, crew)
        generated = None
        if password is None:
            password = generated = generate_password()
        elif not isinstance(password, str):
            raise AccountError("'password' must be a string (or left out: one is generated and shown once)")
        self._check_password(name, password)
        hashed = await self.passwords.hash(password)
        try:
            await self.store.users.add(
                name=name, role=the_role.value, crew=the_crew, password_hash=hashed, at=self.now_ms(), by=caller.name
            )
        except NameTaken as exc:
            raise AccountError(str(exc)) from None
        log.info("user %s (%s) added by %s", name, the_role.value, caller.describe())
        return NewUser(await self._user(name), generated)

    async def set_password(self, caller: Caller, name: str, password: object = None) -> tuple[str | None, int]:
        """An administrator sets a user's password (generated when not given); every session of
        that user ends. (the generated password or None, sessions ended)."""
        require(caller, Permission.ADMINISTER)
        user = await self._user(name)
        generated = None
        if password is None:
            password = generated = generate_password()
        elif not isinstance(password, str):
            raise AccountError("'password' must be a string (or left out: one is generated and shown once)")
        self._check_password(name, password)
        ended = await self.store.users.change_password(user.id, await self.passwords.hash(password), self.now_ms())
        self._first_password_changed(user)
        log.info("password of %s set by %s; %d session(s) ended", name, caller.describe(), ended)
        return generated, ended

    async def change_own_password(self, caller: Caller, current: object, new: object) -> int:
        """A signed-in user changes their own password, giving the current one; every session of
        theirs ends (this one too: they sign in again). Sessions ended."""
        require(caller, Permission.READ)
        if caller.user_id is None:
            raise AccountError(f"{caller.describe()} has no password of its own")
        if not isinstance(current, str) or not isinstance(new, str):
            raise AccountError("'current' and 'new' passwords are required, as strings")
        user = await self._user(caller.name)
        if not (await self.passwords.verify(user.password_hash, current)).ok:
            raise AccountError("the current password is wrong")
        self._check_password(user.name, new)
        ended = await self.store.users.change_password(user.id, await self.passwords.hash(new), self.now_ms())
        self._first_password_changed(user)
        log.info("%s changed their password; %d session(s) ended", user.name, ended)
        return ended

    async def disable(self, caller: Caller, name: str) -> tuple[int, int]:
        """Disable a user: sessions end, tokens are revoked. (sessions, tokens)."""
        require(caller, Permission.ADMINISTER)
        user = await self._user(name)
        if user.disabled_at is not None:
            raise AccountError(f"user {name!r} is disabled already")
        await self._keep_an_admin(user, f"disable {name!r}")
        sessions, tokens = await self.store.users.disable(user.id, self.now_ms(), caller.name)
        log.info("user %s disabled by %s: %d session(s) ended, %d token(s) revoked", name, caller.describe(), sessions, tokens)
        return sessions, tokens

    async def enable(self, caller: Caller, name: str) -> None:
        require(caller, Permission.ADMINISTER)
        user = await self._user(name)
        if user.disabled_at is None:
            raise AccountError(f"user {name!r} is not disabled")
        await self.store.users.enable(user.id)
        log.info("user %s enabled by %s", name, caller.describe())

    async def update(self, caller: Caller, name: str, *, role: object = None, crew: object = None) -> UserRecord:
        """Change a user's role or crew (effective at its next request: sessions and tokens
        read the role from the user's row)."""
        require(caller, Permission.ADMINISTER)
        user = await self._user(name)
        the_role = Role(user.role) if role is None else parse_role(role)
        the_crew = self._crew(the_role, user.crew if crew is None and the_role is Role.MAINTENANCE else crew)
        if the_role is not Role.ADMIN:
            await self._keep_an_admin(user, f"make {name!r} {the_role.value}")
        await self.store.users.update(user.id, role=the_role.value, crew=the_crew)
        log.info("user %s is now %s%s (by %s)", name, the_role.value, f" of crew {the_crew}" if the_crew else "", caller.describe())
        return await self._user(name)

    async def has_users(self) -> bool:
        return await self.store.users.count() > 0

    async def ensure_first_admin(self, password: str) -> bool:
        """On the first start (no users at all): create ``admin`` with ``password`` (random, kept
        by the daemon where its user alone can read it); False when there are users already."""
        if await self.has_users():
            return False
        hashed = await self.passwords.hash(password)
        try:
            await self.store.users.add(
                name=FIRST_ADMIN, role=Role.ADMIN.value, crew=None, password_hash=hashed, at=self.now_ms(),
                by="lightctl (first start)",
            )
        except NameTaken:  # the CLI beside us was quicker: there are users now
            return False
        log.info("first start: user %r created", FIRST_ADMIN)
        return True

    # -- tokens ------------------------------------------------------------------------------

    async def create_token(
        self, caller: Caller, *, user: object, label: object, role: object = None, days: object = "default"
    ) -> NewToken:
        """A token for ``user`` scoped to ``role`` (default: the user's), which must give
        nothing that the user's role lacks; it expires after ``days`` (None: never)."""
        require(caller, Permission.ADMINISTER)
        if not isinstance(user, str):
            raise AccountError("'user' (whom the token acts for) is required")
        owner = await self._user(user)
        if owner.disabled_at is not None:
            raise AccountError(f"user {user!r} is disabled")
        if not isinstance(label, str) or not label.strip() or len(label) > 100:
            raise AccountError("'label' (what the token is for, up to 100 characters) is required")
        scope = Role(owner.role) if role is None else parse_role(role)
        if not within(scope, Role(owner.role)):
            raise AccountError(
                f"a {scope.value} token would give {user!r} more than their role ({owner.role}) allows"
            )
        if days == "default":
            days = self.settings.token_days
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650):
            raise AccountError("'days' must be a whole number of days, 1-3650, or null (never expires)")
        now = self.now_ms()
        secret = new_api_token()
        token_id = await self.store.tokens.create(
            secret_hash=digest(secret), user_id=owner.id, role=scope.value, label=label.strip(), at=now,
            by=caller.name, expires_at=None if days is None else now + days * DAY_MS,
        )
        log.info("API token #%d (%s) for %s created by %s", token_id, scope.value, user, caller.describe())
        record = await self.store.tokens.get(token_id)
        assert record is not None
        return NewToken(record, secret)

    async def tokens(self, caller: Caller) -> list[TokenRecord]:
        require(caller, Permission.ADMINISTER)
        return await self.store.tokens.all()

    async def revoke_token(self, caller: Caller, token_id: int) -> None:
        require(caller, Permission.ADMINISTER)
        if await self.store.tokens.get(token_id) is None:
            raise UnknownAccount(f"no API token #{token_id}")
        if not await self.store.tokens.revoke(token_id, self.now_ms(), caller.name):
            raise AccountError(f"API token #{token_id} is revoked already")
        log.info("API token #%d revoked by %s", token_id, caller.describe())

    # -- sessions ----------------------------------------------------------------------------

    async def sessions(self, caller: Caller) -> list[SessionRecord]:
        """Sessions in force (not ended, not timed out), newest first."""
        require(caller, Permission.ADMINISTER)
        now = self.now_ms()
        idle_ms = round(self.settings.session_idle_minutes * 60_000)
        absolute_ms = round(self.settings.session_absolute_hours * 3_600_000)
        found = await self.store.sessions.open_since(now - idle_ms)
        return [s for s in found if s.created_at + absolute_ms > now and s.user_disabled_at is None]

    async def end_session(self, caller: Caller, session_id: int) -> None:
        require(caller, Permission.ADMINISTER)
        if await self.store.sessions.get(session_id) is None:
            raise UnknownAccount(f"no session #{session_id}")
        if not await self.store.sessions.end(session_id, self.now_ms(), f"revoked by {caller.name}"):
            raise AccountError(f"session #{session_id} has ended already")
        log.info("session #%d revoked by %s", session_id, caller.describe())

    # -- helpers -----------------------------------------------------------------------------

    async def _user(self, name: str) -> UserRecord:
        user = await self.store.users.get(name)
        if user is None:
            raise UnknownAccount(f"no user {name!r}")
        return user

    def _check_password(self, name: str, password: str) -> None:
        try:
            self.passwords.check_policy(name, password)
        except PasswordRefused as exc:
            raise AccountError(str(exc)) from None

    @staticmethod
    def _crew(role: Role, crew: object) -> str | None:
        if role is Role.MAINTENANCE:
            if not isinstance(crew, str) or not CREW.match(crew):
                raise AccountError("a maintenance user belongs to a crew: give 'crew' (letters, digits, '_', '.', '-')")
            return crew
        if crew is not None:
            raise AccountError(f"only maintenance users belong to a crew, not a {role.value}")
        return None

    async def _keep_an_admin(self, user: UserRecord, what: str) -> None:
        """Refuse to leave no enabled admin (the local caller on the daemon's machine remains,
        but an installation run from the console would be locked out of its own users)."""
        if user.role != Role.ADMIN.value or user.disabled_at is not None:
            return
        admins = [u for u in await self.store.users.all() if GRANTS[Role(u.role)] >= GRANTS[Role.ADMIN] and u.disabled_at is None]
        if len(admins) <= 1:
            raise AccountError(f"cannot {what}: it is the last enabled admin")

    def _first_password_changed(self, user: UserRecord) -> None:
        if user.name == FIRST_ADMIN and self.first_password_file is not None:
            self.first_password_file.unlink(missing_ok=True)
