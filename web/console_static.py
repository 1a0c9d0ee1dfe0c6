"""The console's built files (web/console/dist, made by ``make console``), served offline.

``index.html`` is never cached (a new build is seen at the next load); everything under
``assets/`` has a content hash in its name and is cached for a year. Files are read once and kept
in memory with their gzip form, made once (gzip -9 of the JavaScript is within a few per cent of
brotli, and needs no other package); a client that does not accept gzip gets the plain bytes. When the console has not been built, ``/`` says
how to build it and the plain status page stays at ``/status``.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from lightctl.services.access import Permission
from web.context import CSRF, HOST, caller_of
from web.routing import Route
from web.status_page import render_status_page

DIST = Path(__file__).resolve().parent / "console" / "dist"
"""Where ``make console`` puts the build (not committed)."""

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
COMPRESSIBLE = (".js", ".css", ".html", ".json", ".svg", ".map", ".txt")


@dataclass
class Served:
    body: bytes
    content_type: str
    etag: str
    encoded: dict[str, bytes] = field(default_factory=dict)


class ConsoleFiles:
    """The build's files by URL path, loaded on first use (a build made while the daemon runs is
    picked up: the cache is dropped when ``index.html`` changes)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, Served] = {}
        self._index_mtime: float | None = None

    def built(self) -> bool:
        return (self.root / "index.html").is_file()

    def get(self, relative: str) -> Served | None:
        index = self.root / "index.html"
        try:
            mtime = index.stat().st_mtime
        except FileNotFoundError:
            return None
        if mtime != self._index_mtime:
            self._cache.clear()
            self._index_mtime = mtime
        found = self._cache.get(relative)
        if found is not None:
            return found
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return None
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        served = Served(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        if path.suffix in COMPRESSIBLE and len(body) > 512:
            served.encoded["gzip"] = gzip.compress(body, compresslevel=9, mtime=0)
        self._cache[relative] = served
        return served


FILES = ConsoleFiles(DIST)


def respond(request: web.Request, served: Served, cache_control: str) -> web.Response:
    headers = {"Cache-Control": cache_control, "ETag": served.etag, "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == served.etag:
        return web.Response(status=304, headers=headers)
    accepted = {part.split(";")[0].strip() for part in request.headers.get("Accept-Encoding", "").split(",")}
    body = served.body
    if "gzip" in accepted and "gzip" in served.encoded:
        body = served.encoded["gzip"]
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = served.content_type
    return web.Response(body=body, headers=headers)


async def console_index(request: web.Request) -> web.Response:
    served = FILES.get("index.html")
    if served is None:
        return web.Response(
            status=503, content_type="text/html",
            text="<!doctype html><meta charset='utf-8'><title>lightctl</title>"
                 "<p>控制台尚未构建 The console has not been built: run <code>make console</code>. "
                 "<a href='/status'>状态页 status page</a></p>",
        )
    return respond(request, served, NO_CACHE)


async def console_asset(request: web.Request) -> web.Response:
    served = FILES.get("assets/" + request.match_info["name"])
    if served is None:
        raise web.HTTPNotFound()
    return respond(request, served, IMMUTABLE)


async def status_page(request: web.Request) -> web.Response:
    host = request.app[HOST]
    page = render_status_page(host.status(), host.metrics(), caller_of(request).describe(), request.get(CSRF))
    return web.Response(text=page, content_type="text/html")


ROUTES = (
    Route("GET", "/", console_index, Permission.PUBLIC, "The operators' console (a single-page app)", content_type="text/html"),
    Route("GET", "/assets/{name}", console_asset, Permission.PUBLIC, "The console's files (hashed names, cached a year)",
          content_type="application/octet-stream"),
    Route("GET", "/status", status_page, Permission.READ, "A plain status page without script", content_type="text/html"),
)
