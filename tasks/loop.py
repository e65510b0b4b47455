"""One event loop per worker process, on its own thread, holding Tortoise, the HTTP client and Redis.

Celery's threads run each task by submitting a coroutine to this loop and waiting for it; checks of
many tasks therefore overlap on one loop. Started lazily in the process that runs tasks (after any
fork), never one loop per task.
"""
from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from service.config import Settings
from service.context import ServiceContext
from service.db import close_database, open_database


class WorkerLoop:
    def __init__(self, settings_factory: Callable[[], Settings] = Settings) -> None:
        self._settings_factory = settings_factory
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.ctx: ServiceContext | None = None

    def _ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="llmp-worker-loop", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
            self.ctx = asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=60)
            self._pid = os.getpid()

    async def _open(self) -> ServiceContext:
        from service.assembly import open_context

        settings = self._settings_factory()
        await open_database(settings)
        return await open_context(settings)

    def run(self, func: Callable[..., Awaitable[Any]], *args: Any, timeout: float | None = None) -> Any:
        """Run `func(ctx, *args)` on the process's loop and wait for its result."""
        self._ensure_started()
        future = asyncio.run_coroutine_threadsafe(func(self.ctx, *args), self._loop)
        return future.result(timeout=timeout)

    def stop(self) -> None:
        if self._pid != os.getpid() or self._loop is None:
            return
        from service.assembly import close_context

        async def close() -> None:
            await close_context(self.ctx)
            await close_database()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._pid = None


worker_loop = WorkerLoop()
