"""Redis restarted while jobs are queued and running: the API answers 503 for what needs the broker while
it is down, and the same API, worker and scheduler processes carry on once it is back.

The outage lasts until the scheduler has failed to send a due sweep, so the test also proves the scheduler
survives a failed publish. Without persistence a restart loses the messages still waiting in Redis; those
jobs end as `worker_lost` through the sweeper, so no job stays queued forever. With append-only
persistence, as docker-compose.yml runs Redis, nothing is lost: every job ends with its check's result.
"""
from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime

import pytest

from models.jobs import Job
from service.config import Settings
from tasks.celery_config import celery_settings
from tests.conftest import good_key
from tests.faults.helpers import create, no_traceback, poll_job, wait_until

pytestmark = pytest.mark.slow

CONCURRENCY = 2
WAITING = 4  # jobs beyond what the worker holds (concurrency x prefetch multiplier): they wait in Redis
CHECK_MS = 2000
DEADLINE = 12  # no persistence: lost jobs are swept soon after the outage
DEADLINE_AOF = 60  # appendonly: longer than the outage, so every surviving job still runs
VISIBILITY_AOF = 20  # appendonly: the messages held during the outage come back within the test
HELD = CONCURRENCY * celery_settings(
    Settings(_env_file=None, broker_url="redis://127.0.0.1:1/0"))["worker_prefetch_multiplier"]
JOBS = HELD + WAITING
SWEEP_EVERY = 15  # the beat schedule's sweep-stuck-jobs interval (tasks/celery_config.py)
CONNECTED = "celery.worker.consumer.connection Connected to"


async def _queue_slow_tests(api) -> tuple[list[str], list[str]]:
    keys = [good_key(f"slow{CHECK_MS}") for _ in range(JOBS)]
    records = [await create(api, key) for key in keys]
    ids = []
    for record in records:
        status, accepted, _ = await api.call("POST", f"/llm-providers/{record['id']}/test",
                                             headers={"Prefer": "respond-async"})
        assert status == 202
        ids.append(accepted["job_id"])
    return ids, keys


async def _first_success(api, method: str, path: str, timeout: float, **kwargs) -> tuple[float, dict]:
    """Repeat a call as a user would until it answers 200; returns (seconds, answer)."""
    started = time.monotonic()
    while True:
        status, body, _ = await api.call(method, path, **kwargs)
        if status == 200:
            return time.monotonic() - started, body
        assert status in (202, 503) and no_traceback(body), (status, body)
        assert time.monotonic() - started < timeout, f"{path} never answered 200 within {timeout}s ({status})"
        await asyncio.sleep(0.2)


async def _while_down(api, record_id: str) -> float:
    """What a user sees while Redis is down: job-starting calls and readiness fail fast with 503, reads work.
    Returns the slowest 503's time."""
    slowest = 0.0
    for action in ("test", "activate"):
        started = time.monotonic()
        status, body, _ = await api.call("POST", f"/llm-providers/{record_id}/{action}")
        slowest = max(slowest, time.monotonic() - started)
        assert status == 503, (action, status, body)
        assert body["error"]["code"] == "broker_unavailable" and no_traceback(body)
        assert slowest < 5, "a dead broker is answered quickly, not after a hang"
    status, ready, _ = await api.call("GET", "/readyz", role=None)
    assert status == 503 and ready["checks"]["broker"] != "ok" and ready["checks"]["database"] == "ok"
    status, listing, _ = await api.call("GET", "/llm-providers", role="member")
    assert status == 200 and len(listing["items"]) == JOBS + 1
    status, job, _ = await api.call("GET", f"/jobs/{(await Job.first()).id}", role="member")
    assert status == 200
    refused = await Job.filter(provider_id=record_id)
    assert len(refused) == 2 and {(j.status, j.outcome) for j in refused} == {("failed", "broker_unavailable")}
    return slowest


def _log_time(line: str) -> float:
    stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line).group(1)
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "appendonly"])
async def test_redis_restart_with_jobs_queued_and_running(api_factory, fault_settings, fault_workers, fault_beat,
                                                          own_redis, fakes, appendonly):
    deadline = DEADLINE_AOF if appendonly else DEADLINE
    settings = fault_settings.model_copy(update={"job_deadline": deadline,
                                                 "visibility_timeout": VISIBILITY_AOF if appendonly else None})
    if appendonly:
        await asyncio.to_thread(own_redis.restart, 0, True)
    api = await api_factory(settings)
    beat = await asyncio.to_thread(fault_beat, settings)
    worker = await asyncio.to_thread(fault_workers, settings, concurrency=CONCURRENCY)
    spare = await create(api)
    job_ids, keys = await _queue_slow_tests(api)

    async def all_threads_busy():
        return await Job.filter(id__in=job_ids, status="running").count() == CONCURRENCY

    await wait_until(all_threads_busy, 10, what="jobs running on every thread")
    assert own_redis.client().llen(settings.queue_name) == WAITING, "some jobs still wait in Redis"

    await asyncio.to_thread(own_redis.stop)
    down_at = time.monotonic()
    answered_503_in = await _while_down(api, spare["id"])
    # Stay down until the scheduler has failed to send a due sweep (it retries; it must not die).
    await asyncio.to_thread(beat.wait_for, "beat: Connection error", SWEEP_EVERY + 10)
    await asyncio.to_thread(own_redis.start)
    up_at, up_wall = time.monotonic(), time.time()
    stale = own_redis.client().hlen("unacked")  # what Redis still believes is delivered and unacknowledged
    down_for = up_at - down_at

    readyz_after, _ = await _first_success(api, "GET", "/readyz", 10, role=None)
    # The same worker consumes again (kombu retries at 2, 6, 12, 20, 30 s, then every 30 s).
    await wait_until(lambda: worker.output().count(CONNECTED) >= 2, 45, interval=0.1, what="worker reconnected")
    reconnected_after = _log_time([l for l in worker.output().splitlines() if CONNECTED in l][1]) - up_wall
    # And a user's sync test and activation answer 200 again, without restarting anything.
    _, result = await _first_success(api, "POST", f"/llm-providers/{spare['id']}/test", 45,
                                     headers={"Prefer": "wait=5"})
    test_after = time.monotonic() - up_at
    assert result["ok"] is True
    _, active = await _first_success(api, "POST", f"/llm-providers/{spare['id']}/activate", 30,
                                     headers={"Prefer": "wait=5"})
    assert active["is_active"] is True

    # Every job ends: none stays queued or running past its deadline plus one sweep.
    jobs = [await poll_job(api, job_id, timeout=deadline + SWEEP_EVERY + 10) for job_id in job_ids]
    ended_after = time.monotonic() - up_at
    outcomes = [job["outcome"] for job in jobs]
    lost = outcomes.count("worker_lost")
    assert set(outcomes) <= {"passed", "worker_lost"}, outcomes
    for job in jobs:
        assert (job["outcome"] == "passed") == (job["result"] is not None and job["result"]["ok"] is True)
    if appendonly:
        assert lost == 0, outcomes
        # The acknowledgements of what the worker ran while Redis was down never arrived, so AOF brought those
        # messages back as unacknowledged; after the visibility timeout they are redelivered, and each finds its
        # job ended and does nothing (checked below: one check per job).
        assert stale == HELD, stale
        broker = own_redis.client()
        await wait_until(lambda: broker.hlen("unacked") == 0 and broker.llen(settings.queue_name) == 0,
                         VISIBILITY_AOF + 15, interval=0.2, what="stale messages redelivered and acknowledged")
    else:
        # The messages still in Redis are gone and were swept; every one the worker held ran.
        assert stale == 0 and 0 < lost <= WAITING, (stale, outcomes)
    # The scheduler carries on: the sweep due during the outage was retried until Redis returned (first line),
    # and the next one follows on schedule.
    await wait_until(lambda: beat.output().count("Sending due task sweep-stuck-jobs") >= 2, SWEEP_EVERY + 5,
                     what="a sweep sent after the outage")
    # No job was checked twice, whatever came back: one live request per ended-with-a-result job.
    checks = [len(fakes.requests(key=key)) for key in keys]
    assert checks == [1 if o == "passed" else 0 for o in outcomes], (checks, outcomes)
    assert [j.attempts for j in await Job.filter(id__in=job_ids)].count(1) == JOBS - lost
    assert worker.proc.poll() is None and beat.proc.poll() is None, "no process was restarted or died"
    mode = "appendonly" if appendonly else "no persistence"
    print(f"\n[figure] redis restart ({mode}): down {down_for:.1f}s; test/activate 503 within "
          f"{answered_503_in:.2f}s; after Redis returned: readyz 200 {readyz_after:.2f}s, worker reconnected "
          f"{reconnected_after:.1f}s, first sync test 200 {test_after:.2f}s, all {JOBS} jobs ended {ended_after:.1f}s "
          f"(worker_lost {lost}); stale unacked messages redelivered as no-ops: {stale}")


async def test_redis_dropping_every_connection_loses_and_repeats_nothing(api_factory, fault_settings, fault_workers,
                                                                         own_redis, fakes):
    """Redis stays up but cuts every client (a failover or a proxy restart looks like this): the worker and the
    API reconnect by themselves; every job runs once and ends with its result."""
    api = await api_factory(fault_settings)
    await asyncio.to_thread(fault_workers, fault_settings, concurrency=CONCURRENCY)
    job_ids, keys = await _queue_slow_tests(api)

    async def all_threads_busy():
        return await Job.filter(id__in=job_ids, status="running").count() == CONCURRENCY

    await wait_until(all_threads_busy, 10, what="jobs running on every thread")
    broker = own_redis.client()
    killed = broker.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert killed >= 3  # at least the worker's connections and the API's
    jobs = [await poll_job(api, job_id, timeout=JOBS * CHECK_MS / 1000 / CONCURRENCY + 15) for job_id in job_ids]
    assert [job["outcome"] for job in jobs] == ["passed"] * JOBS
    assert [len(fakes.requests(key=key)) for key in keys] == [1] * JOBS
    assert broker.hlen("unacked") == 0 and broker.llen(fault_settings.queue_name) == 0
    spare = await create(api)
    status, result, _ = await api.call("POST", f"/llm-providers/{spare['id']}/test", headers={"Prefer": "wait=10"})
    assert status == 200 and result["ok"] is True
    print(f"\n[figure] CLIENT KILL of {killed} Redis connections with {JOBS} jobs in flight: all passed, "
          f"each checked once")
