"""Typed application keys: the one list of what the app holds."""
from __future__ import annotations

from aiohttp import web

from service.config import Settings
from service.context import ServiceContext

SETTINGS = web.AppKey("settings", Settings)
CONTEXT = web.AppKey("context", ServiceContext)
