"""Thin tasks for health sweeps and worker liveness."""
from __future__ import annotations

import asyncio
import socket

from service.health_sweep import check_chunk, plan_health_sweep
from service.liveness import evaluate_liveness, record_heartbeat
from tasks.app import celery_app
from tasks.celery_config import HEALTH_CHUNK, HEALTH_SWEEP, HEARTBEAT
from tasks.loop import worker_loop


async def _enqueue_chunk(ids: list[str]) -> None:
    await asyncio.to_thread(celery_app.send_task, HEALTH_CHUNK, args=[ids])


@celery_app.task(name=HEALTH_SWEEP)
def health_sweep() -> int:
    return worker_loop.run(plan_health_sweep, _enqueue_chunk)


@celery_app.task(name=HEALTH_CHUNK, acks_late=True)
def health_check_chunk(provider_ids: list[str]) -> int:
    return worker_loop.run(check_chunk, provider_ids)


async def _heartbeat(ctx) -> None:
    await record_heartbeat(ctx, "worker", socket.gethostname())
    await evaluate_liveness(ctx)


@celery_app.task(name=HEARTBEAT)
def heartbeat() -> None:
    worker_loop.run(_heartbeat)
