"""Fault fixtures: a Redis server and a PostgreSQL cluster of the test's own, which tests stop and start.

The shared PostgreSQL (5432) and Redis (6379) serve other suites at the same time and are never touched
here: every fault test runs the API, workers and the scheduler against these private servers on free
127.0.0.1 ports.

- `own_redis` (per test; starts in ~50 ms): `redis-server` as a subprocess, no persistence unless the test
  passes `appendonly=True` to `own_redis.restart()`/`own_redis.start()`. `stop()` then `start()` reuses
  the port, which is what a Redis restart looks like to its clients.
- `own_pg` (per session; initdb takes a few seconds): a cluster from Debian's binaries in a temporary
  directory, run as the `postgres` user when the suite runs as root (initdb refuses root). Migrations are
  applied once to a template; `fault_database_url` gives each test a fresh copy and drops it afterwards,
  starting the cluster again first if a test left it stopped.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from service.config import Settings
from service.migrate import apply_migrations
from tests.processes import ServiceProcess, free_port, settings_env

HOST = "127.0.0.1"


def wait_port(port: int, timeout: float, up: bool = True) -> None:
    """Wait until 127.0.0.1:port accepts connections (or, with up=False, refuses them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {port} still {'closed' if up else 'open'} after {timeout}s")


# -- Redis -------------------------------------------------------------------------------------------

class RedisServer:
    """One redis-server subprocess on a fixed port; stop/start keep the port (a restart, as clients see it)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.appendonly = False

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, appendonly: bool | None = None) -> None:
        if self.running:
            return
        if appendonly is not None:
            self.appendonly = appendonly
        args = ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no",
                "--dir", str(self.workdir), "--maxmemory-policy", "noeviction"]
        self._log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, 10)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): with appendonly the data survives, without it everything is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        wait_port(self.port, 5, up=False)

    def restart(self, down_for: float = 0.0, appendonly: bool | None = None) -> None:
        self.stop()
        time.sleep(down_for)
        self.start(appendonly)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


# -- PostgreSQL --------------------------------------------------------------------------------------

def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if found:
        return found[0]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL binary {name} not found (install postgresql)")
    return path


class PostgresCluster:
    """A private cluster: initdb once, then start/stop at will on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="llmp-faults-pg-"))  # /tmp, reachable by the postgres user
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.template = "llmp_faults_template"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(args)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def init(self) -> None:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        if self.running:
            return
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")
        wait_port(self.port, 30)

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client (they get AdminShutdown) and shuts down cleanly."""
        if self.running:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")
        wait_port(self.port, 10, up=False)

    def url(self, db: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{db}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    async def admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create_database(self) -> tuple[str, str]:
        name = f"llmp_f_{uuid.uuid4().hex[:12]}"
        await self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name, self.url(name)

    async def drop_database(self, name: str) -> None:
        await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(mode="immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def own_pg(tmp_path_factory):
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        asyncio.run(cluster.admin(f'CREATE DATABASE "{cluster.template}"'))
        scratch = tmp_path_factory.mktemp("faults-migrate")
        asyncio.run(apply_migrations(Settings(_env_file=None, env="test", data_dir=scratch,
                                              database_url=cluster.url(cluster.template))))
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def fault_database_url(own_pg):
    own_pg.start()  # a previous test may have left it stopped
    name, url = await own_pg.create_database()
    yield url
    own_pg.start()
    await own_pg.drop_database(name)


@pytest.fixture
def database_url(fault_database_url):
    """Overrides the suite's `database_url`: fault tests never use the shared PostgreSQL."""
    return fault_database_url


# -- the service on these servers ----------------------------------------------------------------------

@pytest.fixture
def fault_settings(make_settings, fault_database_url, own_redis, fakes):
    """Own PostgreSQL database, own Redis as broker, a queue of the test's own, native kinds on the fakes."""
    return make_settings(database_url=fault_database_url, broker_url=own_redis.url,
                         queue_name=f"llmp-fault-{uuid.uuid4().hex[:8]}", rate_limit_checks="100000/minute",
                         **fakes.native_settings())


def fault_env(settings: Settings) -> dict[str, str]:
    env = settings_env(settings)
    if settings.visibility_timeout is not None:
        env["LLMP_VISIBILITY_TIMEOUT"] = str(settings.visibility_timeout)
    return env


@pytest.fixture
def fault_workers(tmp_path):
    """start(settings, concurrency=..., name=...) -> a running `llm-providers worker` subprocess."""
    started: list[ServiceProcess] = []

    def start(settings: Settings, concurrency: int = 10, name: str = "worker") -> ServiceProcess:
        proc = ServiceProcess(["worker", "--concurrency", str(concurrency), "--name", f"{name}-{len(started)}"],
                              fault_env(settings), tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        proc.wait_for(" ready.", timeout=60)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def fault_beat(tmp_path):
    """start(settings) -> a running `llm-providers beat` (it schedules the stuck-job sweeper every 15 s)."""
    started: list[ServiceProcess] = []

    def start(settings: Settings) -> ServiceProcess:
        proc = ServiceProcess(["beat"], fault_env(settings), tmp_path / f"beat-{len(started)}.log")
        started.append(proc)
        proc.wait_for("beat: Starting", timeout=60)
        return proc

    yield start
    for proc in started:
        proc.stop()
