"""Prometheus metrics (`llmp_*`).

Counts made in the API process are ordinary prometheus-client metrics. Counts made in workers (checks
and their latency) are also added to Redis hashes, which the API's collector reads at scrape time, so
they reach the scrape whichever process or host ran the check. Gauges of state (jobs, provider health,
open alerts, heartbeat age) are read from the database at scrape time: every API instance reports the
same truth.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

log = logging.getLogger("llmp.metrics")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
CHECKS_KEY = "llmp:metrics:checks"
LATENCY_KEY = "llmp:metrics:check_latency"
QUEUE_WAIT_KEY = "llmp:metrics:job_queue_wait"

PROVIDER_ERROR_REPORTS = Counter("llmp_provider_error_reports_total",
                                 "Failed BYO provider calls reported by the AI services", ["feature", "code"])
RESOLVES = Counter("llmp_resolves_total", "Active-provider resolutions", ["source"])


def _bucket_for(seconds: float) -> str:
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "+Inf"


async def record_check(redis, kind: str, outcome: str, seconds: float, purpose: str,
                       queue_wait: float | None = None, announce: tuple[str, str] | None = None) -> None:
    """Count one check (outcome is `ok` or an error code), and for a job the time it waited in the queue,
    where every API instance can read them: one Redis round trip, which also carries `announce` (a pub/sub
    channel and message, such as a job's completion event) when given."""
    if redis is None:
        _LOCAL_CHECKS.labels(kind=kind, outcome=outcome, purpose=purpose).inc()
        _LOCAL_LATENCY.labels(kind=kind).observe(seconds)
        if queue_wait is not None:
            _LOCAL_QUEUE_WAIT.labels(type=purpose).observe(queue_wait)
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(CHECKS_KEY, f"{kind}|{outcome}|{purpose}", 1)
            pipe.hincrby(LATENCY_KEY, f"{kind}|{_bucket_for(seconds)}", 1)
            pipe.hincrbyfloat(LATENCY_KEY, f"{kind}|sum", seconds)
            if queue_wait is not None:
                pipe.hincrby(QUEUE_WAIT_KEY, f"{purpose}|{_bucket_for(queue_wait)}", 1)
                pipe.hincrbyfloat(QUEUE_WAIT_KEY, f"{purpose}|sum", queue_wait)
            if announce is not None:
                pipe.publish(*announce)
            await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics never break a check; a lost event only delays waiters
        log.warning("check metric not recorded: %s", type(exc).__name__)


async def record_checks(redis, checks: list[tuple[str, str, float, str]]) -> None:
    """Count a batch of checks, each (kind, outcome, seconds, purpose), in one Redis round trip (the
    health sweep writes its counts per batch, not per check)."""
    if not checks:
        return
    if redis is None:
        for kind, outcome, seconds, purpose in checks:
            _LOCAL_CHECKS.labels(kind=kind, outcome=outcome, purpose=purpose).inc()
            _LOCAL_LATENCY.labels(kind=kind).observe(seconds)
        return
    counts: dict[str, int] = {}
    buckets: dict[str, int] = {}
    sums: dict[str, float] = {}
    for kind, outcome, seconds, purpose in checks:
        counts[f"{kind}|{outcome}|{purpose}"] = counts.get(f"{kind}|{outcome}|{purpose}", 0) + 1
        bucket = f"{kind}|{_bucket_for(seconds)}"
        buckets[bucket] = buckets.get(bucket, 0) + 1
        sums[f"{kind}|sum"] = sums.get(f"{kind}|sum", 0.0) + seconds
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for field, n in counts.items():
                pipe.hincrby(CHECKS_KEY, field, n)
            for field, n in buckets.items():
                pipe.hincrby(LATENCY_KEY, field, n)
            for field, total in sums.items():
                pipe.hincrbyfloat(LATENCY_KEY, field, total)
            await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics never break a sweep
        log.warning("check metrics not recorded: %s", type(exc).__name__)


# Without Redis (the embedded mode) checks are counted in the process that made them, under the same names.
# `llm-providers run` gives its processes one PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess
# mode, files under the data dir), so the API's scrape adds up the worker's counts; processes started one by
# one without Redis report only their own.
_LOCAL = CollectorRegistry()
_LOCAL_CHECKS = Counter("llmp_checks", "Live checks by kind, outcome and purpose", ["kind", "outcome", "purpose"],
                        registry=_LOCAL)
_LOCAL_LATENCY = Histogram("llmp_check_latency_seconds", "Live check latency", ["kind"],
                           buckets=LATENCY_BUCKETS, registry=_LOCAL)
_LOCAL_QUEUE_WAIT = Histogram("llmp_job_queue_wait_seconds", "Time jobs wait for a worker", ["type"],
                              buckets=LATENCY_BUCKETS, registry=_LOCAL)
_LOCAL_NAMES = {"llmp_checks", "llmp_check_latency_seconds", "llmp_job_queue_wait_seconds"}


def _local_families() -> list:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return list(_LOCAL.collect())
    from prometheus_client.multiprocess import MultiProcessCollector

    every_process = CollectorRegistry()
    MultiProcessCollector(every_process)
    # The directory also holds the API's own counters, which REGISTRY already reports.
    return [family for family in every_process.collect() if family.name in _LOCAL_NAMES]


def _histogram(name: str, doc: str, label: str, raw: dict[str, str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    per_label: dict[str, dict[str, float]] = {}
    for field, value in raw.items():
        key, _, bucket = field.rpartition("|")
        per_label.setdefault(key, {})[bucket] = float(value)
    for key, buckets in per_label.items():
        cumulative, points = 0.0, []
        for bound in (*map(str, LATENCY_BUCKETS), "+Inf"):
            cumulative += buckets.get(bound, 0.0)
            points.append((bound, cumulative))
        family.add_metric([key], points, buckets.get("sum", 0.0))
    return family


async def scrape(ctx) -> bytes:
    """The whole exposition: process-local metrics, worker counts from Redis, state from the database."""
    from prometheus_client import REGISTRY

    families = []
    if ctx.redis is None:
        families += _local_families()
    else:
        try:
            checks, latency, waits = await _read_hashes(ctx.redis)
            counter = CounterMetricFamily("llmp_checks", "Live checks by kind, outcome and purpose",
                                          labels=["kind", "outcome", "purpose"])
            for field, value in checks.items():
                counter.add_metric(field.split("|"), float(value))
            families += [counter,
                         _histogram("llmp_check_latency_seconds", "Live check latency", "kind", latency),
                         _histogram("llmp_job_queue_wait_seconds", "Time jobs wait for a worker", "type", waits)]
        except Exception as exc:  # noqa: BLE001 - the rest of the scrape still answers
            log.warning("worker metrics unavailable: %s", type(exc).__name__)
    try:
        families += await _state_families()
    except Exception as exc:  # noqa: BLE001 - a database blip must not fail the scrape of the rest
        log.warning("state metrics unavailable: %s", type(exc).__name__)
    return generate_latest(REGISTRY) + generate_latest(_Families(families))


async def _read_hashes(redis) -> tuple[dict, dict, dict]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(CHECKS_KEY).hgetall(LATENCY_KEY).hgetall(QUEUE_WAIT_KEY)
        raw = await pipe.execute()
    return tuple({k.decode(): v.decode() for k, v in h.items()} for h in raw)


async def _state_families() -> list:
    from tortoise.functions import Count

    from models.jobs import Job
    from models.ops import Alert, Heartbeat
    from models.providers import ActiveProvider, ProviderRecord

    jobs = GaugeMetricFamily("llmp_jobs", "Jobs by type and status", labels=["type", "status"])
    for row in await Job.all().group_by("type", "status").annotate(n=Count("id")).values("type", "status", "n"):
        jobs.add_metric([row["type"], row["status"]], row["n"])
    from tortoise.expressions import Subquery

    active_ids = Subquery(ActiveProvider.all().values("provider_id"))
    health = GaugeMetricFamily("llmp_active_providers", "Active providers by health status", labels=["status"])
    counts = {s: 0 for s in ("unknown", "healthy", "failing")}
    for row in await ProviderRecord.filter(id__in=active_ids).group_by("health_status") \
            .annotate(n=Count("id")).values("health_status", "n"):
        counts[row["health_status"]] = row["n"]
    for status, n in counts.items():
        health.add_metric([status], n)
    from service.alerts import ALERT_KINDS

    alerts = GaugeMetricFamily("llmp_open_alerts", "Open alerts by kind", labels=["kind"])
    open_counts = dict.fromkeys(ALERT_KINDS, 0)  # every kind, so "no open alert" is a 0, not a gap
    for row in await Alert.filter(status="open").group_by("kind").annotate(n=Count("id")).values("kind", "n"):
        open_counts[row["kind"]] = row["n"]
    for kind, n in open_counts.items():
        alerts.add_metric([kind], n)
    age = GaugeMetricFamily("llmp_heartbeat_age_seconds", "Seconds since a component was last heard from",
                            labels=["component"])
    now = datetime.now(timezone.utc)
    for beat in await Heartbeat.all():
        age.add_metric([beat.component], (now - beat.seen_at).total_seconds())
    return [jobs, health, alerts, age]


class _Families:
    def __init__(self, families) -> None:
        self._families = families

    def collect(self):
        return iter(self._families)
