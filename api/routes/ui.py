"""The admin page (Settings → AI → LLM Providers): static files from `api/ui`, no build step.

Only the files that ship in that folder are served, with their content type and a strict Content
Security Policy: the page loads nothing but its own files and talks only to this API. The bearer token
travels in the URL fragment at most (never sent to a server) and lives in session storage.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

routes = web.RouteTableDef()


def _shipped_files() -> dict[str, Path]:
    return {p.name: p for p in UI_DIR.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}


@routes.get("/ui")
async def ui_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/ui/")


@routes.get("/ui/")
async def ui_index(request: web.Request) -> web.Response:
    return _file("index.html")


@routes.get("/ui/{name}")
async def ui_file(request: web.Request) -> web.Response:
    return _file(request.match_info["name"])


def _file(name: str) -> web.Response:
    path = _shipped_files().get(name)
    if path is None:
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=CONTENT_TYPES[path.suffix], charset="utf-8",
                        headers=SECURITY_HEADERS)
