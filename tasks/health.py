"""Thin tasks for health sweeps and worker liveness.

A worker records its own heartbeat every `HEARTBEAT_EVERY` seconds from a thread started when it is
ready, so a dead scheduler never makes live workers look silent. The scheduler's periodic `llmp.heartbeat`
task records one too, which also shows that tasks get from the broker to a worker.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading

from celery.signals import worker_ready, worker_shutdown

from service.alerts import drain_deliveries
from service.health_sweep import check_chunk, plan_health_sweep
from service.liveness import evaluate_liveness, record_heartbeat
from tasks.app import celery_app
from tasks.celery_config import HEALTH_CHUNK, HEALTH_SWEEP, HEARTBEAT, health_queue
from tasks.loop import worker_loop

log = logging.getLogger("llmp.health")
HEARTBEAT_EVERY = 60.0
_stop_heartbeats = threading.Event()


async def _enqueue_chunk(ids: list[str]) -> None:
    await asyncio.to_thread(celery_app.send_task, HEALTH_CHUNK, args=[ids])


async def _pending_chunks(ctx) -> int:
    """Chunk messages not yet taken by any worker (Redis broker only)."""
    if ctx.redis is None or ctx.settings.uses_embedded_broker:
        return 0
    try:
        return int(await ctx.redis.llen(health_queue(ctx.settings)))
    except Exception as exc:  # noqa: BLE001 - unknown backlog: sweep anyway
        log.warning("health backlog unknown: %s", type(exc).__name__)
        return 0


async def _plan(ctx) -> int:
    return await plan_health_sweep(ctx, _enqueue_chunk, lambda: _pending_chunks(ctx))


@celery_app.task(name=HEALTH_SWEEP)
def health_sweep() -> int:
    return worker_loop.run(_plan)


@celery_app.task(name=HEALTH_CHUNK, acks_late=True)
def health_check_chunk(provider_ids: list[str]) -> int:
    return worker_loop.run(check_chunk, provider_ids)


async def _heartbeat(ctx) -> None:
    await record_heartbeat(ctx, "worker", f"{socket.gethostname()}:{os.getpid()}")
    await evaluate_liveness(ctx)


@celery_app.task(name=HEARTBEAT)
def heartbeat() -> None:
    worker_loop.run(_heartbeat)


def _heartbeat_loop() -> None:
    while not _stop_heartbeats.is_set():
        try:
            worker_loop.run(_heartbeat, timeout=30)
        except Exception as exc:  # noqa: BLE001 - a database blip must not end the heartbeats
            log.warning("worker heartbeat not recorded: %s", type(exc).__name__)
        _stop_heartbeats.wait(HEARTBEAT_EVERY)


@worker_ready.connect
def _start_heartbeats(**_: object) -> None:
    _stop_heartbeats.clear()
    threading.Thread(target=_heartbeat_loop, name="llmp-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _before_shutdown(**_: object) -> None:
    """Stop the heartbeats and give pending alert webhooks a few seconds (connected before the handler in
    tasks.app that closes the loop, so it runs first)."""
    _stop_heartbeats.set()
    try:
        worker_loop.run(lambda ctx: drain_deliveries(3), timeout=10)
    except Exception as exc:  # noqa: BLE001
        log.warning("pending alert webhooks not drained: %s", type(exc).__name__)
