"""The audit: every request that changes state, accepted or refused, with who, from where, what
and the result; reads are not in it; nothing can change or delete a row of it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import aiohttp

from lightctl.store.audit import AuditLog
from tests.conftest import ROOT, StoreBackend
from tests.users_support import LOCAL, bearer, browser, running_daemon, sign_in
from web.app import ROUTE_MODULES
from web.context import CSRF_HEADER


async def test_every_change_accepted_or_refused_is_audited(make_farm: Any, tmp_path: Path, backend: StoreBackend) -> None:
    async with running_daemon(make_farm, tmp_path, database=backend.target("users")) as live, aiohttp.ClientSession() as anonymous:
        await live.add_user("ops", "operator")
        await live.add_user("view", "viewer")
        viewer = await live.token("view")
        api = f"{live.url}/api/v1"
        async with anonymous.post(f"{api}/scenes/all-on/apply", json={"target": "*"}) as response:
            assert response.status == 401
        async with anonymous.post(f"{api}/scenes/all-on/apply", json={}, headers=bearer(viewer)) as response:
            assert response.status == 403
        async with anonymous.post(f"{api}/session", json={"user": "ops", "password": "not it at all"}) as response:
            assert response.status == 401
        async with browser() as session:
            csrf = await sign_in(session, live.url, "ops")
            live.clock.advance(60)
            async with session.post(f"{api}/scenes/half/apply", json={"target": "*", "until": "none"}, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 200
            async with session.post(f"{api}/curtailments", json={"level": "x"}, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 400
        async with anonymous.post(f"{api}/no/such/route", json={}, headers=bearer(LOCAL)) as response:
            assert response.status == 404
        for path in ("/status", "/users", "/audit"):  # reads are not audited
            async with anonymous.get(f"{api}{path}", headers=bearer(LOCAL)) as response:
                assert response.status == 200

        rows = [r.entry for r in reversed(await live.daemon.store.audit.query())]
        seen = [(e.user_name, e.role, e.via, e.method, e.path, e.status, e.result) for e in rows]
        assert seen == [
            (None, None, "none", "POST", "/api/v1/scenes/all-on/apply", 401, "refused"),
            ("view", "viewer", "token", "POST", "/api/v1/scenes/all-on/apply", 403, "refused"),
            ("ops", None, "none", "POST", "/api/v1/session", 401, "refused"),
            ("ops", "operator", "session", "POST", "/api/v1/session", 200, "accepted"),
            ("ops", "operator", "session", "POST", "/api/v1/scenes/half/apply", 200, "accepted"),
            ("ops", "operator", "session", "POST", "/api/v1/curtailments", 400, "refused"),
            (None, None, "none", "POST", "/api/v1/no/such/route", 404, "refused"),  # no route: nobody was asked who
        ]
        assert all(e.address == "127.0.0.1" for e in rows)
        assert rows[0].detail == '{"target": "*"}' and rows[0].error and "sign in first" in rows[0].error
        assert "may not operate" in (rows[1].error or "")
        assert rows[2].detail == '{"password": "(not recorded)", "user": "ops"}' and rows[2].error == "wrong user name or password"
        assert rows[4].detail == '{"target": "*", "until": "none"}' and rows[4].at == rows[3].at + 60_000
        assert rows[5].error == "'target' (a selector) is required for a curtailment"

        # the API's filters (times in the installation's zone)
        async with anonymous.get(f"{api}/audit", params={"user": "ops", "from": "2027-01-15T16:01:00"}, headers=bearer(LOCAL)) as response:
            found = await response.json()
        assert [r["path"] for r in found] == ["/api/v1/curtailments", "/api/v1/scenes/half/apply"]
        assert found[0]["at"] == "2027-01-15T16:01:00.000+08:00" and found[0]["user"] == "ops"
        async with anonymous.get(f"{api}/audit", params={"to": "2027-01-15T16:01:00+08:00", "limit": "2"}, headers=bearer(LOCAL)) as response:
            assert [r["status"] for r in await response.json()] == [200, 401]
        async with anonymous.get(f"{api}/audit", params={"from": "yesterday"}, headers=bearer(LOCAL)) as response:
            assert response.status == 400


def test_nothing_changes_or_deletes_the_audit() -> None:
    routes = [r for module in ROUTE_MODULES for r in module.ROUTES if "/audit" in r.path]
    assert [(r.method, r.path) for r in routes] == [("GET", "/api/v1/audit")]
    methods = {name for name, _ in inspect.getmembers(AuditLog, inspect.isfunction) if not name.startswith("_")}
    assert methods == {"record", "begin", "finish", "query"}  # each adds a row; none changes or deletes one
    writes = re.compile(r"(UPDATE\s+audit\b|DELETE\s+FROM\s+audit\b|DROP\s+TABLE\s+audit\b)", re.IGNORECASE)
    for folder in ("lightctl", "web"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".sql"):
                assert not writes.search(path.read_text(encoding="utf-8")), path
