"""The CLI with users: on the daemon's machine as the local caller (the records directly, or the
API with the local credential), and from elsewhere with --url and --token."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from tests.conftest import free_port, installation_data, modbus_controller, with_endpoints
from web.app import bound_port


async def lightctl(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lightctl", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(None if stdin is None else stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_users_and_tokens_from_the_cli(make_farm: Any, tmp_path: Path) -> None:
    data = installation_data([modbus_controller("m0", 0)], api_port=free_port(), database=str(tmp_path / "cli.db"))
    farm, _ = await make_farm(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(config_path))
    base = ("--config", str(config_path))
    url = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        # on the daemon's machine, as its OS user: the records directly, no password
        code, out, err = await lightctl(*base, "user", "add", "ops", "--role", "operator", "--json")
        assert code == 0, err
        added = json.loads(out)
        assert added["user"]["role"] == "operator" and len(added["password"]) == 24
        code, out, err = await lightctl(*base, "user", "add", "view", "--role", "viewer", "--password-stdin", stdin="a viewer's passphrase\n")
        assert code == 0 and "password" not in out, (out, err)
        code, out, err = await lightctl(*base, "user", "add", "fixer", "--role", "maintenance")
        assert code == 1 and "belongs to a crew" in err
        code, out, _ = await lightctl(*base, "user", "list")
        assert [line.split()[:2] for line in out.splitlines()] == [["admin", "admin"], ["ops", "operator"], ["view", "viewer"]]
        code, out, err = await lightctl(*base, "token", "create", "--user", "ops", "--label", "night script", "--json")
        assert code == 0, err
        ops_token = json.loads(out)["token"]
        code, out, _ = await lightctl(*base, "token", "create", "--user", "view", "--label", "display", "--no-expiry")
        view_token = out.strip().splitlines()[-1]
        assert code == 0 and view_token.startswith("lct_") and "expires never" in out

        # from elsewhere: --url and --token (or LIGHTCTL_TOKEN); the local credential is not sent there
        remote = ("--config", str(config_path), "--url", url.replace("127.0.0.1", "localhost"))
        code, out, err = await lightctl(*remote, "status")
        assert code == 1 and "sign in first" in err and "--token" in err
        code, out, err = await lightctl(*remote, "--token", ops_token, "scene", "apply", "all-on", "--json")
        assert code == 0 and json.loads(out)["summary"]["confirmed"] == 1, err
        code, out, err = await lightctl(*remote, "scene", "apply", "all-off", env={"LIGHTCTL_TOKEN": view_token})
        assert code == 1 and "view (viewer, token #2) may not operate" in err
        code, out, err = await lightctl(*remote, "--token", ops_token, "user", "add", "x", "--role", "viewer")
        assert code == 1 and "may not administer" in err
        code, out, err = await lightctl(*remote, "--token", view_token, "status", "--json")
        assert code == 0 and json.loads(out)["controllers_total"] == 1
        assert (await daemon.store.commands.recent(1))[0].user == "ops"

        # the local records again: a new password (its sessions end), a token revoked, a user disabled
        code, out, err = await lightctl(*base, "user", "passwd", "ops", "--password-stdin", stdin="ops's new passphrase\n")
        assert code == 0 and "password of ops set; 0 session(s) ended" in out, err
        code, out, _ = await lightctl(*base, "token", "revoke", "2")
        assert code == 0 and "API token #2 revoked" in out
        code, out, err = await lightctl(*remote, "--token", view_token, "status")
        assert code == 1 and "revoked (by local)" in err
        code, out, _ = await lightctl(*base, "user", "disable", "ops")
        assert code == 0 and "1 token(s) revoked" in out
        code, out, err = await lightctl(*remote, "--token", ops_token, "status")
        assert code == 1 and "revoked" in err

        # the audit, through the API with the local credential
        code, out, err = await lightctl(*base, "audit", "--json")
        rows = json.loads(out)
        assert code == 0, err
        local = [(r["path"], r["result"]) for r in reversed(rows) if r["via"] == "local"]
        assert local == [
            ("lightctl user add", "accepted"), ("lightctl user add", "accepted"), ("lightctl user add", "refused"),
            ("lightctl token create", "accepted"), ("lightctl token create", "accepted"),
            ("lightctl user passwd", "accepted"), ("lightctl token revoke", "accepted"), ("lightctl user disable", "accepted"),
        ]
        assert all("passphrase" not in (r["detail"] or "") for r in rows)
        code, out, _ = await lightctl(*base, "audit", "--user", "view")
        assert code == 0 and "may not operate" in out and "POST /api/v1/scenes/all-off/apply  refused 403" in out
        code, out, _ = await lightctl(*base, "audit", "--user", "ops", "--json")
        assert [r["path"] for r in json.loads(out)] == ["/api/v1/users", "/api/v1/scenes/all-on/apply"]
        code, out, _ = await lightctl(*base, "audit", "--from", "2999-01-01")
        assert code == 0 and out.strip() == "none"

        # the local credential readable by others is refused, for the records and the API alike
        credential = tmp_path / "local-credential"
        credential.chmod(0o644)
        code, out, err = await lightctl(*base, "user", "list")
        assert code == 1 and "readable by others" in err
        code, out, err = await lightctl(*base, "status")
        assert code == 1 and "readable by others" in err
        credential.chmod(0o600)
        code, out, err = await lightctl(*base, "status")
        assert code == 0, err
    finally:
        await runner.cleanup()
        await daemon.stop()
    code, out, err = await lightctl(*base, "user", "enable", "ops")  # the daemon stopped: the records still
    assert code == 0 and "user ops enabled" in out, err
