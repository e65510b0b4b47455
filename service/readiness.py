"""Readiness: the database and the broker answer. Worker and scheduler liveness is reported, never fatal."""
from __future__ import annotations

import asyncio
import os

from service.context import ServiceContext
from service.db import ping_database
from service.liveness import liveness_report

PROBE_TIMEOUT = 2.0


async def readiness(ctx: ServiceContext) -> dict:
    checks = {"database": await _probe(ping_database()), "broker": await _probe(_ping_broker(ctx))}
    ready = all(value == "ok" for value in checks.values())
    report = {"status": "ready" if ready else "not_ready", "checks": checks}
    if checks["database"] == "ok":
        try:  # reported, never a reason to be unready
            report["components"] = await asyncio.wait_for(liveness_report(), PROBE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            report["components"] = {"error": type(exc).__name__}
    return report


async def _probe(awaitable) -> str:
    try:
        await asyncio.wait_for(awaitable, PROBE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type name is enough
        return f"failing: {type(exc).__name__}"
    return "ok"


async def _ping_broker(ctx: ServiceContext) -> None:
    settings = ctx.settings
    if settings.uses_embedded_broker:
        folder = settings.broker_folder
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise FileNotFoundError("embedded broker folder missing")
        return
    if ctx.redis is None:
        raise ConnectionError("no broker client")
    await ctx.redis.ping()
