"""Per-org limit on test and activate calls: a fixed window in Redis, or in-process without Redis."""
from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from service.errors import RateLimited

log = logging.getLogger("llmp.ratelimit")


class CheckRateLimiter:
    def __init__(self, calls: int, window: int, redis=None) -> None:
        self.calls = calls
        self.window = window
        self.redis = redis
        self._local: dict[tuple[str, int], int] = {}

    async def hit(self, org: str) -> None:
        """Count one call for `org`; raise `RateLimited` with the seconds to wait when over the limit."""
        now = time.time()
        slot = int(now // self.window)
        retry_after = max(1, int((slot + 1) * self.window - now + 0.999))
        if self.redis is not None:
            key = f"llmp:rl:checks:{org}:{slot}"
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    count, _ = await pipe.incr(key).expire(key, self.window + 5).execute()
            except RedisError as exc:
                # Fail open: the limit protects providers and workers, and a job cannot be queued
                # without Redis anyway (the caller then answers 503).
                log.warning("rate limit not checked, Redis unavailable: %s", type(exc).__name__)
                return
        else:
            self._local = {k: v for k, v in self._local.items() if k[1] == slot}
            count = self._local.get((org, slot), 0) + 1
            self._local[(org, slot)] = count
        if count > self.calls:
            raise RateLimited(
                f"Too many test and activate calls for this organization ({self.calls} per {self.window} s); "
                f"try again in {retry_after} s.", retry_after=retry_after)
