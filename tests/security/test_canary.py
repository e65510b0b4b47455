"""A canary API key goes through everything a key goes through (created, tested, rotated, activated,
resolved, failed with, reported, listed as models) while providers echo it back in their errors. Then
every place a key could leak to is searched for it, raw, masked as providers mask it, and in fragments of
4+ characters: the API's logs, the worker's log, job rows, alerts, audit entries, the broker's messages
(queued and unacknowledged), Redis, /metrics and every answer of the API. The only places it may be: the
database's ciphertext (encrypted) and the `service` role's resolve answer.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import string

import pytest
import redis.asyncio as aioredis

from models.audit import AuditEntry
from models.jobs import Job
from models.ops import Alert
from models.providers import ProviderRecord
from tests.conftest import REDIS_URL, Api
from tests.fakes.bodies import masked
from tests.security.conftest import unique_org

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def canary(behaviour: str) -> str:
    """`fake-<behaviour>-` and 28 upper-case letters: no id, timestamp or hex digest can contain a 4-letter
    run of it by chance."""
    return f"fake-{behaviour}-" + "".join(random.choices(string.ascii_uppercase, k=28))


def leaks(text: str, key: str) -> list[str]:
    """Forms of `key` found in `text`: the key, its masked forms, and every 4+ character run of its random
    part except its last 4 characters alone (`key_last4` is shown by design)."""
    found = []
    if key in text:
        found.append("raw key")
    if masked(key) in text:
        found.append("masked key")
    secret = key.split("-", 2)[2]
    for i in range(len(secret) - 3):
        piece = secret[i:i + 4]
        if i == len(secret) - 4:
            continue
        if piece in text:
            found.append(f"fragment {piece!r}")
    return found


class RecordingApi(Api):
    """The API client that keeps every answer's status and body, to search them afterwards."""

    def __init__(self, inner: Api) -> None:
        super().__init__(inner.base, inner.session, inner.secret, inner.app)
        self.answers: list[tuple[str, str, int, str]] = []

    async def call(self, method, path, **kwargs):
        status, body, headers = await super().call(method, path, **kwargs)
        self.answers.append((method, path, status, json.dumps(body) + json.dumps(dict(headers))))
        return status, body, headers


async def _broker_messages(redis, queue: str) -> list[str]:
    """The JSON of every message in our queue and every unacknowledged one of our queue, bodies decoded."""
    raw = list(await redis.lrange(queue, 0, -1))
    for entry in (await redis.hgetall("unacked")).values():
        if queue.encode() in entry:
            raw.append(entry)
    decoded = []
    for item in raw:
        text = item.decode()
        decoded.append(text)
        for message in _messages(json.loads(text)):
            body = message.get("body")
            if isinstance(body, str):
                decoded.append(base64.b64decode(body).decode(errors="replace"))
    return decoded


def _messages(value):
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _messages(item)


async def _redis_dump(redis, patterns: list[str]) -> str:
    out = []
    for pattern in patterns:
        async for key in redis.scan_iter(match=pattern, count=500):
            kind = (await redis.type(key)).decode()
            if kind == "string":
                value = await redis.get(key)
            elif kind == "hash":
                value = await redis.hgetall(key)
            elif kind == "list":
                value = await redis.lrange(key, 0, -1)
            elif kind == "set":
                value = await redis.smembers(key)
            elif kind == "zset":
                value = await redis.zrange(key, 0, -1)
            else:
                value = kind
            out.append(f"{key!r} {value!r}")
    return "\n".join(out)


async def test_the_canary_key_leaks_nowhere(production_api, live_settings, worker_factory, fakes, caplog):
    caplog.set_level(logging.DEBUG)
    settings = live_settings.model_copy(update={"sync_wait": 10.0})
    api = RecordingApi(await production_api(settings))
    org = unique_org("canary")
    working = canary("ok")  # activated and resolved
    echoed = canary("echo")  # every provider answer repeats it, raw and masked
    slow_echo = canary("slow1500")  # a job that runs long enough to be seen unacknowledged
    keys = (working, echoed, slow_echo)
    redis = aioredis.Redis.from_url(REDIS_URL)
    broker: list[str] = []
    try:
        # Created, while no worker runs: the jobs wait in the broker, where we read them.
        status, active, _ = await api.call("POST", "/llm-providers", org=org,
                                           json={"kind": "openai", "name": "Canary", "model": "gpt-4.1-mini",
                                                 "api_key": working})
        assert status == 201 and active["key_last4"] == working[-4:]
        status, noisy, _ = await api.call("POST", "/llm-providers", org=org,
                                          json={"kind": "openai_compatible", "name": "Noisy", "model": "fake-model",
                                                "api_key": echoed, "endpoint": fakes.base_url("compat")})
        assert status == 201
        queued = []
        for record, kind in ((noisy, "test"), (active, "test"), (noisy, "activate")):
            status, accepted, _ = await api.call("POST", f"/llm-providers/{record['id']}/{kind}", org=org,
                                                 headers={"Prefer": "respond-async"})
            assert status == 202
            queued.append(accepted["job_id"])
        messages = await _broker_messages(redis, settings.queue_name)
        assert len(messages) >= 3 and any(queued[0] in m for m in messages), "the jobs should be in the broker"
        broker += messages

        worker = worker_factory(settings)
        jobs = [await api.finished_job(job_id, org) for job_id in queued]
        assert jobs[0]["result"]["error"]["code"] == "bad_request"  # the echoing answer, redacted
        assert jobs[1]["result"]["ok"] is True
        assert jobs[2]["outcome"] == "check_failed"

        # Tested and failed with, synchronously.
        status, result, _ = await api.call("POST", f"/llm-providers/{noisy['id']}/test", org=org)
        assert status == 200 and result["ok"] is False and "[redacted]" in result["error"]["message"]
        status, err, _ = await api.call("POST", f"/llm-providers/{noisy['id']}/activate", org=org)
        assert status == 422 and err["error"]["code"] == "check_failed"
        status, err, _ = await api.call("GET", f"/llm-providers/{noisy['id']}/models", org=org)
        assert status == 422 and err["error"]["code"] == "discovery_failed"
        status, err, _ = await api.call("POST", "/llm-providers/discover-models", org=org,
                                        json={"kind": "openai_compatible", "api_key": echoed,
                                              "endpoint": fakes.base_url("compat")})
        assert status == 422 and err["error"]["code"] == "discovery_failed"

        # Activated and resolved: the one answer that carries a key.
        status, record, _ = await api.call("POST", f"/llm-providers/{active['id']}/activate", org=org)
        assert status == 200 and record["is_active"] is True
        status, resolved, _ = await api.call("GET", f"/internal/active-provider?org={org}&feature=triage",
                                             role="service")
        assert status == 200 and resolved["provider"]["api_key"] == working
        api.answers.pop()  # the resolve answer is allowed to hold the key

        # Rotated: onto the active record (checked first, fails with the echo), then onto an inactive one
        # through a job that is still running while we read the unacknowledged messages.
        status, err, _ = await api.call("PATCH", f"/llm-providers/{active['id']}", org=org, json={"api_key": echoed})
        assert status == 422 and err["error"]["result"]["error"]["code"] == "bad_request"
        status, rotated, _ = await api.call("PATCH", f"/llm-providers/{noisy['id']}", org=org,
                                            json={"api_key": slow_echo})
        assert status == 200 and rotated["key_last4"] == slow_echo[-4:]
        status, accepted, _ = await api.call("POST", f"/llm-providers/{noisy['id']}/test", org=org,
                                             headers={"Prefer": "respond-async"})
        await asyncio.sleep(0.5)
        broker += await _broker_messages(redis, settings.queue_name)
        await api.finished_job(accepted["job_id"], org)

        # Failed with, as the AI services report it (their message quotes the key).
        report = {"org": org, "feature": "triage", "code": "invalid_api_key",
                  "message": f"Incorrect API key provided: {working} ({masked(working)})"}
        status, outcome, _ = await api.call("POST", "/internal/provider-errors", role="service", json=report)
        assert status == 202 and outcome["recorded"] is True
        status, alerts, _ = await api.call("GET", f"/ops/alerts?org={org}", role="ops")
        assert status == 200 and alerts["items"], alerts
        await api.call("GET", f"/llm-providers/{active['id']}", org=org)
        await api.call("GET", "/llm-providers", org=org)
        await api.call("GET", "/llm-providers/audit?limit=200", org=org)
        for job_id in queued:
            await api.call("GET", f"/jobs/{job_id}", org=org)
        status, _, _ = await api.call("GET", "/metrics", role=None)
        assert status == 200
        worker.stop()

        sinks = {
            "API logs": caplog.text,
            "worker log": worker.log_path.read_text(errors="replace"),
            "job rows": json.dumps(await Job.filter(org=org).values(), default=str),
            "alert rows": json.dumps(await Alert.filter(org=org).values(), default=str),
            "audit rows": json.dumps(await AuditEntry.filter(org=org).values(), default=str),
            "provider rows (besides the ciphertext)": json.dumps(
                await ProviderRecord.filter(org=org).values("id", "name", "model", "endpoint", "health_last_error",
                                                            "health_status"), default=str),
            "broker messages": "\n".join(broker),
            "redis": await _redis_dump(redis, [settings.queue_name, "llmp:*", "_kombu*"]),
            "API answers": "\n".join(text for *_, text in api.answers),
        }
        assert len(api.answers) > 20
        found = {sink: leaks(text, key) for sink, text in sinks.items() for key in keys if leaks(text, key)}
        assert not found, found
        # key_last4 is shown in records by design (and echoed by Tortoise's DEBUG log of the SQL that stores
        # it), and nowhere else.
        sinks["API logs"] = "\n".join(r.getMessage() for r in caplog.records if r.name != "tortoise.db_client")
        for sink in ("API logs", "worker log", "job rows", "alert rows", "audit rows", "broker messages", "redis"):
            assert not any(key[-4:] in sinks[sink] for key in keys), sink
        # The ciphertext is there, and it is not the key.
        stored = await ProviderRecord.filter(org=org).values_list("key_ciphertext", flat=True)
        assert stored and not any(leaks(text, key) for text in stored for key in keys)
    finally:
        await redis.aclose()
