"""Real service processes for tests: a Celery worker, the scheduler, or the API, as subprocesses."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from service.config import Settings

_FIELDS = ("env", "data_dir", "database_url", "broker_url", "redis_url", "egress_allow", "openai_base_url",
           "anthropic_base_url", "gemini_base_url", "check_timeout", "sync_wait", "health_interval",
           "health_failures_to_flag", "alert_webhook_url", "rate_limit_checks", "job_deadline", "queue_name",
           "worker_concurrency")
_SECRETS = ("encryption_keys", "jwt_secret", "alert_webhook_secret")


NETJAIL = str(Path(__file__).resolve().parent / "netjail")


def jailed_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with the network jail (tests/netjail) loaded first in the child Python process."""
    paths = [NETJAIL, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != NETJAIL]]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def settings_env(settings: Settings) -> dict[str, str]:
    """The LLMP_* environment that reproduces `settings` in another process (inside the network jail)."""
    env = jailed_env({k: v for k, v in os.environ.items() if not k.startswith("LLMP_")})
    for name in _FIELDS:
        value = getattr(settings, name)
        if value is not None:
            env[f"LLMP_{name.upper()}"] = str(value)
    for name in _SECRETS:
        value = getattr(settings, name)
        if value is not None:
            env[f"LLMP_{name.upper()}"] = value.get_secret_value()
    return env


def cli_path() -> str:
    return shutil.which("llm-providers") or str(Path(sys.executable).parent / "llm-providers")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """A subprocess whose output is collected to a log file; `wait_for` watches for a line."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, program: list[str] | None = None) -> None:
        """`program` (the `llm-providers` command unless given) run with `args`."""
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([*(program or [cli_path()]), *args], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for(self, marker: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{marker!r} not seen in {timeout}s:\n{self.output()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def start_worker(settings: Settings, log_path: Path, concurrency: int = 20) -> ServiceProcess:
    proc = ServiceProcess(["worker", "--concurrency", str(concurrency)], settings_env(settings), log_path)
    proc.wait_for(" ready.", timeout=60)
    return proc

