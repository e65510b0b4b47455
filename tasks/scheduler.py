"""Celery beat's scheduler, plus the scheduler's own heartbeat and a watch on the workers' one.

The scheduler records its liveness itself (not through a task a dead worker would never run), and it is
the process that notices when the workers fall silent.
"""
from __future__ import annotations

import logging
import time

from celery.beat import PersistentScheduler

from service.liveness import evaluate_liveness, record_heartbeat
from tasks.loop import worker_loop

log = logging.getLogger("llmp.scheduler")
HEARTBEAT_EVERY = 60.0


async def _scheduler_heartbeat(ctx) -> None:
    await record_heartbeat(ctx, "scheduler", "beat")
    await evaluate_liveness(ctx)


class LivenessScheduler(PersistentScheduler):
    _last_beat = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_EVERY:
            self._last_beat = now
            try:
                worker_loop.run(_scheduler_heartbeat, timeout=20)
            except Exception as exc:  # noqa: BLE001 - a database blip must not stop scheduling
                log.warning("scheduler heartbeat not recorded: %s", type(exc).__name__)
        return min(super().tick(*args, **kwargs), HEARTBEAT_EVERY)
