"""Cross-process events over Redis pub/sub: one listener per process, handlers per channel.

Used for job completion (wakes waiting API calls) and provider changes (evicts resolve caches). While
the listener is not subscribed, `connected` is False and users fall back to the database.

Pub/sub delivers at most once and only while subscribed, so the listener must know when it is not: it
pings Redis on its subscription connection every `PING_EVERY` seconds and treats `SILENCE_LIMIT` seconds
without any answer as a lost connection (a half-open TCP connection otherwise looks subscribed forever).
Every (re)subscription calls the `on_connect` handlers, since messages may have been missed meanwhile.
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
POLL = 0.5  # seconds one read waits for a message (a message that arrives is handled at once)
PING_EVERY = 1.0
SILENCE_LIMIT = 3.5
RECONNECT_DELAY = 0.5


async def publish(redis, channel: str, message: str) -> bool:
    """Best effort: True when Redis took the message. A lost message only delays its receivers until their
    database fallback."""
    if redis is None:
        return False
    try:
        await redis.publish(channel, message)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not publish on %s: %s", channel, type(exc).__name__)
        return False
    return True


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
                await self._receive(pubsub)
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
                await asyncio.sleep(RECONNECT_DELAY)

    async def _receive(self, pubsub) -> None:
        loop = asyncio.get_running_loop()
        last_heard = last_ping = loop.time()
        while True:
            message = await pubsub.get_message(timeout=POLL)
            now = loop.time()
            if message is not None:
                last_heard = now
                self._dispatch(message)
            if now - last_ping >= PING_EVERY:
                last_ping = now
                await pubsub.ping()
            if now - last_heard > SILENCE_LIMIT:
                raise ConnectionError(f"no answer from Redis for {SILENCE_LIMIT:g} s")

    def _dispatch(self, message: dict) -> None:
        kind = message["type"]
        if kind == "subscribe":
            # Redis confirms each channel with the count subscribed so far; the last one completes it.
            if message["data"] == len(CHANNELS):
                self.connected = True
                for handler in self._on_connect:
                    handler()
            return
        if kind != "message":
            return
        channel = _text(message["channel"])
        data = _text(message["data"])
        for handler in self._handlers.get(channel, ()):
            try:
                handler(data)
            except Exception:  # noqa: BLE001 - one bad handler must not stop the others or the listener
                log.exception("event handler for %s failed", channel)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
