"""Heartbeats of workers and the scheduler, and alerts when one has been silent too long.

A component never heard from is reported as such but not alerted on (an API-only deployment is not an
incident); one that was heard from and then fell silent for `SILENT_AFTER` is. Heartbeats come every
minute, so a broker blip shorter than two minutes never opens an alert.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tortoise.exceptions import IntegrityError

from models.ops import Heartbeat
from service.alerts import open_alert, resolve_alert
from service.context import ServiceContext

SILENT_AFTER = timedelta(minutes=3)
COMPONENTS = {"worker": "workers_silent", "scheduler": "scheduler_silent"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def record_heartbeat(ctx: ServiceContext, component: str, detail: str | None = None) -> None:
    now = _now()
    if not await Heartbeat.filter(component=component).update(seen_at=now, detail=detail):
        try:
            await Heartbeat.create(component=component, seen_at=now, detail=detail)
        except IntegrityError:
            await Heartbeat.filter(component=component).update(seen_at=now, detail=detail)
    await resolve_alert(ctx, COMPONENTS[component], component)


async def liveness_report() -> dict:
    """For each component: when it was last heard from, and whether it is silent."""
    beats = {b.component: b for b in await Heartbeat.filter(component__in=list(COMPONENTS))}
    now = _now()
    report = {}
    for component in COMPONENTS:
        beat = beats.get(component)
        if beat is None:
            report[component] = {"last_seen": None, "silent": False, "state": "never_seen"}
        else:
            silent = now - beat.seen_at > SILENT_AFTER
            report[component] = {"last_seen": beat.seen_at.isoformat(), "silent": silent,
                                 "age_seconds": round((now - beat.seen_at).total_seconds(), 1),
                                 "state": "silent" if silent else "alive", "last_from": beat.detail}
    return report


async def evaluate_liveness(ctx: ServiceContext) -> dict:
    """Open an alert for each silent component (once per incident); returns the report."""
    report = await liveness_report()
    for component, state in report.items():
        if state["silent"]:
            await open_alert(ctx, COMPONENTS[component], component,
                             f"No {component} heartbeat since {state['last_seen']} "
                             f"({int(state['age_seconds'])} s); jobs and health sweeps may not be running.")
    return report


async def claim_interval(name: str, interval: float) -> bool:
    """A database compare-and-set that lets one caller per `interval` proceed, across processes and
    hosts: two schedulers started by mistake still sweep once."""
    now = _now()
    threshold = now - timedelta(seconds=interval * 0.8)
    if await Heartbeat.filter(component=name, seen_at__lt=threshold).update(seen_at=now):
        return True
    if await Heartbeat.exists(component=name):
        return False
    try:
        await Heartbeat.create(component=name, seen_at=now, detail="lock")
    except IntegrityError:
        return False
    return True
