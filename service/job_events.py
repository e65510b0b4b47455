"""Job completion events: one Redis pub/sub listener per process wakes every waiter; a database poll
is the fallback (no Redis in the embedded mode, or a message lost in a broker blip)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

log = logging.getLogger("llmp.jobs")
CHANNEL = "llmp:jobs:finished"


async def publish_job_finished(redis, job_id: str) -> None:
    if redis is None:
        return
    try:
        await redis.publish(CHANNEL, job_id)
    except Exception as exc:  # noqa: BLE001 - waiters fall back to polling the database
        log.warning("could not publish completion of job %s: %s", job_id, type(exc).__name__)


class JobEvents:
    """Lets a request wait for a job's completion without a sleep loop."""

    def __init__(self, redis=None) -> None:
        self.redis = redis
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task | None = None

    async def start(self) -> None:
        if self.redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="llmp-job-events")

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    job_id = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
                    for event in self._waiters.get(job_id, ()):
                        event.set()
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; waiters poll meanwhile
                log.warning("job event listener lost Redis (%s); reconnecting", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1)

    @contextlib.contextmanager
    def watch(self, job_id: str):
        """Register interest before checking the database, so no completion falls between the two."""
        event = asyncio.Event()
        self._waiters[job_id].add(event)
        try:
            yield event
        finally:
            self._waiters[job_id].discard(event)
            if not self._waiters[job_id]:
                del self._waiters[job_id]

    @property
    def poll_interval(self) -> float:
        # With a live listener the poll is only a safety net; without one it is the mechanism.
        return 1.0 if self._listener is not None and not self._listener.done() else 0.05
