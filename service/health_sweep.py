"""The periodic health sweep of every org's active provider.

`plan_health_sweep` runs once per interval (a database claim keeps a second scheduler from doubling it)
and fans the active providers out in chunks, as separate tasks, so several workers share a large fleet.
`check_chunk` checks one chunk concurrently on the worker's event loop with each kind's cheap probe
(a model-metadata request costs the customer nothing) and feeds the outcomes to `service.health`.

Within one worker process every chunk shares one limit of `SWEEP_CONCURRENCY` probes in flight, however
many chunk tasks its threads run at once. Passed checks (the common case) are written in batches, one
UPDATE per `WRITE_BATCH` records; a failed check goes through `record_health` on its own (its hysteresis
and alert need the record's current count). A record checked less than `RECHECK_AFTER` intervals ago is
skipped, so a redelivered or duplicated chunk costs one query.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from tortoise.expressions import Q

from models.providers import ActiveProvider, ProviderRecord
from service.checks import run_check
from service.context import ServiceContext
from service.errors import CredentialsUnavailable
from service.health import Success, record_health, record_successes
from service.liveness import claim_interval
from service.metrics import record_checks
from service.records import target_of

log = logging.getLogger("llmp.health")
CHUNK_SIZE = 500
PAGE_SIZE = 5000
SWEEP_CONCURRENCY = 500  # probes in flight per worker process, across all its chunks
WRITE_BATCH = 250
RECHECK_AFTER = 0.25  # of the interval
_FIELDS = ("id", "org", "kind", "name", "model", "endpoint", "api_version", "key_ciphertext", "health_status")


def sweep_concurrency(settings) -> int:
    """Probes one worker process runs at once during a sweep."""
    return SWEEP_CONCURRENCY


async def plan_health_sweep(ctx: ServiceContext, enqueue_chunk: Callable[[list[str]], Awaitable[None]],
                            pending_chunks: Callable[[], Awaitable[int]] | None = None) -> int:
    """Enqueue chunk tasks covering every active provider; 0 when this interval was already swept, or when
    the previous sweep's chunks still wait in the broker (a fleet too large for its workers then gets one
    sweep after another instead of a queue that grows without end)."""
    if not await claim_interval("health_sweep", ctx.settings.health_interval):
        log.info("health sweep skipped: already claimed for this interval")
        return 0
    backlog = await pending_chunks() if pending_chunks is not None else 0
    if backlog:
        log.warning("health sweep skipped: %d chunks of the previous sweep still wait for a worker; the "
                    "sweep takes longer than LLMP_HEALTH_INTERVAL, add workers or raise the interval", backlog)
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


@dataclass(slots=True)
class _Row:
    """What a probe needs of a record (a plain row: lighter and faster than a model instance)."""

    id: uuid.UUID
    org: str
    kind: str
    name: str
    model: str
    endpoint: str | None
    api_version: str | None
    key_ciphertext: str
    health_status: str


class _Outcomes:
    """Collects a chunk's outcomes; `take` hands over a batch to write (synchronously, so no outcome is
    written twice however many probes finish together)."""

    def __init__(self) -> None:
        self.successes: list[Success] = []
        self.last_success_at: datetime | None = None
        self.failures: list[tuple[_Row, dict, datetime]] = []
        self.metrics: list[tuple[str, str, float, str]] = []

    def add(self, row: _Row, ok: bool, error: dict | None, checked_at: datetime,
            metric: tuple[str, str, float, str] | None) -> None:
        if metric is not None:
            self.metrics.append(metric)
        if ok:
            self.successes.append(Success(row.id, row.org, row.health_status))
            self.last_success_at = max(self.last_success_at or checked_at, checked_at)
        else:
            self.failures.append((row, error or {}, checked_at))

    def take(self, force: bool = False) -> _Outcomes | None:
        if not force and len(self.successes) + len(self.failures) < WRITE_BATCH:
            return None
        batch = _Outcomes()
        batch.successes, batch.failures, batch.metrics = self.successes, self.failures, self.metrics
        batch.last_success_at = self.last_success_at
        self.__init__()
        return batch

    async def write(self, ctx: ServiceContext) -> None:
        await record_checks(ctx.redis, self.metrics)
        if self.successes:
            await record_successes(ctx, self.successes, self.last_success_at)
        for row, error, failed_at in self.failures:
            try:
                await record_health(ctx, row.id, False, error, failed_at)
            except Exception:  # noqa: BLE001 - one record must not cost the others their outcome
                log.exception("health of provider %s not recorded", row.id)


class _Chunk:
    """One chunk's progress: its outcomes, batched writes as they fill, and a future for the end."""

    def __init__(self, ctx: ServiceContext, size: int) -> None:
        self.ctx = ctx
        self.remaining = size
        self.outcomes = _Outcomes()
        self.writes: list[asyncio.Task] = []
        self.done = asyncio.get_running_loop().create_future()

    def finished(self, row: _Row, outcome: tuple | None) -> None:
        if outcome is not None:
            self.outcomes.add(row, *outcome)
        self.remaining -= 1
        batch = self.outcomes.take(force=self.remaining == 0)
        if batch is not None:
            self.writes.append(asyncio.create_task(batch.write(self.ctx)))
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)


class _ProbePool:
    """The process's probes in flight: at most `size` coroutines drain one FIFO of (row, chunk) items
    shared by every chunk, so a process holds `size` probes, not one task per loaded row, and chunks
    finish in the order they arrived (their Celery threads come free one after another)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queue: deque[tuple[_Row, _Chunk]] = deque()
        self.draining = 0  # counted down by a drainer in the same step in which it sees the queue empty
        self._tasks: set[asyncio.Task] = set()

    def submit(self, ctx: ServiceContext, items: list[tuple[_Row, _Chunk]]) -> None:
        self.queue.extend(items)
        for _ in range(min(self.size - self.draining, len(self.queue))):
            self.draining += 1
            task = asyncio.create_task(self._drain(ctx))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, ctx: ServiceContext) -> None:
        try:
            while self.queue:
                row, chunk = self.queue.popleft()
                try:
                    outcome = await _probe(ctx, row)
                except Exception:  # noqa: BLE001 - a bug in one probe must not end the chunk
                    log.exception("health probe of provider %s failed unexpectedly", row.id)
                    outcome = None
                chunk.finished(row, outcome)
        finally:
            self.draining -= 1


async def check_chunk(ctx: ServiceContext, provider_ids: list[str]) -> int:
    """Probe each still-active provider of the chunk that was not checked just now; returns how many."""
    ids = [uuid.UUID(str(pid)) for pid in provider_ids]
    active = await ActiveProvider.filter(provider_id__in=ids).values_list("provider_id", flat=True)
    if not active:
        return 0
    fresh = datetime.now(timezone.utc) - timedelta(seconds=ctx.settings.health_interval * RECHECK_AFTER)
    rows = [_Row(**values) for values in await ProviderRecord.filter(id__in=list(active)).filter(
        Q(health_checked_at__isnull=True) | Q(health_checked_at__lt=fresh)).values(*_FIELDS)]
    if not rows:
        return 0
    chunk = _Chunk(ctx, len(rows))
    _pool(ctx).submit(ctx, [(row, chunk) for row in rows])
    await chunk.done
    for result in await asyncio.gather(*chunk.writes, return_exceptions=True):
        if isinstance(result, BaseException):
            log.error("health outcomes not recorded: %s", type(result).__name__)
    return len(rows)


def _pool(ctx: ServiceContext) -> _ProbePool:
    pool = ctx.extras.get("health_probes")
    if pool is None:
        pool = ctx.extras["health_probes"] = _ProbePool(sweep_concurrency(ctx.settings))
    return pool


async def _probe(ctx: ServiceContext, row: _Row):
    """(ok, error, checked_at, metric) of one probe; a key that cannot be decrypted is a failure too."""
    try:
        target = target_of(ctx, row)
    except CredentialsUnavailable as exc:
        error = {"code": "credentials_unavailable", "message": exc.message, "provider_status": None,
                 "provider_request_id": None}
        return False, error, datetime.now(timezone.utc), None
    started = time.monotonic()
    result = await run_check(target, ctx.http, ctx.settings, probe=True)
    metric = (row.kind, "ok" if result.ok else result.error.code, time.monotonic() - started, "health")
    error = None if result.ok else result.error.model_dump()
    return result.ok, error, result.checked_at, metric
