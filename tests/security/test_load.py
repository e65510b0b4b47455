"""Load on a real worker, Redis and PostgreSQL against the fake providers: nothing lost, no 5xx, and
exactly one active provider however many activations race.

`-s` prints the figures quoted in docs/RELIABILITY.md.
"""
from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from models.jobs import Job
from models.providers import ActiveProvider
from tests.conftest import good_key, openai_body
from tests.security.conftest import unique_org

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
async def live(production_api, live_settings, worker_factory):
    settings = live_settings.model_copy(update={"sync_wait": 10.0, "worker_concurrency": 100})
    worker_factory(settings, concurrency=100)
    return await production_api(settings)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def concurrent_tests(api, orgs: int, calls: int) -> dict:
    """`calls` test calls at once, spread over `orgs` orgs with one record each; every one must end in a
    check result (at once, or through its job)."""
    records = []
    for _ in range(orgs):
        org = unique_org("load")
        status, record, _ = await api.call("POST", "/llm-providers", org=org, json=openai_body(api_key=good_key()))
        assert status == 201, record
        records.append((org, record["id"]))

    async def one(i: int):
        org, rid = records[i % orgs]
        started = time.monotonic()
        status, body, headers = await api.call("POST", f"/llm-providers/{rid}/test", org=org)
        return org, status, body, headers, time.monotonic() - started

    started = time.monotonic()
    answers = await asyncio.gather(*(one(i) for i in range(calls)))
    results = []
    for org, status, body, headers, _ in answers:
        assert status in (200, 202), (status, body)
        if status == 202:
            assert headers["Location"] == f"/jobs/{body['job_id']}"
            job = await api.finished_job(body["job_id"], org, timeout=60, interval=0.2)
            assert job["status"] == "succeeded", job
            results.append(job["result"])
        else:
            results.append(body)
    wall = time.monotonic() - started
    assert len(results) == calls and all(r["ok"] is True for r in results), [r for r in results if not r["ok"]][:3]
    org_names = [org for org, _ in records]
    jobs = await Job.filter(org__in=org_names, type="test").values_list("status", flat=True)
    assert len(jobs) == calls and set(jobs) == {"succeeded"}, "every call made exactly one job, all finished"
    latencies = [a[-1] for a in answers]
    return {"calls": calls, "orgs": orgs, "wall_s": round(wall, 2),
            "sync_200": sum(1 for a in answers if a[1] == 200), "accepted_202": sum(1 for a in answers if a[1] == 202),
            "p50_s": round(statistics.median(latencies), 3), "p95_s": round(_percentile(latencies, 0.95), 3),
            "max_s": round(max(latencies), 3)}


async def test_200_concurrent_test_calls_across_50_orgs(live):
    figures = await concurrent_tests(live, orgs=50, calls=200)
    print("\nload: concurrent test calls", figures)


@pytest.mark.slow
async def test_1000_concurrent_test_calls_across_200_orgs(live):
    figures = await concurrent_tests(live, orgs=200, calls=1000)
    print("\nload: concurrent test calls", figures)


async def concurrent_activations(api, count: int) -> dict:
    org = unique_org("race")
    records = []
    for _ in range(count):
        status, record, _ = await api.call("POST", "/llm-providers", org=org, json=openai_body(api_key=good_key()))
        assert status == 201, record
        records.append(record["id"])
    started = time.monotonic()
    answers = await asyncio.gather(*(api.call("POST", f"/llm-providers/{rid}/activate", org=org) for rid in records))
    outcomes = {}
    winners = []
    for rid, (status, body, _) in zip(records, answers):
        if status == 202:
            job = await api.finished_job(body["job_id"], org, timeout=60, interval=0.2)
            status = 200 if job["status"] == "succeeded" else 409
            assert job["status"] == "succeeded" or job["outcome"] in ("provider_changed", "conflict"), job
        else:
            assert status in (200, 409), (status, body)
            if status == 409:
                assert body["error"]["code"] in ("provider_changed", "conflict"), body
        outcomes[status] = outcomes.get(status, 0) + 1
        if status == 200:
            winners.append(rid)
    wall = time.monotonic() - started
    assert await ActiveProvider.filter(org=org).count() == 1
    _, listing, _ = await api.call("GET", "/llm-providers", org=org, role="member")
    active = [item["id"] for item in listing["items"] if item["is_active"]]
    assert len(active) == 1 and active[0] == listing["active_provider_id"]
    assert active[0] in winners, "the active provider is one whose activation succeeded"
    jobs = await Job.filter(org=org, type="activate").values_list("status", flat=True)
    assert len(jobs) == count and not set(jobs) - {"succeeded", "failed"}
    return {"activations": count, "outcomes": outcomes, "wall_s": round(wall, 2)}


async def test_100_concurrent_activations_leave_exactly_one_active(live):
    figures = await concurrent_activations(live, 100)
    print("\nload: concurrent activations", figures)
