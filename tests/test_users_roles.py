"""Who may do what, generated from the route table: for every route and every role, no
credentials are refused (401), a role the one table does not grant the route's permission is
refused (403), and a role it grants gets past the check. A new route is covered as soon as it is
in a route module; one without a rule cannot be registered, so this test fails on it. Every CLI
command has a rule too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lightctl.cli.main import build_parser
from lightctl.cli.rules import COMMANDS, Acts, leaf_commands
from lightctl.services.access import GRANTS, Caller, Permission, Role, require
from tests.users_support import LOCAL, bearer, browser, running_daemon, sign_in
from web.app import ROUTE_MODULES
from web.context import CSRF_HEADER
from web.routing import Route

PUBLIC_ROUTES = {("GET", "/login"), ("POST", "/api/v1/session")}
"""What anyone may reach: signing in, and nothing that shows state. A console's static files
(no state in them) may join this list when the console is served."""

SAMPLES = {
    "scene_id": "all-on", "controller_id": "m0", "show_id": "no-such-show", "override_id": "999",
    "command_id": "1", "curtailment_id": "999", "name": "nobody", "token_id": "999", "session_id": "999",
}
"""A value for each path parameter the routes use; another one gets 'x' (a 404 or 400 is still
past the permission check)."""

ROUTES: list[Route] = [route for module in ROUTE_MODULES for route in module.ROUTES]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "x"), path)


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


def test_every_permission_is_in_the_one_table_and_only_sign_in_is_public() -> None:
    for route in ROUTES:
        if route.permission is Permission.PUBLIC:
            assert (route.method, route.path) in PUBLIC_ROUTES, f"{route_id(route)} is public: is it in PUBLIC_ROUTES?"
        else:
            assert any(route.permission in GRANTS[role] for role in Role), f"{route_id(route)}: no role may"
    assert {(r.method, r.path) for r in ROUTES if r.permission is Permission.PUBLIC} == PUBLIC_ROUTES
    assert GRANTS[Role.VIEWER] == {Permission.READ}
    assert GRANTS[Role.OPERATOR] == {Permission.READ, Permission.OPERATE}
    assert GRANTS[Role.MAINTENANCE] == {Permission.READ, Permission.MAINTAIN}
    assert GRANTS[Role.ADMIN] == {Permission.READ, Permission.OPERATE, Permission.MAINTAIN, Permission.ADMINISTER}


def test_every_cli_command_has_a_rule_and_local_commands_check_the_table() -> None:
    commands = dict(leaf_commands(build_parser()))
    assert set(commands) == set(COMMANDS), "a CLI command without a rule in lightctl/cli/rules.py (or a stale rule)"
    for words, rule in COMMANDS.items():
        if rule.acts is Acts.RECORDS:
            assert rule.permission is not None, words
            viewer = Caller("v", Role.VIEWER, "token", GRANTS[Role.VIEWER])
            with pytest.raises(PermissionError, match="may not"):
                require(viewer, rule.permission)


async def _request(session: aiohttp.ClientSession, url: str, route: Route, headers: dict[str, str]) -> tuple[int, str]:
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if route.method not in ("GET", "HEAD"):
        kwargs["json"] = {}
    async with session.request(route.method, url + concrete(route.path), **kwargs) as response:
        return response.status, await response.text()


@pytest.mark.parametrize("credential", ["token", "session"])
async def test_every_route_for_every_role(make_farm: Any, tmp_path: Path, credential: str) -> None:
    async with running_daemon(make_farm, tmp_path) as live:
        tokens = {}
        for role in Role:
            await live.add_user(f"{role.value}-user", role.value, crew="north" if role is Role.MAINTENANCE else None)
            tokens[role] = await live.token(f"{role.value}-user")
        checked = 0
        async with aiohttp.ClientSession() as anonymous:
            for route in ROUTES:
                status, text = await _request(anonymous, live.url, route, {})
                if route.permission is Permission.PUBLIC:
                    assert status not in (401, 403), (route_id(route), status, text)
                    continue
                assert status == 401, (route_id(route), status, text)
                for role in Role:
                    if credential == "token":
                        status, text = await _request(anonymous, live.url, route, bearer(tokens[role]))
                    else:
                        async with browser() as session:
                            csrf = await sign_in(session, live.url, f"{role.value}-user")
                            status, text = await _request(session, live.url, route, {CSRF_HEADER: csrf})
                    where = (route_id(route), role.value, credential, status, text[:300])
                    if route.permission in GRANTS[role]:
                        assert status not in (401, 403) and status < 500, where
                    else:
                        assert status == 403 and "may not" in text, where
                    checked += 1
        assert checked == 4 * sum(1 for r in ROUTES if r.permission is not Permission.PUBLIC)


async def test_the_local_credential_is_an_admin_and_nothing_else_passes_for_it(make_farm: Any, tmp_path: Path) -> None:
    async with running_daemon(make_farm, tmp_path) as live, aiohttp.ClientSession() as session:
        async with session.get(f"{live.url}/api/v1/session", headers=bearer(LOCAL)) as response:
            me = await response.json()
        assert me["user"] == "local" and me["role"] == "admin" and me["via"] == "local" and me["csrf_token"] is None
        for wrong in (LOCAL + "x", LOCAL[:-1], "", "Bearer", "lct_" + LOCAL):
            async with session.get(f"{live.url}/api/v1/status", headers=bearer(wrong)) as response:
                assert response.status == 401, wrong
        for header in ({"Authorization": f"Basic {LOCAL}"}, {"Authorization": LOCAL}, {"X-Operator": "admin"}):
            async with session.get(f"{live.url}/api/v1/status", headers=header) as response:
                assert response.status == 401, header
