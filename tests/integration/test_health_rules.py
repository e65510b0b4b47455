"""Health hysteresis and alert rules on the real database (PostgreSQL and SQLite), seen through the API.

`service.health` is fed check outcomes directly here (the sweep that produces them runs on a real worker in
test_health.py); what a user sees is read back over HTTP: the record's health and `GET /ops/alerts`.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest

from api.keys import CONTEXT
from models.ops import Alert
from models.providers import ActiveProvider
from service.health import Success, record_health, record_successes
from tests.conftest import good_key, openai_body

N = 3
TIMEOUT = {"code": "timeout", "message": "The provider gave no usable answer within 15 s.",
           "provider_status": None, "provider_request_id": None}
ERROR500 = {"code": "provider_error", "message": "OpenAI failed (HTTP 500).", "provider_status": 500,
            "provider_request_id": "req_1"}


@pytest.fixture
async def api(api_factory, make_settings, database_url):
    return await api_factory(make_settings(database_url=database_url, health_failures_to_flag=N))


async def _active_record(api, org: str = "acme", key: str | None = None) -> dict:
    """A record created over the API and made active directly (no worker in these tests)."""
    status, record, _ = await api.call("POST", "/llm-providers", org=org, json=openai_body(api_key=key or good_key()))
    assert status == 201, record
    await ActiveProvider.create(org=org, provider_id=uuid.UUID(record["id"]), checked_version=1,
                                activated_at=datetime.now(timezone.utc), activated_by="test")
    return record


async def _health(api, record: dict, org: str = "acme") -> dict:
    status, body, _ = await api.call("GET", f"/llm-providers/{record['id']}", role="member", org=org)
    assert status == 200
    return body["health"]


async def _alerts(api, **query) -> list[dict]:
    path = "/ops/alerts" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    status, body, _ = await api.call("GET", path, role="ops")
    assert status == 200, body
    return body["items"]


def _for(alerts: list[dict], record: dict, kind: str = "provider_failing") -> list[dict]:
    return [a for a in alerts if a["provider_id"] == record["id"] and a["kind"] == kind]


async def test_flagged_after_n_failures_with_one_alert_per_incident(api):
    ctx = api.app[CONTEXT]
    key = good_key()
    record = await _active_record(api, key=key)
    await record_health(ctx, record["id"], True, None)
    assert (await _health(api, record))["status"] == "healthy"

    for failures in range(1, N):  # N-1 failures: counted, shown, not flagged, nobody paged
        await record_health(ctx, record["id"], False, ERROR500)
        health = await _health(api, record)
        assert health["status"] == "healthy" and health["consecutive_failures"] == failures
        assert health["last_error"]["code"] == "provider_error" and health["checked_at"]
        assert await _alerts(api) == []

    await record_health(ctx, record["id"], False, ERROR500)  # the Nth: flagged, one alert
    health = await _health(api, record)
    assert health["status"] == "failing" and health["consecutive_failures"] == N
    (alert,) = await _alerts(api)
    assert alert["kind"] == "provider_failing" and alert["status"] == "open" and alert["org"] == "acme"
    assert alert["provider_id"] == record["id"] and alert["resolved_at"] is None
    assert "provider_error" in alert["message"] and key not in str(alert) and key[-4:] not in alert["message"]

    for _ in range(3):  # still failing: still the same single alert
        await record_health(ctx, record["id"], False, TIMEOUT)
    health = await _health(api, record)
    assert health["status"] == "failing" and health["consecutive_failures"] == N + 3
    assert health["last_error"]["code"] == "timeout"
    assert [a["id"] for a in await _alerts(api)] == [alert["id"]]

    await record_health(ctx, record["id"], True, None)  # one success: healthy, alert resolved
    health = await _health(api, record)
    assert health == {**health, "status": "healthy", "consecutive_failures": 0, "last_error": None}
    (resolved,) = await _alerts(api)
    assert resolved["id"] == alert["id"] and resolved["status"] == "resolved" and resolved["resolved_at"]
    assert await _alerts(api, status="open") == []

    for _ in range(N):  # a second incident: a new alert; the first stays resolved
        await record_health(ctx, record["id"], False, ERROR500)
    alerts = await _alerts(api)
    assert [a["status"] for a in alerts] == ["open", "resolved"]  # newest first
    assert alerts[0]["id"] != alert["id"] and alerts[1]["id"] == alert["id"]
    assert [a["id"] for a in await _alerts(api, status="open")] == [alerts[0]["id"]]
    assert [a["id"] for a in await _alerts(api, status="resolved")] == [alert["id"]]


async def test_transient_failures_never_page(api):
    ctx = api.app[CONTEXT]
    record = await _active_record(api)
    for _ in range(3):  # a timeout now and then, N-1 in a row at most, between successes
        for _ in range(N - 1):
            await record_health(ctx, record["id"], False, TIMEOUT)
        await record_health(ctx, record["id"], True, None)
    health = await _health(api, record)
    assert health["status"] == "healthy" and health["consecutive_failures"] == 0
    assert await _alerts(api) == [] and await Alert.all().count() == 0


async def test_failures_racing_at_the_threshold_open_one_alert(api, backend):
    ctx = api.app[CONTEXT]
    record = await _active_record(api)
    for _ in range(N - 1):
        await record_health(ctx, record["id"], False, ERROR500)
    if backend == "postgres":  # several workers reporting at once; SQLite has one writer anyway
        await asyncio.gather(*(record_health(ctx, record["id"], False, ERROR500) for _ in range(6)))
    else:
        for _ in range(6):
            await record_health(ctx, record["id"], False, ERROR500)
    assert (await _health(api, record))["consecutive_failures"] == N + 5
    assert len(_for(await _alerts(api), record)) == 1


async def test_batched_successes_recover_and_resolve_every_provider_alert(api):
    """The sweep writes passed checks in batches: same outcome as one by one, reports' alerts included."""
    ctx = api.app[CONTEXT]
    failing = await _active_record(api, org="acme")
    reported = await _active_record(api, org="globex")
    fine = await _active_record(api, org="initech")
    for _ in range(N):
        await record_health(ctx, failing["id"], False, ERROR500)
    await record_health(ctx, reported["id"], True, None)
    status, outcome, _ = await api.call("POST", "/internal/provider-errors", role="service",
                                        json={"org": "globex", "feature": "triage", "code": "provider_error",
                                              "message": "upstream 500"})
    assert status == 202 and outcome["recorded"] is True
    reported_health = await _health(api, reported, org="globex")
    assert reported_health["status"] == "healthy" and reported_health["consecutive_failures"] == 1
    assert {a["kind"] for a in await _alerts(api, status="open")} == {"provider_failing", "provider_errors"}
    assert [a["org"] for a in await _alerts(api, org="globex")] == ["globex"]

    checked_at = datetime.now(timezone.utc)
    rows = [Success(uuid.UUID(r["id"]), org, "failing" if r is failing else "healthy")
            for r, org in ((failing, "acme"), (reported, "globex"), (fine, "initech"))]
    assert await record_successes(ctx, rows, checked_at) == 3
    for record, org in ((failing, "acme"), (reported, "globex"), (fine, "initech")):
        health = await _health(api, record, org=org)
        assert health["status"] == "healthy" and health["consecutive_failures"] == 0
        assert health["last_error"] is None and health["checked_at"]
    assert await _alerts(api, status="open") == []
    assert {a["kind"] for a in await _alerts(api, status="resolved")} == {"provider_failing", "provider_errors"}


async def test_a_single_success_resolves_an_error_report_alert(api):
    """An AI service's failure report opens `provider_errors` while the provider is still healthy; the next
    passed check closes it."""
    ctx = api.app[CONTEXT]
    record = await _active_record(api)
    await record_health(ctx, record["id"], True, None)
    status, _, _ = await api.call("POST", "/internal/provider-errors", role="service",
                                  json={"org": "acme", "feature": "triage", "code": "rate_limited"})
    assert status == 202
    (alert,) = await _alerts(api, status="open")
    assert alert["kind"] == "provider_errors" and (await _health(api, record))["status"] == "healthy"
    await record_health(ctx, record["id"], True, None)
    assert await _alerts(api, status="open") == []


async def test_alerts_are_for_operators_only(api):
    await _active_record(api)
    for role in ("admin", "owner", "member", "service"):
        status, body, _ = await api.call("GET", "/ops/alerts", role=role)
        assert status == 403, (role, body)
    assert (await api.call("GET", "/ops/alerts", role=None))[0] == 401
    status, body, _ = await api.call("GET", "/ops/alerts?status=closed", role="ops")
    assert status == 422 and "status" in body["error"]["fields"]


async def test_a_sweep_chunk_records_every_outcome_and_skips_what_it_need_not_check(api_factory, make_settings,
                                                                                   database_url, fakes):
    """One chunk larger than a write batch, on the worker's code path but in this process: passes written in
    batches, failures one by one, inactive records and records checked just now left alone."""
    from pydantic import SecretStr

    from models.providers import ProviderRecord
    from service.health_sweep import WRITE_BATCH, check_chunk

    settings = make_settings(database_url=database_url, health_failures_to_flag=N, **fakes.native_settings())
    api = await api_factory(settings)
    ctx = api.app[CONTEXT]
    now = datetime.now(timezone.utc)
    records, pointers = [], []
    for i in range(WRITE_BATCH + 20):
        rid, org = uuid.uuid4(), f"org-{i:04d}"
        key = good_key("denied" if i % 10 == 0 else "ok")
        records.append(ProviderRecord(id=rid, org=org, kind="openai", name="Main", model="gpt-4.1-mini",
                                      key_ciphertext=ctx.vault.encrypt(org, str(rid), SecretStr(key)),
                                      key_last4=key[-4:]))
        if i != 1:  # org-0001's record is not active: never checked
            pointers.append(ActiveProvider(org=org, provider_id=rid, checked_version=1, activated_at=now,
                                           activated_by="test"))
    await ProviderRecord.bulk_create(records)
    await ActiveProvider.bulk_create(pointers)
    ids = [str(r.id) for r in records]

    assert await check_chunk(ctx, ids) == len(records) - 1
    by_id = {r.id: r for r in await ProviderRecord.all()}
    for i, record in enumerate(records):
        stored = by_id[record.id]
        if i == 1:
            assert stored.health_checked_at is None and stored.health_status == "unknown"
        elif i % 10 == 0:
            assert stored.health_status == "unknown" and stored.health_consecutive_failures == 1
            assert stored.health_last_error["code"] == "permission_denied" and stored.health_checked_at
        else:
            assert stored.health_status == "healthy" and stored.health_checked_at
    probes = len(fakes.requests())
    assert probes == len(records) - 1
    assert await check_chunk(ctx, ids) == 0  # checked a moment ago: a duplicate chunk costs no probe
    assert len(fakes.requests()) == probes
