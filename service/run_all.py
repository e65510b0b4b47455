"""`llm-providers run`: migrations, then the API, a worker and the scheduler as one process tree.

Ctrl-C (or SIGTERM) stops every child cleanly; if one child dies the others are stopped too.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from service.auth import issue_token
from service.config import Settings

DEMO_ORG = "demo"


def _child(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "service.cli", *args], env=env)


def _children_env(settings: Settings) -> dict[str, str]:
    """Without Redis the worker's check counts reach the API's /metrics through a directory the processes
    share (prometheus-client's multiprocess mode), emptied at each start."""
    env = os.environ.copy()
    if settings.effective_redis_url is None:
        metrics_dir = settings.data_path / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


def run_everything(settings: Settings, host: str, port: int) -> int:
    from service.migrate import apply_migrations

    settings.validate_for_startup()
    applied = asyncio.run(apply_migrations(settings))
    print(f"database ready ({len(applied)} migration(s) applied) at {settings.effective_database_url.split('@')[-1]}")
    env = _children_env(settings)
    children = {
        "api": _child(["serve", "--host", host, "--port", str(port)], env),
        "worker": _child(["worker"], env),
        "scheduler": _child(["beat"], env),
    }
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    # Say "running" only once the API answers, so the printed link works when it is printed.
    if not _wait_until_listening(shown_host, port, children["api"]):
        print("the API did not start listening; stopping", file=sys.stderr)
        _stop(children)
        return 1
    token = issue_token(settings.jwt_key, role="admin", org=DEMO_ORG, sub="dev-admin@demo", ttl=12 * 3600)
    print(f"\nLLM Providers is running on http://{shown_host}:{port}  (Ctrl-C stops everything)\n"
          f"  admin page:   http://{shown_host}:{port}/ui/#token={token}\n"
          f"  bearer token for the demo org's admin (12 h):\n  {token}\n", flush=True)

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the rest", file=sys.stderr)
                exit_code = proc.returncode or 1
                stopping = True
        time.sleep(0.2)
    _stop(children)
    print("stopped", flush=True)
    return exit_code


def _wait_until_listening(host: str, port: int, api: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and api.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to every child still running, then up to 20 s for all of them before SIGKILL."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
