"""`/internal/active-provider` and `/internal/provider-errors` over real HTTP: every rule of the resolved
provider, fail-closed answers, failure reports, and cache invalidation across API processes."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone

import aiohttp
import pytest

from models.providers import ActiveProvider
from service.providers.catalog import FEATURES, TOOL_CALLING_FEATURES
from service.auth import issue_token
from tests.conftest import good_key
from tests.processes import free_port

RECORDS = {  # kind -> (create body extras, the base_url the kind's official SDK takes)
    "openai": ({"model": "gpt-4.1-mini"}, "https://api.openai.com/v1"),
    "anthropic": ({"model": "claude-haiku-4-5"}, "https://api.anthropic.com"),
    "gemini": ({"model": "gemini-2.5-flash"}, "https://generativelanguage.googleapis.com"),
    "azure_openai": ({"model": "gpt-4o-prod", "endpoint": "https://my-res.openai.azure.com/openai/",
                      "api_version": "2024-10-21"}, "https://my-res.openai.azure.com"),
    "openai_compatible": ({"model": "llama-3.3-70b-versatile", "endpoint": "https://api.groq.com/openai/v1"},
                          "https://api.groq.com/openai/v1"),
}


async def create(api, kind: str = "openai", org: str = "acme", key: str | None = None, **extra) -> dict:
    body = {"kind": kind, "name": f"{kind} {uuid.uuid4().hex[:6]}", "api_key": key or good_key(),
            **RECORDS[kind][0], **extra}
    status, record, _ = await api.call("POST", "/llm-providers", org=org, json=body)
    assert status == 201, record
    return {**record, "api_key": body["api_key"]}


async def activate_directly(record: dict, org: str = "acme") -> None:
    """Set-up only: the pointer an activation writes (activation itself runs on a worker, tested below)."""
    await ActiveProvider.create(org=org, provider_id=record["id"], checked_version=1,
                                activated_at=datetime.now(timezone.utc), activated_by="test")


async def resolve(api, org: str = "acme", feature: str = "triage", **kwargs):
    return await api.call("GET", f"/internal/active-provider?org={org}&feature={feature}", role="service", **kwargs)


async def test_orgs_without_their_own_provider_get_the_default(api):
    default = {"source": "default", "quota_bypassed": False, "provider": None}
    assert (await resolve(api, org="nobody-knows-this-org"))[:2] == (200, default)
    await create(api)  # a record alone is not an active provider
    for feature in FEATURES:
        assert (await resolve(api, feature=feature))[:2] == (200, default)


@pytest.mark.parametrize("kind", list(RECORDS))
async def test_the_active_provider_comes_with_its_key_and_the_sdk_base_url(api, kind):
    record = await create(api, kind)
    await activate_directly(record)
    features = [f for f in FEATURES if f in record["supported_features"]]
    for feature in features:
        status, body, headers = await resolve(api, feature=feature)
        assert status == 200, body
        assert headers["Cache-Control"] == "no-store"
        assert body == {"source": "byo", "quota_bypassed": True, "provider": {
            "id": record["id"], "kind": kind, "model": record["model"], "base_url": RECORDS[kind][1],
            "api_version": record["api_version"], "api_key": record["api_key"],
            "health": {"status": "unknown", "checked_at": None, "consecutive_failures": 0}}}
    # Nobody else ever sees the key: org roles cannot call the internal API, and records show only last4.
    for role in ("owner", "admin", "member", "ops"):
        assert (await api.call("GET", "/internal/active-provider?org=acme&feature=triage", role=role))[0] == 403
    _, listing, _ = await api.call("GET", "/llm-providers", role="member")
    assert record["api_key"] not in str(listing) and listing["active_provider_id"] == record["id"]


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_tool_calling_agents_fail_closed_on_kinds_without_tools(api, kind):
    record = await create(api, kind)
    await activate_directly(record)
    assert set(record["supported_features"]) == set(FEATURES) - TOOL_CALLING_FEATURES
    for feature in sorted(TOOL_CALLING_FEATURES):
        status, err, _ = await resolve(api, feature=feature)
        assert status == 409, err
        assert err["error"]["code"] == "feature_unsupported_by_provider"
        message = err["error"]["message"]
        assert feature in message and ("Anthropic" in message or "Gemini" in message)
        assert "platform's own keys are not used" in message and record["api_key"] not in str(err)
    assert (await resolve(api, feature="walkthrough"))[1]["source"] == "byo"


async def test_a_key_that_cannot_be_decrypted_fails_closed(api_factory, make_settings, database_url, encryption_key):
    from cryptography.fernet import Fernet

    first = await api_factory(make_settings(database_url=database_url))
    record = await create(first)
    await activate_directly(record)
    # The operator dropped the key this record was encrypted with: another process only has a new one.
    second = await api_factory(make_settings(database_url=database_url, encryption_keys=Fernet.generate_key().decode()))
    for feature in ("triage", "scan_agent"):
        status, err, _ = await resolve(second, feature=feature)
        assert status == 503 and err["error"]["code"] == "credentials_unavailable", err
        assert "cannot be decrypted" in err["error"]["message"] and record["api_key"] not in str(err)
    assert (await resolve(first))[1]["provider"]["api_key"] == record["api_key"]


async def test_bad_queries_and_callers_are_refused(api):
    status, err, _ = await resolve(api, feature="summarize")
    assert status == 422 and "feature" in err["error"]["fields"]
    status, err, _ = await api.call("GET", "/internal/active-provider?feature=triage", role="service")
    assert status == 422 and "org" in err["error"]["fields"]
    status, err, _ = await resolve(api, org="x" * 129)
    assert status == 422 and "org" in err["error"]["fields"]
    assert (await api.call("GET", "/internal/active-provider?org=acme&feature=triage", role=None))[0] == 401
    report = {"org": "acme", "feature": "triage", "code": "rate_limited"}
    assert (await api.call("POST", "/internal/provider-errors", role="admin", json=report))[0] == 403


async def test_a_service_token_that_expires_is_refused_although_it_was_just_accepted(api):
    import jwt

    token = api.token("service", ttl=2)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await resolve(api, headers=headers))[0] == 200
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
    status, err, _ = await resolve(api, headers=headers)
    assert status == 401 and "expired" in err["error"]["message"]


async def test_deactivation_is_seen_by_the_next_resolve(api):
    record = await create(api)
    await activate_directly(record)
    assert (await resolve(api))[1]["provider"]["id"] == record["id"]
    assert (await api.call("POST", "/llm-providers/deactivate"))[0] == 200
    assert (await resolve(api))[1]["source"] == "default"


# --- failure reports --------------------------------------------------------------------------------


async def metric(api, name: str, **labels) -> float:
    _, text, _ = await api.call("GET", "/metrics", role=None)
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def report(api, code="rate_limited", feature="fix_proposal", **extra):
    body = {"org": "acme", "feature": feature, "code": code, "message": "the provider answered 429", **extra}
    return await api.call("POST", "/internal/provider-errors", role="service", json=body)


async def test_reported_failures_feed_health_alerts_and_metrics(api, settings):
    record = await create(api)
    await activate_directly(record)
    assert (await resolve(api))[1]["provider"]["health"]["status"] == "unknown"  # cached from here on
    counted = await metric(api, "llmp_provider_error_reports_total", code="rate_limited", feature="fix_proposal")
    status, outcome, _ = await report(api, message=f"429 for key {record['api_key']}")
    assert status == 202 and outcome["recorded"] is True and outcome["provider_id"] == record["id"]
    assert outcome["health"]["consecutive_failures"] == 1 and outcome["health"]["status"] == "unknown"

    _, shown, _ = await api.call("GET", f"/llm-providers/{record['id']}", role="member")
    error = shown["health"]["last_error"]
    assert error["code"] == "rate_limited" and "fix_proposal" in error["message"]
    assert record["api_key"] not in str(shown)
    _, alerts, _ = await api.call("GET", "/ops/alerts?status=open&org=acme", role="ops")
    assert [(a["kind"], a["provider_id"]) for a in alerts["items"]] == [("provider_errors", record["id"])]
    assert "rate_limited" in alerts["items"][0]["message"]

    for _ in range(settings.health_failures_to_flag - 1):
        await report(api)
    assert (await resolve(api))[1]["provider"]["health"]["status"] == "failing"  # the cache was evicted
    _, alerts, _ = await api.call("GET", "/ops/alerts?status=open&org=acme", role="ops")
    assert {a["kind"] for a in alerts["items"]} == {"provider_errors", "provider_failing"}
    after = await metric(api, "llmp_provider_error_reports_total", code="rate_limited", feature="fix_proposal")
    assert after - counted == settings.health_failures_to_flag


async def test_reports_that_concern_no_active_provider_are_only_counted(api):
    assert (await report(api))[1] == {"recorded": False, "provider_id": None, "health": None}
    old, new = await create(api), await create(api)
    await activate_directly(new)
    # The call went to `old`, which was switched away from while it ran: `new` does not pay for it.
    assert (await report(api, provider_id=old["id"]))[1]["recorded"] is False
    _, shown, _ = await api.call("GET", f"/llm-providers/{new['id']}")
    assert shown["health"]["consecutive_failures"] == 0
    _, alerts, _ = await api.call("GET", "/ops/alerts?org=acme", role="ops")
    assert alerts["items"] == []
    for bad in ({"code": "it_broke"}, {"feature": "summarize"}, {"provider_id": "nope"}, {"org": ""}):
        status, err, _ = await report(api, **bad)
        assert status == 422 and set(bad) <= set(err["error"]["fields"]), err


# --- across processes, on a real worker -------------------------------------------------------------




class Process:
    """`llm-providers serve` in a subprocess, and calls to it."""

    def __init__(self, proc, base: str, session: aiohttp.ClientSession, secret: str) -> None:
        self.proc, self.base, self.session, self.secret = proc, base, session, secret

    async def call(self, method: str, path: str, role: str = "admin", **kwargs):
        token = issue_token(self.secret, role=role, org="acme" if role == "admin" else None)
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.base + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def two_api_processes(live_settings, worker_factory, tmp_path):
    from tests.processes import ServiceProcess, settings_env

    worker_factory(live_settings)
    session = aiohttp.ClientSession()
    processes = []
    for name in ("a", "b"):
        port = free_port()
        proc = ServiceProcess(["serve", "--port", str(port)], settings_env(live_settings), tmp_path / f"api-{name}.log")
        processes.append(Process(proc, f"http://127.0.0.1:{port}", session, live_settings.jwt_key))
    try:
        for process in processes:
            await wait_until(lambda p=process: p.call("GET", "/healthz"), lambda answer: answer[0] == 200, 30)
        yield processes
    finally:
        await session.close()
        for process in processes:
            process.proc.stop()


async def wait_until(call, accept, within: float):
    """Call `call()` until `accept(answer)`; returns (answer, seconds taken); fails after `within` seconds."""
    started = time.monotonic()
    while True:
        try:
            answer = await call()
        except aiohttp.ClientConnectionError:
            answer = None
        if answer is not None and accept(answer):
            return answer, time.monotonic() - started
        assert time.monotonic() - started < within, f"not seen within {within} s; last answer {answer}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_every_api_process_sees_each_change_within_a_second(two_api_processes):
    a, b = two_api_processes

    async def on_b():
        return await b.call("GET", "/internal/active-provider?org=acme&feature=triage", role="service")

    def provider(answer) -> dict:
        return answer[1]["provider"] or {}

    first, second = [(await a.call("POST", "/llm-providers", json={
        "kind": "openai", "name": name, "model": "gpt-4.1-mini", "api_key": good_key()}))[1] for name in ("P1", "P2")]
    assert (await a.call("POST", f"/llm-providers/{first['id']}/activate"))[0] == 200
    for process in (a, b):  # both caches hold P1 now
        await wait_until(lambda p=process: p.call("GET", "/internal/active-provider?org=acme&feature=triage",
                                                  role="service"),
                         lambda ans: provider(ans).get("id") == first["id"], 5)

    status, _ = await a.call("POST", f"/llm-providers/{second['id']}/activate")
    assert status == 200
    await wait_until(on_b, lambda ans: provider(ans).get("id") == second["id"], 1.0)

    new_key = good_key("rotated")
    status, updated = await a.call("PATCH", f"/llm-providers/{second['id']}", json={"api_key": new_key})
    assert status == 200 and updated["key_last4"] == new_key[-4:]  # checked live by the worker first
    await wait_until(on_b, lambda ans: provider(ans).get("api_key") == new_key, 1.0)

    assert (await a.call("POST", "/llm-providers/deactivate"))[0] == 200
    await wait_until(on_b, lambda ans: ans[1]["source"] == "default", 1.0)

    # The access log keeps refusals of the hot path, not its hundreds of successful answers.
    assert (await b.call("GET", "/internal/active-provider?org=acme&feature=nope", role="service"))[0] == 422
    await asyncio.sleep(0.2)
    logged = [line for line in b.proc.output().splitlines() if '"GET /internal/active-provider' in line]
    assert len(logged) == 1 and "feature=nope" in logged[0] and '" 422 ' in logged[0], logged


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_endpoint_typed_without_v1_resolves_to_the_base_that_worked(api_factory, live_settings, fakes,
                                                                             worker_factory):
    api = await api_factory(live_settings)
    worker_factory(live_settings)
    key = good_key()
    status, record, _ = await api.call("POST", "/llm-providers", json={
        "kind": "openai_compatible", "name": "Groq-like", "model": "fake-model", "api_key": key,
        "endpoint": fakes.base_url("compat_bare")})  # the server answers under /v1 only
    assert status == 201
    status, active, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate")
    assert status == 200, active
    assert active["endpoint"] == fakes.root + "/compat/v1/"  # stored as the base the check proved
    _, body, _ = await resolve(api)
    base = body["provider"]["base_url"]
    assert base == fakes.root + "/compat/v1"
    # What an OpenAI SDK does with it: POST {base_url}/chat/completions.
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}) as r:
            assert r.status == 200 and (await r.json())["choices"][0]["message"]["content"] == "pong"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_rotate_keys_makes_every_process_reload(redis_settings, api_factory, tmp_path):
    from api.keys import CONTEXT
    from models.providers import ProviderRecord
    from tests.conftest import run_cli
    from tests.processes import settings_env

    api = await api_factory(redis_settings)
    await wait_until(lambda: asyncio.sleep(0, api.app[CONTEXT].extras["events"].connected), bool, 5)
    record = await create(api)
    await activate_directly(record)
    assert (await resolve(api))[1]["provider"]["model"] == "gpt-4.1-mini"
    # A change no process was told about (as if its announcement was lost) ...
    await ProviderRecord.filter(id=record["id"]).update(model="gpt-4.1")
    await asyncio.sleep(1.2)
    assert (await resolve(api))[1]["provider"]["model"] == "gpt-4.1-mini"  # ... is not seen while subscribed,
    done = await asyncio.to_thread(run_cli, "rotate-keys", env=settings_env(redis_settings), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"reencrypted": 0, "already_current": 1, "failed": 0}
    await wait_until(lambda: resolve(api), lambda ans: ans[1]["provider"]["model"] == "gpt-4.1", 1.0)  # ... until now
