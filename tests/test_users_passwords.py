"""Passwords: Argon2id with its parameters in the hash, rehashed at sign-in when the configured
ones change; the policy; no password in any log, answer or record; the first start's admin."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lightctl.model.access import AccessSettings
from lightctl.process.service import start_daemon
from lightctl.services.access import local_caller
from lightctl.services.users.accounts import AccountError, Accounts
from lightctl.services.users.auth import Authenticator
from tests.conftest import installation_data, modbus_controller
from tests.users_support import LOCAL, PASSWORD, bearer, browser, running_daemon, sign_in
from web.app import bound_port
from web.context import CSRF_HEADER


async def test_argon2id_with_its_parameters_and_a_rehash_when_they_change(make_farm: Any, tmp_path: Path) -> None:
    async with running_daemon(make_farm, tmp_path) as live:
        await live.add_user("ops", "operator")
        stored = (await live.daemon.store.users.get("ops")).password_hash  # type: ignore[union-attr]
        assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        async with browser() as session:
            csrf = await sign_in(session, live.url, "ops")

            # the configured parameters change: the next sign-in replaces the hash, sessions stay
            stronger = AccessSettings(password_hash={"time_cost": 2, "memory_kib": 2048, "parallelism": 1})
            auth = Authenticator(Accounts(live.daemon.store, stronger, live.clock), local_secret=None)
            await auth.sign_in("ops", PASSWORD, "127.0.0.1")
            renewed = (await live.daemon.store.users.get("ops")).password_hash  # type: ignore[union-attr]
            assert renewed.startswith("$argon2id$v=19$m=2048,t=2,p=1$") and renewed != stored
            await auth.sign_in("ops", PASSWORD, "127.0.0.1")  # and the new hash checks
            assert (await live.daemon.store.users.get("ops")).password_hash == renewed  # type: ignore[union-attr]
            async with session.post(f"{live.url}/api/v1/scenes/all-on/apply", json={}, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 200


async def test_the_password_policy(make_farm: Any, tmp_path: Path) -> None:
    async with running_daemon(make_farm, tmp_path) as live:
        for password, why in (
            ("short-1", "too short: at least 12"), ("ops", "too short"), ("operatorops1", None),
            ("aaaaaaaaaaaaaaaa", "4 different characters"), ("            ", "not only spaces"), ("x" * 2000, "too long"),
        ):
            if why is None:
                await live.add_user("ops1", "operator", password=password)
                continue
            with pytest.raises(AccountError, match=why) as refused:
                await live.add_user("ops", "operator", password=password)
            assert password.strip() == "" or password not in str(refused.value)
        with pytest.raises(AccountError, match="must not be the user name"):
            await live.add_user("operator-night", "operator", password="Operator-Night")
        with pytest.raises(AccountError, match="reserved"):
            await live.add_user("local", "admin")
        with pytest.raises(AccountError, match="belongs to a crew"):
            await live.add_user("fixer", "maintenance")
        with pytest.raises(AccountError, match="only maintenance users belong to a crew"):
            await live.add_user("fixer", "operator", crew="north")
        await live.add_user("值班员", "maintenance", crew="north")
        with pytest.raises(AccountError, match="exists already"):
            await live.add_user("值班员", "viewer")
        with pytest.raises(AccountError, match="last enabled admin"):  # nobody would be left to run the users
            await live.add_user("root", "admin")
            await live.accounts.disable(local_caller(), "root")
            await live.accounts.update(local_caller(), "root", role="viewer")
        await live.add_user("root2", "admin")
        await live.accounts.disable(local_caller(), "root")  # another admin is left


async def test_no_password_in_any_log_answer_or_record(make_farm: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chosen, changed, wrong = "Chosen-Secret-Passphrase-1", "Changed-Secret-Passphrase-2", "Wrong-Secret-Passphrase-3"
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    async with running_daemon(make_farm, tmp_path) as live, aiohttp.ClientSession() as api:
        async def call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any) -> int:
            async with session.request(method, live.url + path, json=body, **kw) as response:
                answers.append(await response.text())
                answers.append(json.dumps(dict(response.headers)))
                return response.status

        admin = bearer(LOCAL)
        assert await call(api, "POST", "/api/v1/users", {"name": "ops", "role": "operator", "password": chosen}, headers=admin) == 200
        assert await call(api, "POST", "/api/v1/users", {"name": "ops2", "role": "operator", "password": chosen[:5]}, headers=admin) == 400
        assert await call(api, "POST", "/api/v1/session", {"user": "ops", "password": wrong}) == 401
        assert await call(api, "POST", "/api/v1/session", {"user": "nobody", "password": wrong}) == 401
        async with browser() as session:
            csrf = await sign_in(session, live.url, "ops", chosen)
            body = {"current_password": wrong, "new_password": changed}
            assert await call(session, "POST", "/api/v1/session/password", body, headers={CSRF_HEADER: csrf}) == 400
            body["current_password"] = chosen
            assert await call(session, "POST", "/api/v1/session/password", body, headers={CSRF_HEADER: csrf}) == 200
        assert await call(api, "GET", "/api/v1/audit", headers=admin) == 200
        assert await call(api, "GET", "/api/v1/users", headers=admin) == 200
        await live.daemon.store.flush()
        records = b"".join(p.read_bytes() for p in tmp_path.glob("users.db*"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ops" in logged and "signed in" in logged  # the log does say what happened
    for password in (chosen, changed, wrong):
        assert password not in logged
        assert all(password not in answer for answer in answers)
        assert password.encode() not in records
    audit = answers[-4]  # GET /api/v1/audit (each call keeps its body, then its headers)
    assert "(not recorded)" in audit and "current_password" in audit and "new_password" in audit


async def test_the_first_start_admin_password_works_once_printed(
    make_farm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = installation_data([modbus_controller("m0", 0)], api_port=0, database=str(tmp_path / "first.db"))
    _farm, config = await make_farm(data)
    daemon, runner = await start_daemon(config)
    try:
        printed = capsys.readouterr().out
        password = printed.split("created with the password\n\n    ", 1)[1].split("\n", 1)[0]
        kept = tmp_path / "admin-password"
        assert kept.read_text().strip() == password and stat.S_IMODE(kept.stat().st_mode) == 0o600
        credential = tmp_path / "local-credential"
        assert stat.S_IMODE(credential.stat().st_mode) == 0o600
        assert json.loads(credential.read_text())["url"] == f"http://127.0.0.1:{bound_port(runner)}"
        url = f"http://127.0.0.1:{bound_port(runner)}"
        async with browser() as session:
            csrf = await sign_in(session, url, "admin", password)
            async with session.get(f"{url}/api/v1/users") as response:
                assert [u["name"] for u in await response.json()] == ["admin"]
            body = {"current_password": password, "new_password": "the admin's own passphrase"}
            async with session.post(f"{url}/api/v1/session/password", json=body, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 200
        assert not kept.exists()  # it no longer works: the file is gone
    finally:
        await runner.cleanup()
        await daemon.stop()
    first_credential = credential.read_text()
    daemon, runner = await start_daemon(config)  # a second start: no new admin, a new local credential
    try:
        assert "password" not in capsys.readouterr().out and not kept.exists()
        assert credential.read_text() != first_credential
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{bound_port(runner)}"
            old = json.loads(first_credential)["secret"]
            async with session.get(f"{url}/api/v1/status", headers=bearer(old)) as response:
                assert response.status == 401  # the credential of the start before stopped working
            async with session.post(f"{url}/api/v1/session", json={"user": "admin", "password": password}) as response:
                assert response.status == 401
    finally:
        await runner.cleanup()
        await daemon.stop()
