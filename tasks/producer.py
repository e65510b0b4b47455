"""Enqueueing from the API process: a Celery client that only publishes, off the event loop."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from service.config import Settings
from tasks.celery_config import RUN_JOB, make_celery

# Publishing is a short blocking call; one thread of its own keeps it off the event loop without a
# crowd of threads contending for the GIL under a burst (measured: see bench/jobs.py).
PUBLISHER_THREADS = 1


class JobProducer:
    def __init__(self, settings: Settings) -> None:
        self._celery = make_celery(settings)
        self._executor = ThreadPoolExecutor(PUBLISHER_THREADS, thread_name_prefix="llmp-publish")

    async def enqueue(self, job_id: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, lambda: self._celery.send_task(RUN_JOB, args=[job_id]))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._celery.close()
