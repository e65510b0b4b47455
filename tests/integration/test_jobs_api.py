"""Test and activate as jobs on a real worker and the real Redis broker: waiting, polling, limits, loss."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from models.jobs import Job
from tests.conftest import openai_body

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

CLOSED_PORT_BASE = "http://127.0.0.1:9/v1"  # nothing listens: every check ends `unreachable` at once


@pytest.fixture
def job_settings(redis_settings):
    return redis_settings.model_copy(update={"openai_base_url": CLOSED_PORT_BASE})


async def _create(api, org="acme"):
    status, record, _ = await api.call("POST", "/llm-providers", json=openai_body(), org=org)
    assert status == 201
    return record


async def test_respond_async_then_poll_to_completion(api_factory, job_settings, worker_factory):
    api = await api_factory(job_settings)
    worker_factory(job_settings)
    record = await _create(api)
    status, accepted, headers = await api.call("POST", f"/llm-providers/{record['id']}/test",
                                               headers={"Prefer": "respond-async"})
    assert status == 202 and accepted["status"] in ("queued", "running")
    assert headers["Location"] == f"/jobs/{accepted['job_id']}"
    job = await api.finished_job(accepted["job_id"], timeout=20)
    assert job["type"] == "test" and job["status"] == "succeeded" and job["provider_id"] == record["id"]
    assert job["result"]["ok"] is False and job["result"]["error"]["code"] == "unreachable"
    assert job["started_at"] and job["finished_at"]
    status, _, _ = await api.call("GET", f"/jobs/{accepted['job_id']}", org="other")
    assert status == 404


async def test_without_a_worker_the_call_answers_202_after_its_wait(api_factory, job_settings):
    api = await api_factory(job_settings)
    record = await _create(api)
    status, accepted, headers = await api.call("POST", f"/llm-providers/{record['id']}/activate",
                                               headers={"Prefer": "wait=0.3"})
    assert status == 202 and accepted["status"] == "queued"
    status, job, _ = await api.call("GET", headers["Location"])
    assert status == 200 and job["status"] == "queued" and job["result"] is None and job["type"] == "activate"
    _, listing, _ = await api.call("GET", "/llm-providers")
    assert listing["active_provider_id"] is None


async def test_a_failed_activation_is_422_and_changes_nothing(api_factory, job_settings, worker_factory):
    api = await api_factory(job_settings)
    worker_factory(job_settings)
    record = await _create(api)
    status, err, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate")
    assert status == 422 and err["error"]["code"] == "check_failed"
    assert err["error"]["result"]["error"]["code"] == "unreachable"
    _, listing, _ = await api.call("GET", "/llm-providers")
    assert listing["active_provider_id"] is None
    _, audit, _ = await api.call("GET", "/llm-providers/audit")
    assert audit["items"][0]["action"] == "activate" and audit["items"][0]["outcome"] == "check_failed"


async def test_broker_down_is_503_and_leaves_no_queued_job(api_factory, job_settings):
    settings = job_settings.model_copy(update={"broker_url": "redis://127.0.0.1:9/0"})
    api = await api_factory(settings)
    record = await _create(api)
    status, err, _ = await api.call("POST", f"/llm-providers/{record['id']}/test")
    assert status == 503 and err["error"]["code"] == "broker_unavailable"
    jobs = await Job.all()
    assert len(jobs) == 1 and jobs[0].status == "failed" and jobs[0].outcome == "broker_unavailable"


async def test_rate_limit_per_org(api_factory, job_settings):
    settings = job_settings.model_copy(update={"rate_limit_checks": "2/minute"})
    api = await api_factory(settings)
    org = f"rl-{uuid.uuid4().hex[:8]}"
    record = await _create(api, org=org)
    for _ in range(2):
        status, _, _ = await api.call("POST", f"/llm-providers/{record['id']}/test", org=org,
                                      headers={"Prefer": "respond-async"})
        assert status == 202
    status, err, headers = await api.call("POST", f"/llm-providers/{record['id']}/activate", org=org)
    assert status == 429 and err["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert await Job.filter(org=org).count() == 2
    other = await _create(api, org=f"{org}-b")
    status, _, _ = await api.call("POST", f"/llm-providers/{other['id']}/test", org=f"{org}-b",
                                  headers={"Prefer": "respond-async"})
    assert status == 202


async def test_stuck_jobs_are_failed_as_worker_lost(api_factory, job_settings):
    from api.keys import CONTEXT
    from service.jobs import sweep_stuck_jobs

    settings = job_settings.model_copy(update={"job_deadline": 0.5})
    api = await api_factory(settings)
    record = await _create(api)
    _, accepted, _ = await api.call("POST", f"/llm-providers/{record['id']}/test", headers={"Prefer": "respond-async"})
    await asyncio.sleep(0.7)
    # the sweeper normally runs from beat; here it runs once against the same database
    assert await sweep_stuck_jobs(api.app[CONTEXT]) == 1
    job = await api.finished_job(accepted["job_id"], timeout=20)
    assert job["status"] == "failed" and job["outcome"] == "worker_lost"


async def test_deactivate_is_idempotent_and_members_cannot(api_factory, job_settings):
    api = await api_factory(job_settings)
    for _ in range(2):
        status, body, _ = await api.call("POST", "/llm-providers/deactivate")
        assert status == 200 and body == {"active_provider_id": None}
    assert (await api.call("POST", "/llm-providers/deactivate", role="member"))[0] == 403
    record = await _create(api)
    assert (await api.call("POST", f"/llm-providers/{record['id']}/test", role="member"))[0] == 403
    assert (await api.call("POST", f"/llm-providers/{record['id']}/activate", org="other"))[0] == 404
    assert await Job.all().count() == 0
