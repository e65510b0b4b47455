"""Listing 50 providers: p50/p99 of `GET /llm-providers` for an org with 50 records, beside `GET /healthz`
on the same API process (the framework's own floor). Run alone: `python -m bench.list_providers`."""
from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from bench.common import bench_environment, free_port, percentile, row, service_process
from service.auth import issue_token

RECORDS = 50
CALLS = 400
CONCURRENCY = 8


async def _measure(session, url, headers) -> list[float]:
    timings: list[float] = []

    async def one():
        started = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200
        timings.append(time.perf_counter() - started)

    for _ in range(CALLS // CONCURRENCY):
        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return timings


async def _bench(base: str, token: dict) -> tuple[list[float], list[float]]:
    async with aiohttp.ClientSession() as session:
        for i in range(RECORDS):
            body = {"kind": "openai", "name": f"p{i}", "model": "gpt-4.1-mini", "api_key": f"sk-{uuid.uuid4().hex}"}
            async with session.post(f"{base}/llm-providers", json=body, headers=token) as resp:
                assert resp.status == 201
        async with session.get(f"{base}/llm-providers", headers=token) as resp:
            assert len((await resp.json())["items"]) == RECORDS
        await _measure(session, f"{base}/healthz", {})  # warm-up
        floor = await _measure(session, f"{base}/healthz", {})
        listing = await _measure(session, f"{base}/llm-providers", token)
    return listing, floor


def run() -> list[dict]:
    with bench_environment() as (settings, scratch):
        port = free_port()
        with service_process(["serve", "--port", str(port)], settings, scratch / "api.log", port):
            admin = {"Authorization": "Bearer " + issue_token(settings.jwt_key, role="admin", org="bench")}
            listing, floor = asyncio.run(_bench(f"http://127.0.0.1:{port}", admin))
    return [
        row(f"list {RECORDS} providers p50", percentile(listing, 50) * 1000, "ms", percentile(floor, 50) * 1000,
            "GET /healthz p50, same process"),
        row(f"list {RECORDS} providers p99", percentile(listing, 99) * 1000, "ms", percentile(floor, 99) * 1000,
            "GET /healthz p99, same process"),
    ]


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
