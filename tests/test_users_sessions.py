"""Sessions: the cookie's flags, the CSRF token on every change, idle and absolute timeouts with
the daemon's clock frozen, and every way a session ends (sign-out, revocation, a new password,
a disabled user), a WebSocket included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import StoreBackend
from tests.users_support import LOCAL, PASSWORD, bearer, browser, running_daemon, sign_in
from web.context import CSRF_HEADER, SESSION_COOKIE

APPLY = "/api/v1/scenes/all-on/apply"


async def _status(session: aiohttp.ClientSession, url: str, method: str = "GET", path: str = "/api/v1/status", **kw: Any) -> int:
    async with session.request(method, url + path, **kw) as response:
        await response.read()
        return response.status


async def test_the_cookie_and_the_csrf_token(make_farm: Any, tmp_path: Path) -> None:
    async with running_daemon(make_farm, tmp_path) as live, browser() as session:
        await live.add_user("duty", "operator")
        async with session.post(f"{live.url}/api/v1/session", json={"user": "duty", "password": PASSWORD}) as response:
            answer = await response.json()
            cookie = response.cookies[SESSION_COOKIE]
        assert answer["user"] == "duty" and answer["role"] == "operator" and answer["via"] == "session"
        assert answer["csrf_header"] == CSRF_HEADER and len(answer["csrf_token"]) >= 32
        assert answer["expires_at"] == "2027-01-16T04:00:00+08:00" and answer["idle_timeout_s"] == 3600
        assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert not cookie["secure"] and cookie["max-age"] == str(12 * 3600)  # Secure over HTTPS: test_users_tls.py
        csrf = answer["csrf_token"]
        async with session.get(f"{live.url}/api/v1/session") as response:
            assert (await response.json())["csrf_token"] == csrf  # the console, reloaded, gets it again

        # a change with the session's cookie needs its CSRF token; reads do not
        assert await _status(session, live.url) == 200
        assert await _status(session, live.url, "POST", APPLY, json={}) == 403
        assert await _status(session, live.url, "POST", APPLY, json={}, headers={CSRF_HEADER: csrf[:-1]}) == 403
        async with session.post(f"{live.url}{APPLY}", json={}, headers={CSRF_HEADER: csrf}) as response:
            assert response.status == 200 and (await response.json())["summary"]["confirmed"] == 1
        command = (await live.daemon.store.commands.recent(1))[0]
        assert (command.user, command.scene) == ("duty", "all-on")
        # a token needs no CSRF token (nothing a browser sends by itself), and a cookie beside it is ignored
        token = await live.token("duty")
        assert await _status(session, live.url, "POST", APPLY, json={}, headers=bearer(token)) == 200
        refused = [r.entry for r in await live.daemon.store.audit.query(user="duty") if r.entry.status == 403]
        assert len(refused) == 2 and all("CSRF" in (e.error or "") and e.via == "session" for e in refused)

        # signing in from another site's page is refused (login CSRF)
        async with aiohttp.ClientSession() as other:
            origin = {"Origin": "https://evil.example"}
            async with other.post(f"{live.url}/api/v1/session", json={"user": "duty", "password": PASSWORD}, headers=origin) as response:
                assert response.status == 403 and SESSION_COOKIE not in response.cookies


async def test_idle_and_absolute_timeouts_on_the_frozen_clock(make_farm: Any, tmp_path: Path) -> None:
    async with running_daemon(make_farm, tmp_path, access={"session_idle_minutes": 60, "session_absolute_hours": 3}) as live:
        await live.add_user("viewer", "viewer")
        async with browser() as session:
            await sign_in(session, live.url, "viewer")
            for _ in range(3):  # used every 59 minutes: the idle timeout never comes
                live.clock.advance(59 * 60)
                assert await _status(session, live.url) == 200
            live.clock.advance(3 * 60)  # 3 h 0 min after signing in: the absolute timeout
            async with session.get(f"{live.url}/api/v1/status") as response:
                assert response.status == 401
                assert "signed in more than 3 h ago" in (await response.json())["error"]
                assert response.cookies[SESSION_COOKIE].value == ""  # the browser is told to forget it
        async with browser() as session:
            await sign_in(session, live.url, "viewer")
            live.clock.advance(59 * 60 + 59)
            assert await _status(session, live.url) == 200
            live.clock.advance(60 * 60)  # unused for an hour
            async with session.get(f"{live.url}/api/v1/status") as response:
                assert response.status == 401 and "unused for 60 min" in (await response.json())["error"]
        ended = await live.daemon.store.read("SELECT ended_why FROM sessions ORDER BY id")
        assert [r["ended_why"] for r in ended] == ["signed in more than 3 h ago", "unused for 60 min"]


async def test_every_way_a_session_ends(make_farm: Any, tmp_path: Path, backend: StoreBackend) -> None:
    async with running_daemon(make_farm, tmp_path, database=backend.target("users")) as live:
        await live.add_user("ops", "operator")
        admin = bearer(LOCAL)
        async with browser() as one, browser() as two, browser() as three, aiohttp.ClientSession() as api:
            csrf = await sign_in(one, live.url, "ops")
            await sign_in(two, live.url, "ops")
            await sign_in(three, live.url, "ops")
            token = await live.token("ops")

            # sign-out ends that session only
            async with one.delete(f"{live.url}/api/v1/session", headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 200 and response.cookies[SESSION_COOKIE].value == ""
            assert await _status(one, live.url) == 401 and await _status(two, live.url) == 200

            # an administrator revokes one
            async with api.get(f"{live.url}/api/v1/sessions", headers=admin) as response:
                sessions = await response.json()
            assert [s["user"] for s in sessions] == ["ops", "ops"] and "csrf_token" not in sessions[0]
            async with api.delete(f"{live.url}/api/v1/sessions/{sessions[0]['id']}", headers=admin) as response:
                assert response.status == 200
            assert await _status(three, live.url) == 401 and await _status(two, live.url) == 200

            # a new password ends every session of the user; their token goes on
            csrf = await sign_in(three, live.url, "ops")
            async with api.post(f"{live.url}/api/v1/users/ops/password", headers=admin, json={}) as response:
                answer = await response.json()
            assert answer["sessions_ended"] == 2 and len(answer["password"]) == 24
            assert await _status(two, live.url) == 401 and await _status(three, live.url) == 401
            assert await _status(api, live.url, headers=bearer(token)) == 200
            new_password = answer["password"]

            # the user's own change needs the current password, and ends their sessions too
            csrf = await sign_in(one, live.url, "ops", new_password)
            await sign_in(two, live.url, "ops", new_password)
            change = {"current_password": PASSWORD, "new_password": "another long passphrase"}
            async with one.post(f"{live.url}/api/v1/session/password", json=change, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 400 and "current password is wrong" in (await response.json())["error"]
            change["current_password"] = new_password
            async with one.post(f"{live.url}/api/v1/session/password", json=change, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 200 and (await response.json())["sessions_ended"] == 2
            assert await _status(one, live.url) == 401 and await _status(two, live.url) == 401
            await sign_in(one, live.url, "ops", "another long passphrase")

            # a role changed takes effect at the next request, for sessions and tokens alike
            async with api.patch(f"{live.url}/api/v1/users/ops", headers=admin, json={"role": "viewer"}) as response:
                assert response.status == 200
            async with one.get(f"{live.url}/api/v1/session") as response:
                csrf = (await response.json())["csrf_token"]
            assert await _status(one, live.url, "POST", APPLY, json={}, headers={CSRF_HEADER: csrf}) == 403
            assert await _status(api, live.url, "POST", APPLY, json={}, headers=bearer(token)) == 403

            # disabling a user ends their sessions and revokes their tokens, for good
            async with api.post(f"{live.url}/api/v1/users/ops/disable", headers=admin) as response:
                assert (await response.json()) == {"user": "ops", "disabled": True, "sessions_ended": 1, "tokens_revoked": 1}
            assert await _status(one, live.url) == 401 and await _status(api, live.url, headers=bearer(token)) == 401
            async with api.post(f"{live.url}/api/v1/session", json={"user": "ops", "password": "another long passphrase"}) as response:
                assert response.status == 401  # a disabled user cannot sign in (and is not told why)
            async with api.post(f"{live.url}/api/v1/users/ops/enable", headers=admin) as response:
                assert response.status == 200
            await sign_in(one, live.url, "ops", "another long passphrase")
            assert await _status(api, live.url, headers=bearer(token)) == 401  # revoked stays revoked


async def test_a_websocket_closes_when_its_session_ends(make_farm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.events

    monkeypatch.setattr(web.events, "WEBSOCKET_RECHECK_S", 0.05)
    async with running_daemon(make_farm, tmp_path) as live, browser() as session:
        await live.add_user("wall", "viewer")
        csrf = await sign_in(session, live.url, "wall")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # another site's page
            await session.ws_connect(f"{live.url}/api/v1/ws", headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        ws = await session.ws_connect(f"{live.url}/api/v1/ws", headers={"Origin": live.url})
        assert (await ws.receive_json(timeout=5))[0]["type"] == "hello"  # frames are arrays of events
        async with session.delete(f"{live.url}/api/v1/session", headers={CSRF_HEADER: csrf}) as response:
            assert response.status == 200
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        await ws.close()
