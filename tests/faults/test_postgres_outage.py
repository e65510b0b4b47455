"""PostgreSQL stopped for a while: the API answers 503 without a traceback, nothing is half-written, and the
same API and worker processes work again once it is back (their connection pools reconnect)."""
from __future__ import annotations

import asyncio
import time

import pytest

from models.audit import AuditEntry
from models.jobs import Job
from models.providers import ProviderRecord
from tests.conftest import good_key, openai_body
from tests.faults.helpers import create, no_traceback, poll_job, wait_until


def _is_503(answer) -> bool:
    status, body, _ = answer
    return (status == 503 and isinstance(body, dict) and body["error"]["code"] == "dependency_unavailable"
            and no_traceback(body))


async def _first(api, method: str, path: str, want: int, timeout: float, **kwargs) -> float:
    """Seconds until `method path` answers `want`, repeating the call as a client would."""
    started = time.monotonic()
    while True:
        status, body, _ = await api.call(method, path, **kwargs)
        if status == want:
            return time.monotonic() - started
        assert status == 503 and no_traceback(body), (method, path, status, body)
        assert time.monotonic() - started < timeout, f"{method} {path} still {status} after {timeout}s"
        await asyncio.sleep(0.05)


async def test_postgres_down_answers_503_then_everything_works_again(api_factory, fault_settings, fault_workers,
                                                                     own_pg):
    api = await api_factory(fault_settings)
    await asyncio.to_thread(fault_workers, fault_settings, concurrency=4)
    record = await create(api)
    assert (await api.call("POST", f"/llm-providers/{record['id']}/activate"))[0] == 200  # warm both pools
    jobs_before = await Job.all().count()

    await asyncio.to_thread(own_pg.stop)
    calls = {
        "list": await api.call("GET", "/llm-providers"),
        "read": await api.call("GET", f"/llm-providers/{record['id']}"),
        "create": await api.call("POST", "/llm-providers", json=openai_body(name="During the outage")),
        "test": await api.call("POST", f"/llm-providers/{record['id']}/test"),
        "activate": await api.call("POST", f"/llm-providers/{record['id']}/activate"),
        "deactivate": await api.call("POST", "/llm-providers/deactivate"),
    }
    for name, answer in calls.items():
        assert _is_503(answer), (name, answer[0], answer[1])
    status, ready, _ = await api.call("GET", "/readyz", role=None)
    assert status == 503 and ready["checks"]["database"] != "ok" and ready["checks"]["broker"] == "ok"
    assert (await api.call("GET", "/healthz", role=None))[0] == 200  # liveness: no restart wanted

    await asyncio.to_thread(own_pg.start)
    figures = {
        "readyz": await _first(api, "GET", "/readyz", 200, 30, role=None),
        "list": await _first(api, "GET", "/llm-providers", 200, 30),
    }
    started = time.monotonic()
    status, created, _ = await api.call("POST", "/llm-providers", json=openai_body(name="After the outage",
                                                                                  api_key=good_key()))
    assert status == 201, created
    # Through the worker, whose pool lost every connection too: a sync test and a re-activation.
    status, result, _ = await api.call("POST", f"/llm-providers/{created['id']}/test", headers={"Prefer": "wait=20"})
    assert status == 200 and result["ok"] is True, result
    status, active, _ = await api.call("POST", f"/llm-providers/{created['id']}/activate",
                                       headers={"Prefer": "wait=20"})
    assert status == 200 and active["is_active"] is True, active
    figures["create+test+activate"] = time.monotonic() - started

    # Nothing the failed calls started was written: no record named "During the outage", no job.
    names = {r.name for r in await ProviderRecord.filter(org="acme")}
    assert names == {record["name"], "After the outage"}
    assert await Job.all().count() == jobs_before + 2
    assert await AuditEntry.filter(action="deactivate").count() == 0
    _, listing, _ = await api.call("GET", "/llm-providers")
    assert listing["active_provider_id"] == created["id"]
    print("\n[figure] postgres back: " + ", ".join(f"{k} {v:.2f}s" for k, v in figures.items()))


async def test_postgres_stopped_under_traffic_never_answers_500_and_writes_nothing_half(api_factory, fault_settings,
                                                                                        own_pg):
    """Clients keep listing, reading and creating while PostgreSQL shuts down (in-flight queries are cut) and
    comes back: every answer is a success or a clean 503, each create is all or nothing, and once it is back
    the same process answers every call again (no poisoned pool connection)."""
    api = await api_factory(fault_settings)
    orgs = [f"org{n}" for n in range(8)]
    readable = {org: await create(api, org=org) for org in orgs}
    answers: list[tuple[float, str, int, object]] = []
    created: dict[tuple[str, str], int] = {}  # (org, name) -> status answered
    stop = asyncio.Event()

    async def client(org: str) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            calls = [("list", api.call("GET", "/llm-providers", org=org)),
                     ("read", api.call("GET", f"/llm-providers/{readable[org]['id']}", org=org))]
            if i < 90:  # an org holds at most 100 records
                calls.append(("create", api.call("POST", "/llm-providers", org=org, json=openai_body(name=f"n{i}"))))
            for kind, call in calls:
                status, body, _ = await call
                answers.append((time.monotonic(), kind, status, body))
                if kind == "create":
                    created[(org, f"n{i}")] = status
            await asyncio.sleep(0.02)

    clients = [asyncio.create_task(client(org)) for org in orgs]
    await asyncio.sleep(1.0)
    await asyncio.to_thread(own_pg.stop)
    await asyncio.sleep(1.5)
    await asyncio.to_thread(own_pg.start)
    up_at = time.monotonic()
    await wait_until(lambda: any(t > up_at and s in (200, 201) for t, _, s, _ in answers), 30,
                     what="a success after the restart")
    recovered = next(t for t, _, s, _ in answers if t > up_at and s in (200, 201)) - up_at
    clean_from = time.monotonic() + 0.5
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*clients)

    statuses = sorted({(kind, status) for _, kind, status, _ in answers})
    assert {status for _, _, status, _ in answers} <= {200, 201, 503}, statuses
    failed = [body for _, _, status, body in answers if status == 503]
    assert failed and all(no_traceback(b) and b["error"]["code"] == "dependency_unavailable" for b in failed)
    after = [status for t, _, status, _ in answers if t > clean_from]
    assert len(after) > 50 and set(after) <= {200, 201}, sorted(set(after))

    rows = {(r.org, r.name): r for r in await ProviderRecord.filter(org__in=orgs)}
    audited = {a.provider_id for a in await AuditEntry.filter(org__in=orgs, action="create")}
    half = []
    for key, status in created.items():
        if status == 201:
            assert key in rows, key
        if key in rows and rows[key].id not in audited:
            half.append((key, status))
    assert not half, f"records without their audit entry: {half}"
    print(f"\n[figure] traffic through a postgres stop: {len(answers)} answers, "
          f"{len(failed)} x 503, 0 x 500; first success {recovered:.2f}s after start; "
          f"{sum(1 for k, s in created.items() if s == 503 and k in rows)} refused creates were committed")


@pytest.mark.slow
@pytest.mark.parametrize("job_type", ["test", "activate"])
@pytest.mark.parametrize("down_for", [4.5, 13.0], ids=["back-before-deadline", "back-after-deadline"])
async def test_postgres_stopped_while_a_job_checks(api_factory, fault_settings, fault_workers, fault_beat, own_pg,
                                                   fakes, job_type, down_for):
    """The worker's check is in flight when PostgreSQL stops (it answers at 3 s, with the database gone).
    Back before the job's 10 s deadline: the worker records the check's result once it can, so the job ends
    with it. Back after: the job ends as worker_lost (the sweeper), and nothing of it was applied."""
    settings = fault_settings.model_copy(update={"job_deadline": 10})
    api = await api_factory(settings)
    worker = await asyncio.to_thread(fault_workers, settings, concurrency=4)
    beat = await asyncio.to_thread(fault_beat, settings)
    previous = await create(api)
    assert (await api.call("POST", f"/llm-providers/{previous['id']}/activate"))[0] == 200
    key = good_key("slow3000")
    record = await create(api, key)
    status, accepted, _ = await api.call("POST", f"/llm-providers/{record['id']}/{job_type}",
                                         headers={"Prefer": "respond-async"})
    assert status == 202
    await wait_until(lambda: fakes.requests(key=key), 10, what="check in flight")

    await asyncio.to_thread(own_pg.stop)
    await asyncio.sleep(down_for)
    await asyncio.to_thread(own_pg.start)
    up_at = time.monotonic()
    job = await poll_job(api, accepted["job_id"], timeout=15 + 10)
    ended_after = time.monotonic() - up_at

    _, listing, _ = await api.call("GET", "/llm-providers")
    audits = await AuditEntry.filter(action=job_type, provider_id=record["id"])
    row = await Job.get(id=accepted["job_id"])
    assert row.attempts == 1 and len(fakes.requests(key=key)) == 1, "checked once"
    if down_for < 10:
        assert job["status"] == "succeeded" and job["result"]["ok"] is True, job
        assert ended_after < 5, ended_after  # the worker retries every 2 s at most; the sweeper every 15 s
        if job_type == "activate":
            assert job["outcome"] == "activated" and listing["active_provider_id"] == record["id"]
            assert len(audits) == 1
    else:
        assert job["status"] == "failed" and job["outcome"] == "worker_lost" and job["result"] is None, job
        assert listing["active_provider_id"] == previous["id"] and audits == []
    if job_type == "test":
        assert listing["active_provider_id"] == previous["id"] and audits == []
    assert worker.proc.poll() is None and beat.proc.poll() is None
    print(f"\n[figure] {job_type}, postgres down {down_for:g}s: job {job['status']}/{job['outcome']} "
          f"{ended_after:.2f}s after postgres returned")
