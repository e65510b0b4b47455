"""A worker killed mid-job, and the embedded broker that `llm-providers run` uses."""
from __future__ import annotations

import asyncio
import signal

import pytest

from api.keys import CONTEXT
from models.jobs import Job
from models.providers import ActiveProvider
from service.jobs import sweep_stuck_jobs
from tests.conftest import good_key, openai_body


async def _wait_status(job_id, statuses, timeout=15):
    for _ in range(int(timeout / 0.05)):
        job = await Job.get(id=job_id)
        if job.status in statuses:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {job.status}")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("job_type", ["test", "activate"])
async def test_worker_killed_mid_job_ends_the_job_and_changes_nothing(api_factory, live_settings, worker_factory,
                                                                       job_type):
    settings = live_settings.model_copy(update={"job_deadline": 3})
    api = await api_factory(settings)
    worker = worker_factory(settings)
    _, previous, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=good_key()))
    assert (await api.call("POST", f"/llm-providers/{previous['id']}/activate"))[0] == 200
    _, slow, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=good_key("slow8000")))
    status, accepted, _ = await api.call("POST", f"/llm-providers/{slow['id']}/{job_type}",
                                         headers={"Prefer": "respond-async"})
    assert status == 202
    await _wait_status(accepted["job_id"], ("running",))
    worker.kill(signal.SIGKILL)

    await asyncio.sleep(3.2)
    assert await sweep_stuck_jobs(api.app[CONTEXT]) == 1  # beat runs this every 15 s
    status, job, _ = await api.call("GET", f"/jobs/{accepted['job_id']}")
    assert job["status"] == "failed" and job["outcome"] == "worker_lost" and job["result"] is None
    assert (await ActiveProvider.get(org="acme")).provider_id.hex == previous["id"].replace("-", "")

    # A new worker (and any redelivery of the lost message) leaves the recorded end alone.
    worker_factory(settings)
    from tasks.celery_config import RUN_JOB, make_celery

    make_celery(settings).send_task(RUN_JOB, args=[accepted["job_id"]])
    await asyncio.sleep(1.5)
    job_again = await Job.get(id=accepted["job_id"])
    assert job_again.status == "failed" and job_again.outcome == "worker_lost" and job_again.attempts == 1
    assert (await ActiveProvider.get(org="acme")).provider_id.hex == previous["id"].replace("-", "")


async def test_a_job_that_waited_past_its_deadline_fails_as_worker_lost_without_a_check(
        api_factory, live_settings, worker_factory, fakes):
    """No worker was running while the caller waited; the worker that finally takes the job must not check
    (or apply) something nobody is waiting for any more."""
    settings = live_settings.model_copy(update={"job_deadline": 1})
    api = await api_factory(settings)
    key = good_key()
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=key))
    status, accepted, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate",
                                         headers={"Prefer": "respond-async"})
    assert status == 202
    await asyncio.sleep(1.2)
    worker_factory(settings)
    job = await _wait_status(accepted["job_id"], ("failed", "succeeded"))
    assert job.outcome == "worker_lost" and job.result is None and job.attempts == 1
    assert fakes.requests(key=key) == []
    assert await ActiveProvider.get_or_none(org="acme") is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_embedded_broker_runs_jobs_without_redis(api_factory, make_settings, database_url, fakes,
                                                       worker_factory):
    settings = make_settings(database_url=database_url, queue_name="embedded", **fakes.native_settings())
    assert settings.uses_embedded_broker and settings.effective_redis_url is None
    api = await api_factory(settings)
    worker_factory(settings)
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=good_key()))
    status, result, _ = await api.call("POST", f"/llm-providers/{record['id']}/test")
    assert status == 200 and result["ok"] is True
    status, active, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate")
    assert status == 200 and active["is_active"] is True
    assert any((settings.broker_folder / "queue").parent.iterdir())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_embedded_broker_survives_a_burst_of_concurrent_producers(api_factory, make_settings, database_url,
                                                                         fakes, worker_factory):
    """Messages are renamed into place, so the polling worker never reads one half-written."""
    settings = make_settings(database_url=database_url, queue_name="embedded-burst",
                             rate_limit_checks="100000/minute", **fakes.native_settings())
    api = await api_factory(settings)
    worker = worker_factory(settings)
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=good_key()))
    answers = await asyncio.gather(*(api.call("POST", f"/llm-providers/{record['id']}/test",
                                              headers={"Prefer": "respond-async"}) for _ in range(150)))
    # Answered at once: 202 with a job, or 200 when the job was already done by then.
    assert all(status in (200, 202) for status, _, _ in answers)
    for _ in range(400):
        if await Job.filter(status="succeeded").count() == 150:
            break
        await asyncio.sleep(0.1)
    assert await Job.filter(status="succeeded").count() == 150 and await Job.all().count() == 150
    assert worker.proc.poll() is None and "JSONDecodeError" not in worker.output()
