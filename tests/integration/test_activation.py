"""Activation semantics on a real worker, Redis and PostgreSQL against the fake providers."""
from __future__ import annotations

import asyncio

import pytest

from models.jobs import Job
from models.providers import ActiveProvider, ProviderRecord
from tests.conftest import good_key, openai_body

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
async def live(api_factory, live_settings, worker_factory):
    api = await api_factory(live_settings)
    worker_factory(live_settings)
    return api


async def _create(api, key=None, **extra):
    status, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=key or good_key(), **extra))
    assert status == 201, record
    return record


async def _active_id(api):
    _, listing, _ = await api.call("GET", "/llm-providers", role="member")
    return listing["active_provider_id"]


async def test_sync_test_answers_with_the_check_result(live):
    record = await _create(live)
    status, result, _ = await live.call("POST", f"/llm-providers/{record['id']}/test")
    assert status == 200 and result["ok"] is True and result["model"] == "gpt-4.1-mini"
    assert isinstance(result["latency_ms"], int) and result["checked_at"]
    bad = await _create(live, key="sk-wrong-key-123456")
    status, result, _ = await live.call("POST", f"/llm-providers/{bad['id']}/test")
    assert status == 200 and result["ok"] is False and result["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-123456" not in str(result)


async def test_activate_then_switch_then_defaults(live):
    first, second = await _create(live), await _create(live)
    status, active, _ = await live.call("POST", f"/llm-providers/{first['id']}/activate")
    assert status == 200 and active["is_active"] is True and active["health"]["status"] == "healthy"
    assert await _active_id(live) == first["id"]
    status, err, _ = await live.call("DELETE", f"/llm-providers/{first['id']}")
    assert status == 409 and err["error"]["code"] == "provider_active"

    status, active, _ = await live.call("POST", f"/llm-providers/{second['id']}/activate")
    assert status == 200 and await _active_id(live) == second["id"]
    _, again, _ = await live.call("GET", f"/llm-providers/{first['id']}")
    assert again["is_active"] is False

    status, _, _ = await live.call("POST", f"/llm-providers/{second['id']}/activate")  # re-check of the active one
    assert status == 200 and await Job.filter(provider_id=second["id"], type="activate").count() == 2

    status, body, _ = await live.call("POST", "/llm-providers/deactivate")
    assert status == 200 and body == {"active_provider_id": None} and await _active_id(live) is None
    assert await ProviderRecord.filter(org="acme").count() == 2
    assert (await live.call("DELETE", f"/llm-providers/{second['id']}"))[0] == 204


async def test_failed_activation_keeps_the_previous_provider(live):
    good = await _create(live)
    assert (await live.call("POST", f"/llm-providers/{good['id']}/activate"))[0] == 200
    quota = await _create(live, key=good_key("quota"))
    status, err, _ = await live.call("POST", f"/llm-providers/{quota['id']}/activate")
    assert status == 422 and err["error"]["result"]["error"]["code"] == "quota_exceeded"
    assert await _active_id(live) == good["id"]


async def test_patch_of_the_active_provider_is_checked_first(live, fakes):
    record = await _create(live)
    await live.call("POST", f"/llm-providers/{record['id']}/activate")
    status, renamed, _ = await live.call("PATCH", f"/llm-providers/{record['id']}", json={"name": "Renamed"})
    assert status == 200 and renamed["name"] == "Renamed"

    status, err, _ = await live.call("PATCH", f"/llm-providers/{record['id']}",
                                     json={"api_key": "sk-revoked-999999", "name": "Never"})
    assert status == 422 and err["error"]["result"]["error"]["code"] == "invalid_api_key"
    _, unchanged, _ = await live.call("GET", f"/llm-providers/{record['id']}")
    assert unchanged["key_last4"] == record["key_last4"] and unchanged["name"] == "Renamed"

    status, err, _ = await live.call("PATCH", f"/llm-providers/{record['id']}", json={"model": "missing-model"})
    assert status == 422 and err["error"]["result"]["error"]["code"] == "model_not_found"

    new_key = good_key()
    status, updated, _ = await live.call("PATCH", f"/llm-providers/{record['id']}",
                                         json={"api_key": new_key, "model": "gpt-4.1"})
    assert status == 200 and updated["key_last4"] == new_key[-4:] and updated["model"] == "gpt-4.1"
    assert updated["is_active"] is True
    assert fakes.requests(key=new_key), "the new key was checked live before it applied"
    pointer = await ActiveProvider.get(org="acme")
    assert pointer.checked_version == (await ProviderRecord.get(id=record["id"])).version
    assert not any(job.changes for job in await Job.all()), "no pending key is kept once jobs end"


async def test_a_change_during_the_check_fails_the_activation_with_409(live):
    record = await _create(live, key=good_key("slow1500"))
    status, accepted, _ = await live.call("POST", f"/llm-providers/{record['id']}/activate",
                                          headers={"Prefer": "respond-async"})
    assert status == 202
    await asyncio.sleep(0.4)
    status, _, _ = await live.call("PATCH", f"/llm-providers/{record['id']}", json={"model": "gpt-4.1"})
    assert status == 200
    job = await live.finished_job(accepted["job_id"], timeout=10)
    assert job["status"] == "failed" and job["outcome"] == "provider_changed"
    assert job["result"]["ok"] is True
    assert await _active_id(live) is None

    status, err, _ = await _activate_while_deleting(live)
    assert status == 409 and err["error"]["code"] == "provider_deleted"


async def _activate_while_deleting(live):
    record = await _create(live, key=good_key("slow1000"))
    call = asyncio.create_task(live.call("POST", f"/llm-providers/{record['id']}/activate"))
    await asyncio.sleep(0.4)
    assert (await live.call("DELETE", f"/llm-providers/{record['id']}"))[0] == 204
    return await call


async def test_twenty_concurrent_activations_leave_exactly_one_active(live):
    records = [await _create(live) for _ in range(20)]
    answers = await asyncio.gather(*(live.call("POST", f"/llm-providers/{r['id']}/activate") for r in records))
    statuses = [status for status, _, _ in answers]
    assert all(status == 200 for status in statuses), statuses
    assert statuses.count(200) >= 1
    assert await ActiveProvider.filter(org="acme").count() == 1
    active = await _active_id(live)
    winners = [r["id"] for r, (status, _, _) in zip(records, answers) if status == 200]
    assert active in winners
    _, listing, _ = await live.call("GET", "/llm-providers")
    assert sum(item["is_active"] for item in listing["items"]) == 1
