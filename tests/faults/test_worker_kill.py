"""A worker killed with SIGKILL mid-job: Redis gives its unacknowledged message to another worker.

tests/integration/test_worker_faults.py covers the sweeper's path (the job's deadline passes first). These
cover redelivery: kombu's Redis transport keeps every delivered, unacknowledged message in the `unacked`
hash and hands it back once it is older than the visibility timeout (LLMP_VISIBILITY_TIMEOUT; 300 s by
default, a few seconds here). A redelivered job within its deadline runs again, once, and records one
result; one past its deadline is failed as `worker_lost` without a second check.
"""
from __future__ import annotations

import asyncio
import signal
import time

import pytest

from models.audit import AuditEntry
from models.jobs import Job
from tests.conftest import good_key
from tests.faults.helpers import ActiveWatch, create, poll_job, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("job_type", ["test", "activate"])]


async def _start_then_kill(api, worker, fakes, job_type: str, key: str) -> dict:
    record = await create(api, key)
    status, accepted, _ = await api.call("POST", f"/llm-providers/{record['id']}/{job_type}",
                                         headers={"Prefer": "respond-async"})
    assert status == 202, accepted

    # Mid-job: claimed by the worker and its live check in flight at the provider.
    await wait_until(lambda: fakes.requests(key=key), 15, what="check in flight")
    assert (await Job.get(id=accepted["job_id"])).status == "running"
    await asyncio.to_thread(worker.kill, signal.SIGKILL)
    return {"record": record, "job_id": accepted["job_id"]}


async def test_a_redelivered_job_runs_once_and_records_one_result(api_factory, fault_settings, fault_workers,
                                                                  own_redis, fakes, job_type):
    settings = fault_settings.model_copy(update={"job_deadline": 40, "visibility_timeout": 4})
    api = await api_factory(settings)
    first = await asyncio.to_thread(fault_workers, settings, name="doomed")
    previous = await create(api)
    assert (await api.call("POST", f"/llm-providers/{previous['id']}/activate"))[0] == 200

    key = good_key("slow2500")
    async with ActiveWatch(api) as watch:
        started = await _start_then_kill(api, first, fakes, job_type, key)
        killed_at = time.monotonic()
        broker = own_redis.client()
        assert broker.hlen("unacked") == 1, "the killed worker's message is still unacknowledged in Redis"
        assert len(fakes.requests(key=key)) == 1

        await asyncio.to_thread(fault_workers, settings, name="rescuer")
        job = await poll_job(api, started["job_id"], timeout=30)
        recovered_in = time.monotonic() - killed_at
        await watch.settle()

    assert job["status"] == "succeeded", job
    assert job["result"]["ok"] is True
    assert job["outcome"] == ("passed" if job_type == "test" else "activated")
    assert 4 <= recovered_in < 4 + 2.5 + 5, recovered_in  # visibility timeout + the check + slack
    expected_active = previous["id"] if job_type == "test" else started["record"]["id"]
    # A user never saw the org without its provider, nor anything but the old then the new one.
    assert watch.samples > 20 and None not in watch.seen and watch.seen[-1] == expected_active
    assert watch.seen in ([previous["id"]], [previous["id"], started["record"]["id"]])

    # Nothing runs it a third time: wait past another visibility timeout and scan.
    finished_at = job["finished_at"]
    await asyncio.sleep(6)
    row = await Job.get(id=started["job_id"])
    assert row.attempts == 2 and row.finished_at.isoformat() == finished_at
    assert len(fakes.requests(key=key)) == 2, "one check cut short by the kill, one after redelivery"
    assert broker.hlen("unacked") == 0 and broker.llen(settings.queue_name) == 0
    audits = await AuditEntry.filter(action=job_type, provider_id=started["record"]["id"])
    assert len(audits) == (0 if job_type == "test" else 1)  # a test job is not audited; one activation
    _, listing, _ = await api.call("GET", "/llm-providers")
    assert listing["active_provider_id"] == expected_active
    assert sum(item["is_active"] for item in listing["items"]) == 1
    print(f"\n[figure] {job_type}: SIGKILL to recorded result via redelivery {recovered_in:.2f}s "
          f"(visibility timeout 4 s, check 2.5 s)")


async def test_a_job_redelivered_after_its_deadline_fails_as_worker_lost_without_a_second_check(
        api_factory, fault_settings, fault_workers, own_redis, fakes, job_type):
    # No scheduler runs here, so the sweeper cannot end the job: only the redelivered message can.
    settings = fault_settings.model_copy(update={"job_deadline": 3, "visibility_timeout": 5})
    api = await api_factory(settings)
    first = await asyncio.to_thread(fault_workers, settings, name="doomed")
    previous = await create(api)
    assert (await api.call("POST", f"/llm-providers/{previous['id']}/activate"))[0] == 200

    key = good_key("slow2000")
    async with ActiveWatch(api) as watch:
        started = await _start_then_kill(api, first, fakes, job_type, key)
        killed_at = time.monotonic()
        await asyncio.to_thread(fault_workers, settings, name="rescuer")
        job = await poll_job(api, started["job_id"], timeout=20)
        ended_in = time.monotonic() - killed_at
        await watch.settle()

    assert job["status"] == "failed" and job["outcome"] == "worker_lost" and job["result"] is None, job
    assert ended_in < 5 + 4, ended_in
    assert len(fakes.requests(key=key)) == 1, "the redelivered job was not checked again"
    assert (await Job.get(id=started["job_id"])).attempts == 1
    assert watch.seen == [previous["id"]]
    broker = own_redis.client()
    assert broker.hlen("unacked") == 0 and broker.llen(settings.queue_name) == 0

    # The same call works again at once on the surviving worker.
    status, answer, _ = await api.call("POST", f"/llm-providers/{started['record']['id']}/{job_type}",
                                       headers={"Prefer": "wait=10"})
    assert status == 200, answer
    print(f"\n[figure] {job_type}: SIGKILL to worker_lost via redelivery past the deadline {ended_in:.2f}s")
