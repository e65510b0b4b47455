"""Cross-process events over Redis pub/sub: one listener per process, handlers per channel.

Used for job completion (wakes waiting API calls) and provider changes (evicts resolve caches). While
the listener is not subscribed, `connected` is False and users fall back to the database.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger("llmp.events")

JOB_FINISHED = "llmp:jobs:finished"
PROVIDERS_CHANGED = "llmp:providers:changed"
CHANNELS = (JOB_FINISHED, PROVIDERS_CHANGED)


async def publish(redis, channel: str, message: str) -> None:
    """Best effort: a lost message only delays its receivers until their database fallback."""
    if redis is None:
        return
    try:
        await redis.publish(channel, message)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not publish on %s: %s", channel, type(exc).__name__)


class EventListener:
    def __init__(self, redis) -> None:
        self.redis = redis
        self.connected = False
        self._handlers: dict[str, list[Callable[[str], None]]] = {c: [] for c in CHANNELS}
        self._on_connect: list[Callable[[], None]] = []
        self._task: asyncio.Task | None = None

    def on(self, channel: str, handler: Callable[[str], None]) -> None:
        self._handlers[channel].append(handler)

    def on_connect(self, handler: Callable[[], None]) -> None:
        """Called on every (re)subscription: messages may have been missed while disconnected."""
        self._on_connect.append(handler)

    async def start(self) -> None:
        if self.redis is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="llmp-events")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected = False

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(*CHANNELS)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        if message["data"] == len(CHANNELS):
                            self.connected = True
                            for handler in self._on_connect:
                                handler()
                        continue
                    if message["type"] != "message":
                        continue
                    channel = _text(message["channel"])
                    for handler in self._handlers.get(channel, ()):
                        handler(_text(message["data"]))
            except asyncio.CancelledError:
                self.connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; users fall back to the database meanwhile
                self.connected = False
                log.warning("event listener lost Redis (%s); reconnecting", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(0.5)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
