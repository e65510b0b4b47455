"""The periodic health sweep end to end: a real worker and real `llm-providers beat` processes on Redis and
PostgreSQL, fake providers that start failing and recover, and an operators' webhook that checks signatures.

Failures are switched on the fake (`fakes.behave(key, "error500")`): the provider answers 500, as in an
outage, and the key on the record never changes.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import time

import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.conftest import good_key, openai_body
from tests.processes import ServiceProcess, settings_env

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

INTERVAL = 1.5
SECRET = "whsec-test-" + "s" * 24


class Webhook:
    """The operators' endpoint: records every POST (raw body and headers); answers 503 to the first
    `fail_first` ones."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.fail_first = fail_first
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append((await request.read(), dict(request.headers)))
        return web.Response(status=503 if len(self.posts) <= self.fail_first else 204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/llmp", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hooks/llmp"

    async def close(self) -> None:
        await self._runner.cleanup()

    def events(self, provider_id: str) -> list[dict]:
        """Distinct bodies delivered for `provider_id` (a retried body counts once), in order."""
        seen, events = set(), []
        for body, _ in self.posts:
            event = json.loads(body)
            if event["provider_id"] == provider_id and body not in seen:
                seen.add(body)
                events.append(event)
        return events


def signature_ok(body: bytes, headers: dict[str, str]) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-LLMP-Signature", ""), expected)


@pytest.fixture
async def webhook():
    hook = Webhook(fail_first=1)
    await hook.start()
    yield hook
    await hook.close()


@pytest.fixture
def beat_factory(tmp_path):
    """`llm-providers beat` processes, each with a data dir (and schedule file) of its own."""
    started: list[ServiceProcess] = []

    def start(settings, name: str = "beat") -> ServiceProcess:
        env = settings_env(settings.model_copy(update={"data_dir": tmp_path / name}))
        proc = ServiceProcess(["beat"], env, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


async def until(predicate, timeout: float = 20, what: str = "condition"):
    """Poll `predicate` (sync or async) without blocking the loop the fakes and the webhook run on."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.1)


def probes(fakes, key: str, since: float = 0.0) -> list[float]:
    """When the health probe (GET /v1/models/{model}) carrying `key` reached the fake."""
    return [r["at"] for r in fakes.requests(key=key) if r["method"] == "GET" and r["at"] >= since]


async def activate(api, org: str, key: str) -> dict:
    status, record, _ = await api.call("POST", "/llm-providers", org=org, json=openai_body(api_key=key))
    assert status == 201, record
    status, active, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate", org=org)
    assert status == 200 and active["is_active"], active
    return active


async def health(api, record: dict) -> dict:
    status, body, _ = await api.call("GET", f"/llm-providers/{record['id']}", role="member", org=record["org"])
    assert status == 200
    return body["health"]


async def alerts(api, **query) -> list[dict]:
    path = "/ops/alerts" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    status, body, _ = await api.call("GET", path, role="ops")
    assert status == 200, body
    return body["items"]


async def start_beat(beat_factory, settings, name: str = "beat") -> ServiceProcess:
    beat = beat_factory(settings, name)
    await until(lambda: "beat: Starting" in beat.output(), 30, f"{name} start")
    return beat


def health_settings(live_settings, **overrides):
    values = {"health_interval": INTERVAL, "health_failures_to_flag": 3}
    values.update(overrides)
    return live_settings.model_copy(update=values)


async def test_failing_provider_is_flagged_after_n_checks_alerted_once_and_resolved(
        api_factory, worker_factory, beat_factory, live_settings, fakes, webhook):
    settings = health_settings(live_settings, alert_webhook_url=webhook.url,
                               alert_webhook_secret=SecretStr(SECRET))
    api = await api_factory(settings)
    worker_factory(settings)
    flaky_key, steady_key = good_key(), good_key()
    flaky = {**await activate(api, "acme", flaky_key), "org": "acme"}
    steady = {**await activate(api, "globex", steady_key), "org": "globex"}
    await start_beat(beat_factory, settings)
    await until(lambda: probes(fakes, flaky_key) and probes(fakes, steady_key), what="a first sweep")

    fakes.behave(flaky_key, "error500")  # the provider starts failing
    seen_one_short = False
    while True:  # never flagged, never alerted before the Nth consecutive failure
        open_alerts = await alerts(api, org="acme")  # read before the record: an alert implies N failures
        state = await health(api, flaky)
        if state["consecutive_failures"] < 3:
            assert state["status"] == "healthy" and open_alerts == [], (state, open_alerts)
            seen_one_short |= state["consecutive_failures"] == 2
        else:
            break
        await asyncio.sleep(0.05)
    assert seen_one_short, "the record was seen with N-1 failures and not flagged"
    state = await health(api, flaky)
    assert state["status"] == "failing" and state["last_error"]["code"] == "provider_error"

    await until(lambda: _failures_at_least(api, flaky, 5), what="two more failed sweeps")
    (alert,) = await alerts(api, org="acme")  # still one alert for the incident
    assert alert["kind"] == "provider_failing" and alert["status"] == "open" and alert["provider_id"] == flaky["id"]
    await until(lambda: webhook.events(flaky["id"]), what="the opened webhook")
    (opened,) = webhook.events(flaky["id"])
    assert opened == {**alert, "event": "opened"}
    assert len(webhook.posts) >= 2 and webhook.posts[0][0] == webhook.posts[1][0], "a 503 is retried"
    assert all(signature_ok(body, headers) for body, headers in webhook.posts)
    assert await alerts(api, org="globex") == []
    assert (await health(api, steady))["status"] == "healthy"

    fakes.behave(flaky_key, None)  # it recovers: one passed check is enough
    await until(lambda: _status_is(api, flaky, "healthy"), what="recovery")
    state = await health(api, flaky)
    assert state["consecutive_failures"] == 0 and state["last_error"] is None
    (resolved,) = await alerts(api, org="acme")
    assert resolved["id"] == alert["id"] and resolved["status"] == "resolved" and resolved["resolved_at"]
    await until(lambda: len(webhook.events(flaky["id"])) == 2, what="the resolved webhook")
    assert webhook.events(flaky["id"])[1] == {**resolved, "event": "resolved"}
    assert all(signature_ok(body, headers) for body, headers in webhook.posts)
    everything = json.dumps(await alerts(api)) + "".join(body.decode() for body, _ in webhook.posts)
    assert flaky_key not in everything and steady_key not in everything


async def _failures_at_least(api, record, n: int) -> bool:
    return (await health(api, record))["consecutive_failures"] >= n


async def _status_is(api, record, status: str) -> bool:
    return (await health(api, record))["status"] == status


async def test_a_webhook_that_is_down_neither_stops_the_sweep_nor_loses_the_alert(
        api_factory, worker_factory, beat_factory, live_settings, fakes):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    settings = health_settings(live_settings, health_failures_to_flag=2,
                               alert_webhook_url=f"http://127.0.0.1:{closed}/hooks/llmp",
                               alert_webhook_secret=SecretStr(SECRET))
    api = await api_factory(settings)
    worker = worker_factory(settings)
    down_key, steady_key = good_key(), good_key()
    down = {**await activate(api, "acme", down_key), "org": "acme"}
    steady = {**await activate(api, "globex", steady_key), "org": "globex"}
    fakes.behave(down_key, "error500")
    await start_beat(beat_factory, settings)

    (alert,) = await until(lambda: alerts(api, status="open"), what="the alert")
    assert alert["provider_id"] == down["id"] and alert["kind"] == "provider_failing"
    opened_at = time.monotonic()
    marker = f"alert webhook delivery failed (opened provider_failing {alert['id']})"
    await until(lambda: marker in worker.output(), 30, "the webhook given up on")
    # While the webhook was retried and given up on, the sweeps went on.
    assert len(probes(fakes, steady_key, since=opened_at)) >= 3
    assert (await health(api, down))["consecutive_failures"] >= 4
    assert (await health(api, steady))["status"] == "healthy"

    fakes.behave(down_key, None)
    await until(lambda: _status_is(api, down, "healthy"), what="recovery")
    (resolved,) = await alerts(api)
    assert resolved["id"] == alert["id"] and resolved["status"] == "resolved"


async def test_two_schedulers_do_not_double_the_checks(api_factory, worker_factory, beat_factory, live_settings,
                                                       fakes):
    interval = 1.0
    settings = health_settings(live_settings, health_interval=interval)
    api = await api_factory(settings)
    worker = worker_factory(settings)
    keys = [good_key() for _ in range(3)]
    for n, key in enumerate(keys):
        await activate(api, f"org-{n}", key)
    began = time.monotonic()
    await start_beat(beat_factory, settings, "beat-a")
    await start_beat(beat_factory, settings, "beat-b")
    await until(lambda: all(probes(fakes, k) for k in keys), what="a first sweep")

    window, start = 6.0, time.monotonic()
    await asyncio.sleep(window)
    for key in keys:
        times = probes(fakes, key, since=start)
        assert window / interval - 3 <= len(times) <= window / interval + 2, (key, times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) > interval * RECHECK_MARGIN, gaps
    log, elapsed = worker.output(), time.monotonic() - began
    sent = len(re.findall(r"Task llmp\.health_sweep\[[-0-9a-f]+\] received", log))
    planned, skipped = log.count("health sweep planned"), log.count("health sweep skipped: already claimed")
    assert skipped >= 3 and sent >= planned + skipped, "both schedulers sent their sweeps"
    assert planned <= elapsed / interval + 2, (planned, elapsed)


RECHECK_MARGIN = 0.5  # the claim spaces sweeps by 0.8 x interval; doubled sweeps would come closer


def metric_samples(text: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(api) -> dict:
    status, text, headers = await api.call("GET", "/metrics", role=None)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return metric_samples(text)


async def test_worker_counts_reach_the_scrape_and_state_gauges_follow_the_database(
        api_factory, worker_factory, beat_factory, live_settings, fakes):
    settings = health_settings(live_settings, health_interval=1.0, health_failures_to_flag=2)
    api = await api_factory(settings)
    worker_factory(settings)
    before = await scrape(api)  # worker counts live in Redis, shared with other runs: compare increases
    ok_key, bad_key = good_key(), good_key()
    await activate(api, "acme", ok_key)
    bad = {**await activate(api, "globex", bad_key), "org": "globex"}
    fakes.behave(bad_key, "error500")
    await start_beat(beat_factory, settings)
    await until(lambda: _status_is(api, bad, "failing"), what="flagging")
    await until(lambda: len(probes(fakes, ok_key)) >= 2, what="two sweeps")

    after = await scrape(api)  # the checks ran in the worker process; this is the API's scrape
    def grew(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("llmp_checks_total", kind="openai", outcome="ok", purpose="health") >= 2
    assert grew("llmp_checks_total", kind="openai", outcome="provider_error", purpose="health") >= 2
    assert grew("llmp_checks_total", kind="openai", outcome="ok", purpose="activate") >= 2
    assert grew("llmp_check_latency_seconds_bucket", kind="openai", le="+Inf") >= 6
    assert grew("llmp_check_latency_seconds_count", kind="openai") >= 6
    assert grew("llmp_job_queue_wait_seconds_count", type="activate") >= 2
    assert metric(after, "llmp_jobs", type="activate", status="succeeded") == 2  # this test's database
    assert metric(after, "llmp_active_providers", status="healthy") == 1
    assert metric(after, "llmp_active_providers", status="failing") == 1
    assert metric(after, "llmp_open_alerts", kind="provider_failing") == 1
    assert metric(after, "llmp_open_alerts", kind="workers_silent") == 0
    assert 0 <= metric(after, "llmp_heartbeat_age_seconds", component="worker") < 60
    assert 0 <= metric(after, "llmp_heartbeat_age_seconds", component="scheduler") < 60


async def test_silent_workers_and_scheduler_are_reported_and_alerted(api_factory, worker_factory, beat_factory,
                                                                     live_settings):
    from datetime import datetime, timedelta, timezone

    from models.ops import Heartbeat
    from tasks.celery_config import HEARTBEAT, make_celery

    settings = health_settings(live_settings, health_interval=3600)
    api = await api_factory(settings)
    worker_factory(settings)
    await start_beat(beat_factory, settings)
    await until(lambda: _component_state(api, "worker", "alive"), what="the worker's own heartbeat")
    await until(lambda: _component_state(api, "scheduler", "alive"), what="the scheduler's heartbeat")

    async def age(component: str, seconds: float) -> None:
        seen = datetime.now(timezone.utc) - timedelta(seconds=seconds)
        assert await Heartbeat.filter(component=component).update(seen_at=seen) == 1

    await age("worker", 150)  # a missed beat or two (a broker blip): reported alive, nobody paged
    assert await _component_state(api, "worker", "alive")
    assert not [a for a in await alerts(api) if a["kind"] == "workers_silent"]

    await age("worker", 240)  # silent for more than 3 minutes
    (alert,) = [a for a in await alerts(api, status="open") if a["kind"] == "workers_silent"]
    assert alert["org"] is None and alert["provider_id"] is None and "worker" in alert["message"]
    status, ready, _ = await api.call("GET", "/readyz", role=None)
    assert status == 200 and ready["status"] == "ready"  # reported, never a reason to be unready
    assert ready["components"]["worker"]["silent"] is True and ready["components"]["worker"]["age_seconds"] >= 240
    samples = await scrape(api)
    assert metric(samples, "llmp_heartbeat_age_seconds", component="worker") >= 240
    assert metric(samples, "llmp_open_alerts", kind="workers_silent") == 1
    assert len([a for a in await alerts(api) if a["kind"] == "workers_silent"]) == 1  # asked again: same alert

    celery = make_celery(settings)  # the next heartbeat from the worker resolves it
    celery.send_task(HEARTBEAT)
    celery.close()
    await until(lambda: _component_state(api, "worker", "alive"), what="a fresh worker heartbeat")
    (resolved,) = [a for a in await alerts(api) if a["kind"] == "workers_silent"]
    assert resolved["id"] == alert["id"] and resolved["status"] == "resolved"

    await age("scheduler", 200)
    (silent,) = [a for a in await alerts(api, status="open") if a["kind"] == "scheduler_silent"]
    await start_beat(beat_factory, settings, "beat-again")  # a scheduler comes back: it beats at once
    await until(lambda: _component_state(api, "scheduler", "alive"), what="the new scheduler's heartbeat")
    assert [a["status"] for a in await alerts(api) if a["id"] == silent["id"]] == ["resolved"]


async def _component_state(api, component: str, state: str) -> bool:
    status, ready, _ = await api.call("GET", "/readyz", role=None)
    assert status == 200, ready
    return ready["components"].get(component, {}).get("state") == state
