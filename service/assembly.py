"""Assembles a process's ServiceContext: key vault, the shared HTTP client, Redis, limits and events.

The API and the worker both build theirs here, so they share one set of collaborators and one
place that opens and closes them.
"""
from __future__ import annotations

from service.config import Settings
from service.context import ServiceContext
from service.egress import EgressClient
from service.events import EventListener
from service.job_events import JobEvents
from service.rate_limit import CheckRateLimiter
from service.resolve import ActiveProviderCache


def _redis_client(settings: Settings):
    url = settings.effective_redis_url
    if not url:
        return None
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)


async def open_context(settings: Settings, **extras) -> ServiceContext:
    ctx = ServiceContext.from_settings(settings, http=EgressClient(settings), redis=_redis_client(settings))
    calls, window = settings.rate_limit
    ctx.extras["rate_limiter"] = CheckRateLimiter(calls, window, ctx.redis)
    listener = EventListener(ctx.redis)
    ctx.extras["events"] = listener
    ctx.extras["job_events"] = JobEvents(listener)
    ctx.extras["active_cache"] = ActiveProviderCache(listener)
    ctx.extras.update(extras)
    return ctx


async def close_context(ctx: ServiceContext) -> None:
    await ctx.extras["events"].close()
    await ctx.http.close()
    if ctx.redis is not None:
        await ctx.redis.aclose()

