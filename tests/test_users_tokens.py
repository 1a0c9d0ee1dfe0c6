"""API tokens: shown once and stored as a digest, scoped to a role their user's covers (and never
more than the user has now), revoked, expired on the daemon's clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import StoreBackend
from tests.users_support import LOCAL, bearer, running_daemon

APPLY = "/api/v1/scenes/all-on/apply"


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with session.request(method, url, headers=bearer(token), json=body) as response:
        return response.status, await response.json()


async def test_token_scope_revocation_and_expiry(make_farm: Any, tmp_path: Path, backend: StoreBackend) -> None:
    async with running_daemon(make_farm, tmp_path, database=backend.target("users")) as live, aiohttp.ClientSession() as session:
        api = f"{live.url}/api/v1"
        await live.add_user("boss", "admin")
        await live.add_user("ops", "operator")

        # an admin's token scoped to viewer reads and changes nothing
        status, created = await _call(session, "POST", f"{api}/tokens", LOCAL, {"user": "boss", "label": "wall display", "role": "viewer"})
        assert status == 200 and created["token"].startswith("lct_") and created["role"] == "viewer"
        assert created["expires_at"] == "2028-01-15T16:00:00+08:00"  # access.token_days: 365
        display = created["token"]
        assert (await _call(session, "GET", f"{api}/status", display))[0] == 200
        status, answer = await _call(session, "POST", f"{live.url}{APPLY}", display, {})
        assert status == 403 and "boss (viewer, token #1) may not operate" in answer["error"]
        assert (await _call(session, "GET", f"{api}/users", display))[0] == 403

        # shown once: the list has no values, the records only a digest
        status, listed = await _call(session, "GET", f"{api}/tokens", LOCAL)
        assert [t["label"] for t in listed] == ["wall display"] and "token" not in listed[0]
        if backend.kind == "sqlite":
            db = (tmp_path / "users.db").read_bytes() + (tmp_path / "users.db-wal").read_bytes()
            assert display.encode() not in db
        else:  # every row of every table, as text
            store = live.daemon.store
            tables = await store.read("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            for table in tables:
                rows = await store.read(f"SELECT * FROM {table['table_name']}")
                assert display not in repr(rows), table

        # never more than the user's role
        status, answer = await _call(session, "POST", f"{api}/tokens", LOCAL, {"user": "ops", "label": "x", "role": "admin"})
        assert status == 400 and "more than their role (operator)" in answer["error"]
        status, created = await _call(session, "POST", f"{api}/tokens", LOCAL, {"user": "ops", "label": "script", "days": 2})
        script = created["token"]
        assert created["role"] == "operator"
        assert (await _call(session, "POST", f"{live.url}{APPLY}", script, {}))[0] == 200
        # the user demoted: the token keeps its scope but gets only what the user still has
        assert (await _call(session, "PATCH", f"{api}/users/ops", LOCAL, {"role": "viewer"}))[0] == 200
        assert (await _call(session, "POST", f"{live.url}{APPLY}", script, {}))[0] == 403
        assert (await _call(session, "PATCH", f"{api}/users/ops", LOCAL, {"role": "operator"}))[0] == 200
        assert (await _call(session, "POST", f"{live.url}{APPLY}", script, {}))[0] == 200

        # expiry on the daemon's clock
        live.clock.advance(2 * 86400 - 1)
        assert (await _call(session, "GET", f"{api}/status", script))[0] == 200
        live.clock.advance(1)
        status, answer = await _call(session, "GET", f"{api}/status", script)
        assert status == 401 and answer["error"] == "the API token #2 is expired"

        # revocation
        status, answer = await _call(session, "DELETE", f"{api}/tokens/1", LOCAL)
        assert status == 200 and answer == {"revoked": 1}
        status, answer = await _call(session, "GET", f"{api}/status", display)
        assert status == 401 and answer["error"] == "the API token #1 is revoked (by local)"
        assert (await _call(session, "DELETE", f"{api}/tokens/1", LOCAL))[0] == 400
        assert (await _call(session, "DELETE", f"{api}/tokens/99", LOCAL))[0] == 404
        status, answer = await _call(session, "GET", f"{api}/status", "lct_made-up")
        assert status == 401 and answer["error"] == "unknown API token"
        status, listed = await _call(session, "GET", f"{api}/tokens", LOCAL)
        assert listed[0]["revoked_by"] == "local" and listed[0]["last_used_at"] == "2027-01-15T16:00:00+08:00"
