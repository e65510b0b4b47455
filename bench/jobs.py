"""Job benchmarks (issue 4 targets), on the Redis broker with one real worker process:

- test-call latency: p50 of `POST /llm-providers/{id}/test` against a fake that answers at once, beside
  the p50 of a direct HTTP call to the same fake (target: within 15 ms);
- burst: 500 test jobs enqueued at once against a fake answering in 200 ms, time until all finished
  (on a worker just started, and the median of BURST_RUNS more), beside Celery alone doing the same with a task that only waits 200 ms
  (bench/celery_floor.py; same broker, configuration, pool and concurrency; target: within 3 s).

Run alone: `python -m bench.jobs`.
"""
from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from bench import celery_floor
from bench.common import bench_environment, fake_providers, free_port, percentile, row, service_process
from service.auth import issue_token

LATENCY_CALLS = 200
BURST = 500
BURST_RUNS = 3
CONCURRENCY = 100
FLOOR_PROGRAM = [sys.executable, str(Path(__file__).with_name("celery_floor.py"))]


async def _create(session, base, token, endpoint_base, name_prefix, count=1):
    ids = []
    for i in range(count):
        body = {"kind": "openai", "name": f"{name_prefix}-{i}-{uuid.uuid4().hex[:6]}", "model": "gpt-4.1-mini",
                "api_key": f"fake-ok-{uuid.uuid4().hex}"}
        async with session.post(f"{base}/llm-providers", json=body, headers=token) as resp:
            assert resp.status == 201, await resp.text()
            ids.append((await resp.json())["id"])
    return ids


async def _latency(base, token, fake_root, provider_id) -> tuple[float, float]:
    async with aiohttp.ClientSession() as session:
        direct, via_api = [], []
        body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}
        headers = {"Authorization": "Bearer fake-ok-direct"}
        for _ in range(20):  # warm both paths
            async with session.post(f"{fake_root}/openai/v1/chat/completions", json=body, headers=headers) as r:
                await r.read()
            async with session.post(f"{base}/llm-providers/{provider_id}/test", headers=token) as r:
                await r.read()
        for _ in range(LATENCY_CALLS):
            started = time.perf_counter()
            async with session.post(f"{fake_root}/openai/v1/chat/completions", json=body, headers=headers) as r:
                await r.read()
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with session.post(f"{base}/llm-providers/{provider_id}/test", headers=token) as r:
                result = await r.json()
                assert r.status == 200 and result["ok"], result
            via_api.append(time.perf_counter() - started)
    return percentile(via_api, 50) * 1000, percentile(direct, 50) * 1000


async def _burst(base, token, settings, provider_id) -> float:
    from service.db import close_database, open_database
    from models.jobs import Job

    await open_database(settings)
    try:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def enqueue():
                async with session.post(f"{base}/llm-providers/{provider_id}/test",
                                        headers={**token, "Prefer": "respond-async"}) as r:
                    # 202, or 200 when the job was already done by the time the API answered
                    assert r.status in (200, 202), await r.text()

            await asyncio.gather(*(enqueue() for _ in range(BURST)))
        deadline = time.time() + 60
        while time.time() < deadline:
            if await Job.filter(provider_id=provider_id, status__in=("queued", "running")).count() == 0:
                break
            await asyncio.sleep(0.05)
        jobs = await Job.filter(provider_id=provider_id)
        assert len(jobs) == BURST, len(jobs)
        first_created = min(j.created_at for j in jobs)
        assert all(j.status == "succeeded" and j.result["ok"] for j in jobs), "every burst job must pass"
        last_finished = max(j.finished_at for j in jobs)
        return (last_finished - first_created).total_seconds()
    finally:
        await close_database()


@contextlib.contextmanager
def _api_and_worker(settings, fake_root: str, scratch, tag: str):
    """API and one worker (100 threads) whose OpenAI kind points at `fake_root`: yields (API base URL, admin
    headers, a function that creates a provider record to test)."""
    settings = settings.model_copy(update={"openai_base_url": f"{fake_root}/openai/v1"})
    port = free_port()
    with service_process(["serve", "--port", str(port)], settings, scratch / f"api-{tag}.log", port), \
            service_process(["worker", "--concurrency", str(CONCURRENCY)], settings, scratch / f"worker-{tag}.log", " ready."):
        base = f"http://127.0.0.1:{port}"
        token = {"Authorization": "Bearer " + issue_token(settings.jwt_key, role="admin", org="bench")}

        def create() -> str:
            """A new provider record (each burst counts the jobs of its own record)."""
            async def one() -> str:
                async with aiohttp.ClientSession() as session:
                    (pid,) = await _create(session, base, token, fake_root, tag)
                return pid

            return asyncio.run(one())

        yield base, token, create


def _floor(settings, scratch) -> list[float]:
    """Seconds for BURST tasks on Celery alone (bench/celery_floor.py), on a queue of its own: the first on a
    worker just started, then BURST_RUNS more."""
    settings = settings.model_copy(update={"queue_name": f"{settings.queue_name}-floor"})
    with service_process([str(CONCURRENCY)], settings, scratch / "worker-floor.log", " ready.",
                         program=FLOOR_PROGRAM):
        return [celery_floor.burst(settings, BURST) for _ in range(BURST_RUNS + 1)]


def run() -> list[dict]:
    rows = []
    with bench_environment() as (settings, scratch):
        fast_port, slow_port = free_port(), free_port()
        with fake_providers(fast_port, 0.0, scratch / "fake-fast.log") as fast_root, \
                fake_providers(slow_port, 0.2, scratch / "fake-slow.log") as slow_root:
            with _api_and_worker(settings, fast_root, scratch, "latency") as (base, token, create):
                api_p50, direct_p50 = asyncio.run(_latency(base, token, fast_root, create()))
            rows.append(row("test call p50 via API + worker", api_p50, "ms", direct_p50,
                            "direct call to the fake", f"within 15 ms (+{api_p50 - direct_p50:.1f} ms)"))
            slow = settings.model_copy(update={"openai_base_url": f"{slow_root}/openai/v1"})
            with _api_and_worker(settings, slow_root, scratch, "burst") as (base, token, create):
                bursts = [asyncio.run(_burst(base, token, slow, create())) for _ in range(BURST_RUNS + 1)]
            floors = _floor(settings, scratch)
            floor_name = f"Celery alone, {BURST} tasks waiting 200 ms"
            rows.append(row(f"{BURST} test jobs at once (200 ms fake), all finished, worker just started",
                            bursts[0], "s", floors[0], floor_name, "within 3 s"))
            rows.append(row(f"{BURST} test jobs at once (200 ms fake), all finished, median of the next "
                            f"{BURST_RUNS}", statistics.median(bursts[1:]), "s", statistics.median(floors[1:]),
                            floor_name, "within 3 s"))
    return rows


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
