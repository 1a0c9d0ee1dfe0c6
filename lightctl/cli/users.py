"""Users, API tokens and the audit: ``lightctl user ...``, ``lightctl token ...``, ``lightctl audit``.

``user`` and ``token`` act on the daemon's records directly on its machine (as the ``local``
caller, which lightctl.cli.rules checks: whoever can read the local credential), whether the
daemon runs or not; with ``--url`` they go through another daemon's API as the ``--token``'s
user. Each way, lightctl.services.users.accounts checks the caller against the one table and the
change is audited. A password is never taken on the command line (the process list and the
shell's history would keep it): it is generated and printed once, or read from stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from lightctl.cli.common import EXIT_OK, AccessRefused, ApiError, UsageError, add_json, api, full_config

if TYPE_CHECKING:
    from lightctl.services.access import Caller
    from lightctl.services.users.accounts import Accounts

Work = Callable[["Accounts", "Caller", tzinfo], Awaitable[Any]]
ROLES = ("admin", "operator", "maintenance", "viewer")


def register(sub: Any) -> None:
    user = sub.add_parser("user", help="users and their roles").add_subparsers(dest="user_command", required=True)
    p = user.add_parser("add", help="add a user (a password is generated and printed once, or read with --password-stdin)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--crew", help="the crew a maintenance user belongs to")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add_json(p)
    p.set_defaults(func=cmd_user)
    p = user.add_parser("passwd", help="set a user's password (generated, or --password-stdin); their sessions end")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    add_json(p)
    p.set_defaults(func=cmd_user)
    for name, text in (("disable", "disable a user: sessions end, API tokens are revoked"), ("enable", "enable a disabled user")):
        p = user.add_parser(name, help=text)
        p.add_argument("name")
        add_json(p)
        p.set_defaults(func=cmd_user)
    p = user.add_parser("set", help="change a user's role or crew")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--crew")
    add_json(p)
    p.set_defaults(func=cmd_user)
    p = user.add_parser("list", help="users, roles, crews")
    add_json(p)
    p.set_defaults(func=cmd_user)

    token = sub.add_parser("token", help="API tokens for scripts and the CLI elsewhere").add_subparsers(
        dest="token_command", required=True
    )
    p = token.add_parser("create", help="a token for a user, scoped to a role (printed once)")
    p.add_argument("--user", required=True, help="whom it acts for")
    p.add_argument("--label", required=True, help="what it is for")
    p.add_argument("--role", choices=ROLES, help="its scope (default: the user's role; never more)")
    expiry = p.add_mutually_exclusive_group()
    expiry.add_argument("--days", type=int, help="expires after N days (default: access.token_days)")
    expiry.add_argument("--no-expiry", action="store_true")
    add_json(p)
    p.set_defaults(func=cmd_token)
    p = token.add_parser("list", help="tokens (never their values)")
    add_json(p)
    p.set_defaults(func=cmd_token)
    p = token.add_parser("revoke", help="revoke a token")
    p.add_argument("id", type=int)
    add_json(p)
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("audit", help="every change, accepted or refused, newest first")
    p.add_argument("--user", help="one user name")
    p.add_argument("--from", dest="since", help="ISO 8601 date or time (installation's zone), inclusive")
    p.add_argument("--to", dest="until", help="ISO 8601 date or time, exclusive")
    p.add_argument("--limit", type=int, default=200)
    add_json(p)
    p.set_defaults(func=cmd_audit)


# -- user ----------------------------------------------------------------------------------


def cmd_user(args: argparse.Namespace) -> int:
    from lightctl.services.users import views

    command, name = args.user_command, str(getattr(args, "name", ""))
    path = f"/api/v1/users/{quote(name, safe='')}" if name else "/api/v1/users"
    result: Any
    if command == "add":
        body = {"name": name, "role": args.role, "crew": args.crew, **_password(args)}

        async def add(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            return views.user_added(await accounts.add_user(caller, **body), zone)

        result = _through(args, ("POST", "/api/v1/users", body), add, {k: v for k, v in body.items() if k != "password"})
    elif command == "passwd":
        body = _password(args)

        async def passwd(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            generated, ended = await accounts.set_password(caller, name, body.get("password"))
            return views.password_set(name, generated, ended)

        result = _through(args, ("POST", f"{path}/password", body), passwd, {"name": name})
    elif command in ("disable", "enable"):

        async def switch(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            if command == "disable":
                return views.user_disabled(name, *await accounts.disable(caller, name))
            await accounts.enable(caller, name)
            return views.user_enabled(name)

        result = _through(args, ("POST", f"{path}/{command}", None), switch, {"name": name})
    elif command == "set":
        if args.role is None and args.crew is None:
            raise UsageError("user set: give --role, --crew or both")
        body = {k: v for k, v in (("role", args.role), ("crew", args.crew)) if v is not None}

        async def update(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            return views.user_changed(await accounts.update(caller, name, **body), zone)

        result = _through(args, ("PATCH", path, body), update, {"name": name, **body})
    else:

        async def users(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            return [u.as_json(zone) for u in await accounts.users(caller)]

        result = _through(args, ("GET", path, None), users, None)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print_user_result(command, result)
    return EXIT_OK


def _password(args: argparse.Namespace) -> dict[str, str]:
    if not args.password_stdin:
        return {}
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError("--password-stdin: no password on stdin")
    return {"password": line}


def _print_user_result(command: str, result: Any) -> None:
    if command == "list":
        if not result:
            print("none")
        for u in result:
            crew = f" crew {u['crew']}" if u["crew"] else ""
            state = "  DISABLED" if u["disabled"] else ""
            print(f"{u['name']:20} {u['role']:12}{crew}  last sign-in {u['last_login_at'] or 'never'}{state}")
        return
    if command in ("add", "set"):
        u = result["user"]
        crew = f" of crew {u['crew']}" if u["crew"] else ""
        print(f"user {u['name']}: {u['role']}{crew}" + (" (added)" if command == "add" else ""))
    elif command == "passwd":
        print(f"password of {result['user']} set; {result['sessions_ended']} session(s) ended")
    elif command == "disable":
        print(f"user {result['user']} disabled: {result['sessions_ended']} session(s) ended, "
              f"{result['tokens_revoked']} token(s) revoked")
    else:
        print(f"user {result['user']} enabled")
    if "password" in result:
        print(f"password (shown once, nowhere else): {result['password']}")


# -- token ---------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    from lightctl.services.users import views

    result: Any
    if args.token_command == "create":
        days: int | str | None = None if args.no_expiry else args.days if args.days is not None else "default"
        body: dict[str, Any] = {"user": args.user, "label": args.label, "role": args.role}
        if days != "default":
            body["days"] = days

        async def create(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            return views.token_created(
                await accounts.create_token(caller, user=args.user, label=args.label, role=args.role, days=days), zone
            )

        result = _through(args, ("POST", "/api/v1/tokens", body), create, body)
    elif args.token_command == "list":

        async def tokens(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            return [t.as_json(zone) for t in await accounts.tokens(caller)]

        result = _through(args, ("GET", "/api/v1/tokens", None), tokens, None)
    else:

        async def revoke(accounts: Accounts, caller: Caller, zone: tzinfo) -> Any:
            await accounts.revoke_token(caller, args.id)
            return views.token_revoked(args.id)

        result = _through(args, ("DELETE", f"/api/v1/tokens/{args.id}", None), revoke, {"id": args.id})
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif args.token_command == "create":
        print(f"API token #{result['id']} for {result['user']} ({result['role']}), "
              f"expires {result['expires_at'] or 'never'}; shown once, nowhere else:\n{result['token']}")
    elif args.token_command == "list":
        if not result:
            print("none")
        for t in result:
            state = f"revoked {t['revoked_at']} by {t['revoked_by']}" if t["revoked_at"] else f"expires {t['expires_at'] or 'never'}"
            print(f"#{t['id']:<4} {t['user']:16} {t['role']:12} {t['label']:24} last used {t['last_used_at'] or 'never'}; {state}")
    else:
        print(f"API token #{result['revoked']} revoked")
    return EXIT_OK


# -- audit ---------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("user", args.user), ("from", args.since), ("to", args.until), ("limit", args.limit)) if v is not None}
    rows = api(args, "GET", f"/api/v1/audit?{urlencode(query)}")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("none")
    for row in rows:
        who = f"{row['user'] or '(unknown)'} ({row['role'] or '-'}, {row['via']})"
        why = f": {row['error']}" if row["error"] else ""
        print(f"{row['at']}  {who:36} {row['address'] or '-':15} {row['method']} {row['path']}  "
              f"{row['result']} {row['status']}{why}" + (f"  {row['detail']}" if row["detail"] else ""))
    return EXIT_OK


# -- the two ways ----------------------------------------------------------------------------


def _through(args: argparse.Namespace, request: tuple[str, str, Any], work: Work, detail: dict[str, Any] | None) -> Any:
    """Through the API of ``--url``, or on the records of the daemon the config names, as the
    local caller (checked by lightctl.cli.rules before this runs), audited either way."""
    if args.url is not None:
        method, path, body = request
        return api(args, method, path, body)
    from lightctl.loop import run

    return run(_on_records(args, work, request[0], detail))


async def _on_records(args: argparse.Namespace, work: Work, method: str, detail: dict[str, Any] | None) -> Any:
    import asyncio
    import time
    from zoneinfo import ZoneInfo

    from lightctl.runtime.credentials import first_password_path
    from lightctl.services.access import AccessDenied
    from lightctl.services.users.accounts import AccountError, Accounts, UnknownAccount
    from lightctl.services.users.audit import result_of, without_secrets
    from lightctl.store import Store, StoreError
    from lightctl.store.audit import AuditEntry

    config = full_config(args)
    store = Store(config.daemon.database)
    try:
        await asyncio.to_thread(store.open_beside)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    caller = args.caller
    accounts = Accounts(store, config.access, time.time, first_password_file=first_password_path(store.path))
    status, error = 200, None
    try:
        try:
            return await work(accounts, caller, ZoneInfo(config.installation.timezone))
        except AccessDenied as exc:
            status, error = 403, str(exc)
            raise AccessRefused(error) from None
        except UnknownAccount as exc:
            status, error = 404, str(exc)
            raise ApiError(error, status) from None
        except AccountError as exc:
            status, error = 400, str(exc)
            raise ApiError(error, status) from None
        finally:
            if method != "GET":
                await store.audit.record(AuditEntry(
                    at=accounts.now_ms(), user_name=caller.name, role=caller.role.value, via=caller.via, address="local",
                    method="CLI", path=f"lightctl {args.command_words}",
                    detail=None if detail is None else json.dumps(without_secrets(detail), ensure_ascii=False, sort_keys=True),
                    status=status, result=result_of(status), error=error,
                ))
    finally:
        await asyncio.to_thread(store.close)
