"""The aiohttp application factory: every resource opened and closed in a cleanup context."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from api.errors import error_middleware
from api.keys import CONTEXT, SETTINGS
from api.routes import discovery, internal, jobs, ops, providers, system, ui
from service.assembly import close_context, open_context
from service.config import Settings
from service.db import close_database, open_database

MAX_BODY_BYTES = 64 * 1024
Enqueue = Callable[[str], Awaitable[None]]


def create_app(settings: Settings, *, manage_database: bool = True, enqueue: Enqueue | None = None) -> web.Application:
    """Build the API. `manage_database=False` leaves Tortoise to a caller that already opened it;
    `enqueue` replaces the Celery producer (a test can pass one that drops jobs, to see 202s)."""
    settings.validate_for_startup()
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    if manage_database:
        app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_service_context(enqueue))
    app.add_routes(system.routes)
    app.add_routes(providers.routes)
    app.add_routes(jobs.routes)
    app.add_routes(internal.routes)
    app.add_routes(ops.routes)
    app.add_routes(discovery.routes)
    app.add_routes(ui.routes)
    return app


async def _database(app: web.Application):
    await open_database(app[SETTINGS])
    yield
    await close_database()


def _service_context(enqueue: Enqueue | None):
    async def context(app: web.Application):
        producer = None
        if enqueue is None:
            from tasks.producer import JobProducer

            producer = JobProducer(app[SETTINGS])
        ctx = await open_context(app[SETTINGS], enqueue=enqueue or producer.enqueue)
        await ctx.extras["events"].start()
        app[CONTEXT] = ctx
        yield
        await close_context(ctx)
        if producer is not None:
            producer.close()

    return context
