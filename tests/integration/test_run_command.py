"""`llm-providers run`: the embedded default (SQLite, filesystem broker, no server) as one process tree that
serves, runs jobs, and stops as a whole."""
from __future__ import annotations

import os
import re
import signal
import subprocess

import aiohttp
import pytest

from tests.conftest import good_key, openai_body
from tests.processes import ServiceProcess, free_port, jailed_env


def _children(pid: int) -> dict[str, int]:
    """The run process's children by role (api, worker, scheduler)."""
    roles = {"serve": "api", "worker": "worker", "beat": "scheduler"}
    found = {}
    for line in subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True).stdout.splitlines():
        child, _, command = line.partition(" ")
        for word, role in roles.items():
            if f"service.cli {word}" in command:
                found[role] = int(child)
    return found


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def run_everything(tmp_path, fakes):
    """Start `llm-providers run` on the defaults (only the data dir, egress to 127.0.0.1 and the fakes set);
    yields (process, base URL, the admin token it printed)."""
    port = free_port()
    env = jailed_env({k: v for k, v in os.environ.items() if not k.startswith("LLMP_")})
    env.update({"LLMP_DATA_DIR": str(tmp_path / "data"), "LLMP_EGRESS_ALLOW": "127.0.0.1",
                **{f"LLMP_{name.upper()}": value for name, value in fakes.native_settings().items()}})
    proc = ServiceProcess(["run", "--port", str(port)], env, tmp_path / "run.log")
    try:
        proc.wait_for("Ctrl-C stops everything", timeout=90)
        token = re.search(r"bearer token for the demo org's admin \(12 h\):\s+(\S+)", proc.output()).group(1)
        yield proc, f"http://127.0.0.1:{port}", token
    finally:
        proc.stop()


async def test_run_serves_runs_jobs_on_the_embedded_defaults_and_stops_cleanly(run_everything):
    proc, base, token = run_everything
    children = _children(proc.proc.pid)
    assert set(children) == {"api", "worker", "scheduler"}, proc.output()[-2000:]
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base}/llm-providers", json=openai_body(api_key=good_key())) as resp:
            assert resp.status == 201, await resp.text()
            record = await resp.json()
        async with session.post(f"{base}/llm-providers/{record['id']}/test", headers={"Prefer": "wait=30"}) as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
        async with session.post(f"{base}/llm-providers/{record['id']}/activate",
                                headers={"Prefer": "wait=30"}) as resp:
            assert resp.status == 200 and (await resp.json())["is_active"] is True
        # The checks ran in the worker process; without Redis their counts still reach the API's scrape.
        async with session.get(f"{base}/metrics") as resp:
            metrics = await resp.text()
        for purpose in ("test", "activate"):
            assert f'llmp_checks_total{{kind="openai",outcome="ok",purpose="{purpose}"}} 1.0' in metrics, metrics
        assert 'llmp_check_latency_seconds_count{kind="openai"} 2.0' in metrics
        assert 'llmp_job_queue_wait_seconds_count{type="test"} 1.0' in metrics

    os.kill(proc.proc.pid, signal.SIGINT)  # Ctrl-C reaches the run process; it stops its children
    assert proc.proc.wait(timeout=40) == 0, proc.output()[-2000:]
    assert "stopped" in proc.output()
    assert all(_gone(pid) for pid in children.values())


async def test_run_stops_everything_when_one_part_dies(run_everything):
    proc, base, _ = run_everything
    children = _children(proc.proc.pid)
    os.kill(children["worker"], signal.SIGKILL)
    assert proc.proc.wait(timeout=40) != 0
    assert "worker exited" in proc.output()
    assert all(_gone(pid) for pid in children.values())
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{base}/healthz")


async def test_concurrent_admins_on_the_embedded_default_never_get_a_500(run_everything):
    """Three processes share one SQLite file; a crowd of writes and jobs at once still gets only answers a
    client can act on."""
    import asyncio

    proc, base, token = run_everything
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=30"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def create() -> str:
            async with session.post(f"{base}/llm-providers", json=openai_body(api_key=good_key())) as resp:
                assert resp.status == 201, await resp.text()
                return (await resp.json())["id"]

        ids = await asyncio.gather(*(create() for _ in range(10)))

        async def call(method: str, path: str, body: dict | None = None) -> int:
            async with session.request(method, f"{base}{path}", json=body) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(
            call(*request) for pid in ids for request in (
                ("POST", f"/llm-providers/{pid}/test"), ("POST", f"/llm-providers/{pid}/activate"),
                ("PATCH", f"/llm-providers/{pid}", {"name": f"renamed {pid[:8]}"}),
                ("GET", "/llm-providers"))))
        assert all(status < 500 for status in statuses), statuses
        async with session.get(f"{base}/llm-providers") as resp:
            active = [r for r in (await resp.json())["items"] if r["is_active"]]
        assert len(active) == 1
