"""Shared fixtures: fresh databases (PostgreSQL and SQLite), settings, and the API over real HTTP."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet

import tests.netjail.sitecustomize  # noqa: F401 - no name lookup leaves this machine during tests
from service.auth import issue_token
from service.config import Settings
from tests.dbs import PostgresDatabases, SqliteDatabases
from tests.processes import jailed_env

REDIS_URL = os.environ.get("LLMP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JWT_SECRET = "test-jwt-secret-" + "x" * 32


@pytest.fixture(scope="session")
def database_pools(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("dbs")
    pools = {"postgres": PostgresDatabases(scratch), "sqlite": SqliteDatabases(scratch)}
    for pool in pools.values():
        pool.prepare()
    yield pools
    for pool in pools.values():
        pool.teardown()


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request) -> str:
    return request.param


@pytest.fixture
async def database_url(database_pools, backend):
    pool = database_pools[backend]
    name, url = await pool.create()
    yield url
    await pool.drop(name)


@pytest.fixture
def encryption_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def make_settings(tmp_path, encryption_key):
    def make(**overrides) -> Settings:
        values = dict(env="test", data_dir=tmp_path / "data", encryption_keys=encryption_key,
                      jwt_secret=JWT_SECRET, egress_allow="127.0.0.1", check_timeout=5, sync_wait=10)
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings, database_url) -> Settings:
    return make_settings(database_url=database_url)


class Api:
    """A client for the API under test: real HTTP, with tokens for any role."""

    def __init__(self, base: str, session: aiohttp.ClientSession, secret: str, app=None) -> None:
        self.app = app
        self.base = base
        self.session = session
        self.secret = secret

    def token(self, role: str = "admin", org: str | None = "acme", sub: str | None = None, ttl: int = 600) -> str:
        return issue_token(self.secret, role=role, org=org if role in ("owner", "admin", "member") else None,
                           sub=sub, ttl=ttl)

    def headers(self, role: str = "admin", org: str = "acme", **extra) -> dict:
        return {"Authorization": f"Bearer {self.token(role, org)}", **extra}

    async def call(self, method: str, path: str, *, role: str | None = "admin", org: str = "acme",
                   json=None, data=None, headers: dict | None = None):
        hdrs = dict(headers or {})
        if role is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.token(role, org)}")
        async with self.session.request(method, self.base + path, json=json, data=data, headers=hdrs) as resp:
            body = await resp.read()
            try:
                parsed = await resp.json(content_type=None) if body else None
            except ValueError:
                parsed = body.decode(errors="replace")
            return resp.status, parsed, resp.headers

    async def finished_job(self, job_id: str, org: str = "acme", timeout: float = 30, interval: float = 0.1) -> dict:
        """Poll `GET /jobs/{id}` as a member of `org` until the job has ended; fail the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            status, job, _ = await self.call("GET", f"/jobs/{job_id}", org=org, role="member")
            assert status == 200, job
            if job["status"] in ("succeeded", "failed"):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} of {org} did not finish in {timeout} s: {job}")
            await asyncio.sleep(interval)


@pytest.fixture
async def api_factory(database_url):
    servers = []
    sessions = []

    async def start(settings: Settings, **kwargs) -> Api:
        from api.app import create_app

        server = TestServer(create_app(settings, **kwargs), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Api(str(server.make_url("")).rstrip("/"), session, settings.jwt_key, server.app)

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def api(api_factory, settings) -> Api:
    return await api_factory(settings)


def openai_body(**overrides) -> dict:
    body = {"kind": "openai", "name": f"OpenAI {uuid.uuid4().hex[:6]}", "model": "gpt-4.1-mini",
            "api_key": "sk-test-" + uuid.uuid4().hex}
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 60,
            cwd: str | os.PathLike | None = None):
    """Run the installed console script in a subprocess (in `cwd`, to prove nothing depends on it)."""
    import shutil
    import sys

    exe = shutil.which("llm-providers") or str(Path(sys.executable).parent / "llm-providers")
    return subprocess.run([exe, *args], env=jailed_env({**os.environ, **(env or {})}), input=input,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture
def redis_settings(make_settings, database_url):
    """Settings on the real Redis broker, with a queue of this test's own."""
    return make_settings(database_url=database_url, broker_url=REDIS_URL,
                         queue_name=f"llmp-test-{uuid.uuid4().hex[:10]}", rate_limit_checks="100000/minute")


@pytest.fixture
def worker_factory(tmp_path):
    from tests.processes import start_worker

    started = []

    def start(settings: Settings, concurrency: int = 20, name: str = "worker"):
        proc = start_worker(settings, tmp_path / f"{name}-{len(started)}.log", concurrency)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
async def fakes():
    from tests.fakes import start_fake_providers

    server = await start_fake_providers()
    yield server
    await server.close()


@pytest.fixture
def live_settings(redis_settings, fakes):
    """Redis broker, a queue of this test's own, and the native kinds pointed at the fake providers."""
    return redis_settings.model_copy(update=fakes.native_settings())


def good_key(tag: str = "ok") -> str:
    return f"fake-{tag}-{uuid.uuid4().hex[:12]}"
