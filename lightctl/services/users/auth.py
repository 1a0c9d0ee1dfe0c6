"""Who a request is: a session (the console's cookie), an API token (scripts, the CLI from
elsewhere), or the local credential (the CLI on the daemon's machine); and signing in and out.

Every request is checked against the records (a revoked session or token, a disabled user, a
changed role take effect at the next request). Times come from the daemon's clock, so tests
freeze them. A session's last use is written at most every :data:`TOUCH_EVERY_MS`, so a busy
console does not cost a write per request; the idle timeout is measured from that.
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from lightctl.services.access import GRANTS, Caller, Role, local_caller
from lightctl.services.users.accounts import Accounts
from lightctl.services.users.throttle import LoginThrottle
from lightctl.services.users.tokens import digest, new_csrf_token, new_session_secret
from lightctl.store import StoreWriteFailed
from lightctl.store.sessions import SessionRecord
from lightctl.store.tokens import TokenRecord

log = logging.getLogger("lightctl.access")

TOUCH_EVERY_MS = 60_000
BAD_CREDENTIALS = "wrong user name or password"
UNKNOWN_ADDRESS = "(unknown address)"


class NotSignedIn(Exception):
    """Credentials missing, unknown, revoked or expired (HTTP 401); the message says which."""


class SignInRefused(Exception):
    """A sign-in refused: wrong name or password (401), or locked out (429, with the wait)."""

    def __init__(self, message: str, status: int = 401, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class SignedIn:
    caller: Caller
    secret: str
    """The session cookie's value (only its digest is kept)."""
    csrf_token: str
    expires_at_ms: int
    """When the session ends however much it is used."""


@dataclass(frozen=True, slots=True)
class SessionFound:
    caller: Caller
    csrf_token: str
    created_at_ms: int


class Authenticator:
    def __init__(self, accounts: Accounts, *, local_secret: str | None) -> None:
        """``local_secret``: the local credential the daemon wrote beside its database (None:
        no local caller, e.g. a test app)."""
        self.accounts = accounts
        self.store = accounts.store
        settings = accounts.settings
        self.idle_ms = round(settings.session_idle_minutes * 60_000)
        self.absolute_ms = round(settings.session_absolute_hours * 3_600_000)
        self._local = local_secret.encode() if local_secret else None
        self.by_user = LoginThrottle(
            limit=settings.failures_per_user, first_s=settings.lockout_first_s, max_s=settings.lockout_max_s, clock=accounts.clock
        )
        self.by_address = LoginThrottle(
            limit=settings.failures_per_address, first_s=settings.lockout_first_s, max_s=settings.lockout_max_s, clock=accounts.clock
        )

    # -- signing in and out ------------------------------------------------------------------

    async def sign_in(self, name: object, password: object, address: str | None) -> SignedIn:
        if not isinstance(name, str) or not isinstance(password, str) or not name:
            raise SignInRefused("'user' and 'password' are required", 400)
        name_key, address_key = name[:64], address or UNKNOWN_ADDRESS
        wait = max(self.by_user.wait_s(name_key), self.by_address.wait_s(address_key))
        if wait > 0:
            raise SignInRefused(
                f"too many failed sign-ins for this user or from this address: try again in {math.ceil(wait)} s",
                429, wait,
            )
        await self.accounts.passwords.prepare_decoy()
        user = await self.store.users.get(name)
        if user is None or user.disabled_at is not None:
            await self.accounts.passwords.verify_nobody(password)
            verified = None
        else:
            verified = await self.accounts.passwords.verify(user.password_hash, password)
        if user is None or verified is None or not verified.ok:
            locked = max(self.by_user.failed(name_key), self.by_address.failed(address_key))
            if locked:
                log.warning("sign-in locked out for %.0f s after repeated failures (user %r, address %s)", locked, name_key, address_key)
            raise SignInRefused(BAD_CREDENTIALS)
        self.by_user.succeeded(name_key)
        self.by_address.succeeded(address_key, forget_lockouts=False)
        if verified.new_hash is not None:
            await self.store.users.rehash(user.id, user.password_hash, verified.new_hash)
            log.info("password hash of %s renewed with the current parameters", user.name)
        now = self.accounts.now_ms()
        secret, csrf = new_session_secret(), new_csrf_token()
        session_id = await self.store.sessions.create(
            secret_hash=digest(secret), user_id=user.id, csrf_token=csrf, address=address, at=now
        )
        await self.store.users.signed_in(user.id, now)
        role = Role(user.role)
        caller = Caller(user.name, role, "session", GRANTS[role], user.id, user.crew, session_id=session_id)
        log.info("%s signed in from %s (session #%d)", user.name, address_key, session_id)
        return SignedIn(caller, secret, csrf, now + self.absolute_ms)

    async def sign_out(self, caller: Caller) -> bool:
        if caller.session_id is None:
            return False
        return await self.store.sessions.end(caller.session_id, self.accounts.now_ms(), "signed out")

    # -- who a request is --------------------------------------------------------------------

    async def session(self, secret: str) -> SessionFound:
        record = await self.store.sessions.find(digest(secret))
        if record is None:
            raise NotSignedIn("not signed in (the session is unknown): sign in again")
        now = self.accounts.now_ms()
        over = self._session_over(record, now)
        if over is not None:
            if record.ended_at is None:
                await self._best_effort(self.store.sessions.end(record.id, now, over), f"session #{record.id}'s end")
            raise NotSignedIn(f"the session has ended ({over}): sign in again")
        if now - record.last_seen_at >= TOUCH_EVERY_MS:
            await self._best_effort(self.store.sessions.touch(record.id, now), f"session #{record.id}'s last use")
        role = Role(record.role)
        caller = Caller(record.user_name, role, "session", GRANTS[role], record.user_id, record.crew, session_id=record.id)
        return SessionFound(caller, record.csrf_token, record.created_at)

    async def bearer(self, secret: str) -> Caller:
        """The caller of an ``Authorization: Bearer`` value: the local credential or an API token."""
        given = secret.encode("utf-8", "replace")
        if self._local is not None and hmac.compare_digest(given, self._local):
            return local_caller()
        record = await self.store.tokens.find(digest(secret))
        if record is None:
            raise NotSignedIn("unknown API token")
        now = self.accounts.now_ms()
        over = self._token_over(record, now)
        if over is not None:
            raise NotSignedIn(f"the API token #{record.id} is {over}")
        if record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY_MS:
            await self._best_effort(self.store.tokens.touch(record.id, now), f"API token #{record.id}'s last use")
        return self._token_caller(record)

    @staticmethod
    async def _best_effort(write: Awaitable[Any], what: str) -> None:
        """A note of use that a failing store must not turn into a refusal: a full disk must not
        stop people from seeing the state (its health says what is not recorded)."""
        try:
            await write
        except StoreWriteFailed as exc:
            log.warning("%s not recorded: %s", what, exc)

    async def still_valid(self, caller: Caller) -> bool:
        """Whether a caller found earlier would still be let in (a long-lived WebSocket asks)."""
        now = self.accounts.now_ms()
        if caller.session_id is not None:
            session = await self.store.sessions.get(caller.session_id)
            return session is not None and self._session_over(session, now) is None
        if caller.token_id is not None:
            token = await self.store.tokens.get(caller.token_id)
            return token is not None and self._token_over(token, now) is None
        return caller.via == "local"

    def _session_over(self, record: SessionRecord, now: int) -> str | None:
        if record.ended_at is not None:
            return record.ended_why or "ended"
        if record.user_disabled_at is not None:
            return "the user is disabled"
        if now >= record.created_at + self.absolute_ms:
            return f"signed in more than {self.absolute_ms / 3_600_000:g} h ago"
        if now >= record.last_seen_at + self.idle_ms:
            return f"unused for {self.idle_ms / 60_000:g} min"
        return None

    @staticmethod
    def _token_over(record: TokenRecord, now: int) -> str | None:
        if record.revoked_at is not None:
            return f"revoked (by {record.revoked_by})"
        if record.user_disabled_at is not None:
            return f"of a disabled user ({record.user_name})"
        if record.expires_at is not None and now >= record.expires_at:
            return "expired"
        return None

    @staticmethod
    def _token_caller(record: TokenRecord) -> Caller:
        scope, role = Role(record.role), Role(record.user_role)
        return Caller(record.user_name, scope, "token", GRANTS[scope] & GRANTS[role], record.user_id, record.crew, token_id=record.id)
