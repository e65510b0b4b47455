"""The periodic health sweep of every org's active provider.

`plan_health_sweep` runs once per interval (a database claim keeps a second scheduler from doubling it)
and fans the active providers out in chunks, as separate tasks, so several workers share a large fleet.
`check_chunk` checks one chunk concurrently on the worker's event loop with each kind's cheap probe
(a model-metadata request costs the customer nothing) and feeds the outcomes to `service.health`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from models.providers import ActiveProvider, ProviderRecord
from service.checks import run_check
from service.context import ServiceContext
from service.errors import CredentialsUnavailable
from service.health import record_health
from service.liveness import claim_interval
from service.metrics import record_check
from service.records import target_of

log = logging.getLogger("llmp.health")
CHUNK_SIZE = 500
PAGE_SIZE = 5000
CONCURRENCY_PER_CHUNK = 500


async def plan_health_sweep(ctx: ServiceContext, enqueue_chunk: Callable[[list[str]], Awaitable[None]]) -> int:
    """Enqueue chunk tasks covering every active provider; 0 when this interval was already swept."""
    if not await claim_interval("health_sweep", ctx.settings.health_interval):
        log.info("health sweep skipped: already claimed for this interval")
        return 0
    total, last = 0, None
    while True:  # keyset pages keep memory flat however large the fleet
        query = ActiveProvider.all().order_by("provider_id").limit(PAGE_SIZE)
        if last is not None:
            query = query.filter(provider_id__gt=last)
        page = await query.values_list("provider_id", flat=True)
        if not page:
            break
        last = page[-1]
        for start in range(0, len(page), CHUNK_SIZE):
            await enqueue_chunk([str(pid) for pid in page[start:start + CHUNK_SIZE]])
        total += len(page)
    log.info("health sweep planned for %d active providers", total)
    return total


async def check_chunk(ctx: ServiceContext, provider_ids: list[str]) -> int:
    """Probe each still-active provider of the chunk; returns how many were checked."""
    active = set(await ActiveProvider.filter(provider_id__in=provider_ids).values_list("provider_id", flat=True))
    records = await ProviderRecord.filter(id__in=list(active))
    limit = asyncio.Semaphore(CONCURRENCY_PER_CHUNK)
    await asyncio.gather(*(_probe_one(ctx, record, limit) for record in records))
    return len(records)


async def _probe_one(ctx: ServiceContext, record: ProviderRecord, limit: asyncio.Semaphore) -> None:
    async with limit:
        try:
            target = target_of(ctx, record)
        except CredentialsUnavailable as exc:
            await record_health(ctx, record.id, False, {"code": "credentials_unavailable", "message": exc.message,
                                                        "provider_status": None, "provider_request_id": None})
            return
        started = time.monotonic()
        result = await run_check(target, ctx.http, ctx.settings, probe=True)
        await record_check(ctx.redis, record.kind, "ok" if result.ok else result.error.code,
                           time.monotonic() - started, "health")
        error = result.as_dict().get("error")
        await record_health(ctx, record.id, result.ok, error, result.checked_at)
