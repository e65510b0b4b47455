"""Enqueueing from the API process: a Celery client that only publishes, off the event loop."""
from __future__ import annotations

import asyncio

from service.config import Settings
from tasks.celery_config import RUN_JOB, make_celery


class JobProducer:
    def __init__(self, settings: Settings) -> None:
        self._celery = make_celery(settings)

    async def enqueue(self, job_id: str) -> None:
        await asyncio.to_thread(self._celery.send_task, RUN_JOB, args=[job_id])

    def close(self) -> None:
        self._celery.close()
