"""Administration routes: reloading the config (more come with users and tokens)."""

from __future__ import annotations

from aiohttp import web

from lightctl.runtime.reload import ReloadRefused
from lightctl.services.access import Permission
from web.context import DAEMON, error
from web.routing import Route

RELOAD_REPORT = {
    "type": "object",
    "properties": {
        "controllers": {"type": "object", "properties": {
            "added": {"type": "array", "items": {"type": "string"}},
            "removed": {"type": "array", "items": {"type": "string"}},
            "changed": {"type": "array", "items": {"type": "string"}},
            "kept": {"type": "integer"}}},
        "scenes_changed": {"type": "boolean"},
        "schedule_changed": {"type": "boolean"},
        "needs_restart": {"type": "array", "items": {"type": "string"}},
        "command_id": {"type": ["integer", "null"]},
    },
}


async def reload_config(request: web.Request) -> web.Response:
    try:
        report = await request.app[DAEMON].reload_from_file()
    except ReloadRefused as exc:
        return error(409, str(exc))
    return web.json_response(report.as_json())


ROUTES = (
    Route("POST", "/api/v1/config/reload", reload_config, Permission.ADMINISTER,
          "Read the config file again, validate it, and take what changed (sessions to unchanged controllers are kept)",
          responses={"409": "refused: the file has problems, a show runs, or an override would no longer apply; the running config is kept"},
          response=RELOAD_REPORT),
)
