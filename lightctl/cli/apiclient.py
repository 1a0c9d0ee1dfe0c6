"""The CLI's client of a running daemon's API (aiohttp, with a timeout on every request)."""

from __future__ import annotations

import getpass
from typing import Any

import aiohttp

from lightctl.cli.common import ApiError
from lightctl.model.installation import DaemonSettings
from lightctl.runtime.credentials import token_path

REQUEST_TIMEOUT_S = 60.0


def base_url(settings: DaemonSettings, override: str | None) -> str:
    return (override or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")


def read_token(settings: DaemonSettings) -> str | None:
    path = token_path(settings.database)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


async def call(settings: DaemonSettings, method: str, path: str, *, api: str | None = None, json: Any = None) -> Any:
    headers = {"X-Operator": f"cli:{getpass.getuser()}"}
    token = read_token(settings)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = base_url(settings, api) + path
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session,
            session.request(method, url, json=json, headers=headers) as response,
        ):
            data = await response.json(content_type=None)
            if response.status >= 400:
                message = data.get("error") if isinstance(data, dict) else None
                raise ApiError(message or f"HTTP {response.status}", response.status)
            return data
    except aiohttp.ClientConnectionError as exc:
        raise ApiError(f"cannot reach the daemon at {base_url(settings, api)}: {exc}") from None
    except TimeoutError:
        raise ApiError(f"the daemon at {base_url(settings, api)} did not answer in {REQUEST_TIMEOUT_S:g} s") from None
