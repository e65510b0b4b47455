"""Fixtures for the hostile-input, SSRF, canary and load tests.

- `tripwire`: TCP listeners on 127.0.0.1 and [::1] (same port) that record every connection; an SSRF test
  points its endpoint at this port and asserts the listeners saw nothing.
- `production_api`: the API on the production HTTP server (`api.http_server.ApiRunner` with its limits),
  in the test's event loop, so hostile clients meet what `llm-providers serve` runs.
- `threaded_api`: the same server on its own event loop in a thread, for synchronous clients
  (schemathesis calls with `requests`).
"""
from __future__ import annotations

import asyncio
import socket
import threading
import uuid

import pytest
from aiohttp import web

from tests.conftest import Api

ROLES = ("owner", "admin", "member", "service", "ops")


def unique_org(tag: str = "sec") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


class Tripwire:
    """Listeners on 127.0.0.1:PORT and [::1]:PORT that accept and record every connection."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, bytes]] = []
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("127.0.0.1", 0))
        self.port = v4.getsockname()[1]
        self._sockets.append(v4)
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", self.port))
            self._sockets.append(v6)
        except OSError:  # no IPv6 loopback here: [::1] then refuses every connection, which sends nothing
            self.ipv6 = False
        else:
            self.ipv6 = True
        self._threads = []
        for sock in self._sockets:
            sock.listen(64)
            sock.settimeout(0.1)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(0.5)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            self.hits.append((peer[0], data))
            conn.close()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def tripwire():
    wire = Tripwire()
    yield wire
    wire.close()


async def start_production_server(app: web.Application, **overrides) -> tuple[web.AppRunner, int]:
    from api.http_server import SERVER_OPTIONS, ApiRunner

    runner = ApiRunner(app, **{**SERVER_OPTIONS, **overrides})
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def production_api(database_url):
    """`start(settings, **server_overrides) -> Api` on the production server; closed after the test."""
    import aiohttp

    from api.app import create_app

    runners, sessions = [], []

    async def start(settings, *, enqueue=None, **overrides) -> Api:
        app = create_app(settings, enqueue=enqueue)
        runner, port = await start_production_server(app, **overrides)
        runners.append(runner)
        session = aiohttp.ClientSession()
        sessions.append(session)
        api = Api(f"http://127.0.0.1:{port}", session, settings.jwt_key, app)
        api.port = port
        return api

    yield start
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()


class ThreadedApi:
    """The API on the production server, on an event loop of its own in a background thread."""

    def __init__(self, settings, **create_kwargs) -> None:
        self.settings = settings
        self._create_kwargs = create_kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="threaded-api", daemon=True)
        self._runner = None
        self.port = 0

    def start(self) -> ThreadedApi:
        from api.app import create_app

        self._thread.start()

        async def boot():
            app = create_app(self.settings, **self._create_kwargs)
            self._runner, self.port = await start_production_server(app)

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(timeout=60)
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro, timeout: float = 60):
        """Run a coroutine on the API's loop (where Tortoise is open) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def threaded_api_factory(database_url):
    started: list[ThreadedApi] = []

    def start(settings, **kwargs) -> ThreadedApi:
        api = ThreadedApi(settings, **kwargs).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()
