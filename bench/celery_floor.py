"""Celery alone, the baseline of the 500-job burst: what the same broker, Celery configuration, pool and
concurrency cost when a task does nothing but wait one 200 ms provider round on the process's event loop
and note its end in Redis (no database, no HTTP, no decryption, no metrics).

The worker side runs as `python bench/celery_floor.py` with the service's LLMP_* environment; `burst()`
sends the tasks and reads their ends.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid

import redis

from service.config import Settings
from tasks.celery_config import make_celery

ROUND = 0.2
WAIT_ONE_ROUND = "bench.wait_one_round"
_ENDS = "llmp:bench:floor:{run}"


def _redis_for(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.effective_redis_url)


class _Loop:
    """One event loop per worker process on its own thread, as tasks.loop runs the service's jobs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


def _worker_app():
    settings = Settings()
    app = make_celery(settings)
    ends = _redis_for(settings)
    lock = threading.Lock()
    loops: list[_Loop] = []

    @app.task(name=WAIT_ONE_ROUND, acks_late=True, reject_on_worker_lost=True)
    def wait_one_round(run: str) -> None:
        with lock:
            if not loops:
                loops.append(_Loop())
        loops[0].run(asyncio.sleep(ROUND))
        ends.rpush(_ENDS.format(run=run), time.time())

    return app


def burst(settings: Settings, count: int, timeout: float = 60) -> float:
    """Send `count` tasks at once to the floor worker listening on `settings`' queue; seconds from the first
    send until the last task ended."""
    app, ends = make_celery(settings), _redis_for(settings)
    run = uuid.uuid4().hex
    key = _ENDS.format(run=run)
    started = time.time()
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(WAIT_ONE_ROUND, args=[run], producer=producer)
    deadline = time.monotonic() + timeout
    try:
        while ends.llen(key) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ends.llen(key)} of {count} floor tasks ended")
            time.sleep(0.05)
        return max(float(t) for t in ends.lrange(key, 0, -1)) - started
    finally:
        ends.delete(key)
        ends.close()


if __name__ == "__main__":
    # The same worker options as `llm-providers worker` (tasks/cli.py).
    import logging

    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    concurrency = sys.argv[1] if len(sys.argv) > 1 else "100"
    _worker_app().worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}", "--loglevel=INFO",
                               "--without-gossip", "--without-mingle", "-n", f"floor-{uuid.uuid4().hex[:6]}@%h"])
