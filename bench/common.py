"""Shared set-up for benchmarks: a fresh migrated PostgreSQL database, Redis, and service processes."""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet

from service.config import Settings
from tests.dbs import PostgresDatabases
from tests.processes import ServiceProcess, free_port, settings_env  # noqa: F401 - free_port for the benchmarks

REDIS_URL = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def bench_environment(**overrides):
    """A fresh database, a queue of its own and settings for it; everything removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="llmp-bench-"))
    pool = PostgresDatabases(scratch)
    pool.prepare()
    name, url = asyncio.run(pool.create())
    values = dict(env="test", data_dir=scratch / "data", database_url=url, broker_url=REDIS_URL,
                  encryption_keys=Fernet.generate_key().decode(), jwt_secret="bench-" + "x" * 40,
                  egress_allow="127.0.0.1", queue_name=f"llmp-bench-{uuid.uuid4().hex[:8]}",
                  rate_limit_checks="1000000/minute")
    values.update(overrides)
    settings = Settings(_env_file=None, **values)
    try:
        yield settings, scratch
    finally:
        asyncio.run(pool.drop(name))
        pool.teardown()
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def service_process(args: list[str], settings: Settings, log: Path, ready: str | int, timeout: float = 60,
                    program: list[str] | None = None):
    """A service subprocess (or `program`), ready when `ready` (a log line, or a port number) is seen."""
    proc = ServiceProcess(args, settings_env(settings), log, program)
    try:
        if isinstance(ready, int):
            wait_for_port(ready, timeout)
        else:
            proc.wait_for(ready, timeout)
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def fake_providers(port: int, delay: float, log: Path):
    import subprocess

    handle = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.server", "--port", str(port), "--delay", str(delay)],
                            stdout=handle, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        handle.close()


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(name: str, value: float, unit: str, baseline: float, baseline_name: str, target: str = "") -> dict:
    ratio = value / baseline if baseline else float("inf")
    return {"name": name, "value": value, "unit": unit, "baseline": baseline, "baseline_name": baseline_name,
            "ratio": ratio, "target": target}


def median(values: list[float]) -> float:
    return statistics.median(values)
