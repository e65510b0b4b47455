"""Waiting for a job's completion without a sleep loop: completion events wake the waiters; a database
poll is the fallback (no Redis in the embedded mode, or a message lost in a broker blip)."""
from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from service.events import JOB_FINISHED, EventListener, publish


async def publish_job_finished(redis, job_id: str) -> None:
    await publish(redis, *job_finished_event(job_id))


def job_finished_event(job_id: str) -> tuple[str, str]:
    """(channel, message) of a job's completion, for sending along with other Redis commands."""
    return JOB_FINISHED, job_id


class JobEvents:
    def __init__(self, listener: EventListener) -> None:
        self.listener = listener
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        listener.on(JOB_FINISHED, self._finished)

    def _finished(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()

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
        return 1.0 if self.listener.connected else 0.05
