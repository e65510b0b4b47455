"""The aiohttp application factory: every resource opened and closed in a cleanup context."""
from __future__ import annotations

import logging

from aiohttp import web

from api.errors import error_middleware
from api.keys import CONTEXT, SETTINGS
from api.routes import providers, system
from service.config import Settings
from service.context import ServiceContext
from service.db import close_database, open_database

MAX_BODY_BYTES = 64 * 1024
log = logging.getLogger("llmp.api")


def create_app(settings: Settings, *, context: ServiceContext | None = None, manage_database: bool = True) -> web.Application:
    """Build the API. `context` lets tests pass in pre-assembled collaborators; `manage_database=False`
    leaves Tortoise to a caller that already opened it."""
    settings.validate_for_startup()
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CONTEXT] = context or ServiceContext.from_settings(settings)
    if manage_database:
        app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_egress)
    app.add_routes(system.routes)
    app.add_routes(providers.routes)
    return app


async def _database(app: web.Application):
    await open_database(app[SETTINGS])
    yield
    await close_database()


async def _redis(app: web.Application):
    ctx = app[CONTEXT]
    url = app[SETTINGS].effective_redis_url
    owned = False
    if ctx.redis is None and url:
        import redis.asyncio as aioredis

        ctx.redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        owned = True
    yield
    if owned:
        await ctx.redis.aclose()


async def _egress(app: web.Application):
    ctx = app[CONTEXT]
    owned = False
    if ctx.http is None:
        from service.egress import EgressClient

        ctx.http = EgressClient(app[SETTINGS])
        owned = True
    yield
    if owned:
        await ctx.http.close()
