"""Provider health with hysteresis: `failing` after N consecutive failed checks, healthy after one success.

Health checks (the periodic sweep) and failure reports from the AI services both feed it. Flagging
opens one `provider_failing` alert per incident; recovery resolves it (and any `provider_errors` alert).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from tortoise.transactions import in_transaction

from models.ops import Alert
from models.providers import ProviderRecord
from service.alerts import incident_key, open_alert, resolve_alert
from service.context import ServiceContext

PROVIDER_ALERTS = ("provider_failing", "provider_errors")


@dataclass
class HealthChange:
    previous: str
    current: str
    consecutive_failures: int


async def record_health(ctx: ServiceContext, provider_id, ok: bool, error: dict | None,
                        checked_at: datetime | None = None) -> HealthChange | None:
    """Apply one check outcome to the record's health; None when the record no longer exists."""
    checked_at = checked_at or datetime.now(timezone.utc)
    async with in_transaction():
        record = await ProviderRecord.filter(id=provider_id).select_for_update().first()
        if record is None:
            return None
        previous = record.health_status
        if ok:
            record.health_status, record.health_consecutive_failures, record.health_last_error = "healthy", 0, None
        else:
            record.health_consecutive_failures += 1
            record.health_last_error = error
            if record.health_consecutive_failures >= ctx.settings.health_failures_to_flag:
                record.health_status = "failing"
        record.health_checked_at = checked_at
        await record.save(update_fields=["health_status", "health_consecutive_failures", "health_last_error",
                                         "health_checked_at"])
    change = HealthChange(previous, record.health_status, record.health_consecutive_failures)
    if record.health_status == "failing":  # opens on flagging; re-tried while failing if that open was lost
        code = (error or {}).get("code", "unknown")
        await open_alert(ctx, "provider_failing", str(record.id),
                         f"The active provider {record.name!r} ({record.kind}, model {record.model}) of org "
                         f"{record.org} failed {change.consecutive_failures} consecutive checks; last error: "
                         f"{code}.", org=record.org, provider_id=record.id)
    if ok:  # any success ends the incident, whatever the status was (an activation may have reset it)
        await resolve_alert(ctx, "provider_failing", str(record.id))
        await resolve_alert(ctx, "provider_errors", str(record.id))
    if change.previous != change.current:
        from service.resolve import announce_provider_change

        await announce_provider_change(ctx, record.org)
    return change


@dataclass(frozen=True)
class Success:
    """A passed health check of one record, and the status it had when the sweep read it."""

    provider_id: uuid.UUID
    org: str
    previous_status: str


ANNOUNCE_EACH_UP_TO = 20  # more orgs changed in one batch: one "every org" eviction instead


async def record_successes(ctx: ServiceContext, successes: list[Success], checked_at: datetime) -> int:
    """Apply a batch of passed checks in one UPDATE (the sweep's common case); returns rows updated.

    A success needs no read of the record: whatever it was, it is now healthy with no failures. Open
    `provider_failing`/`provider_errors` alerts of these providers (one indexed query) are resolved,
    and every process forgets the orgs whose status changed.
    """
    if not successes:
        return 0
    ids = [s.provider_id for s in successes]
    updated = await ProviderRecord.filter(id__in=ids).update(
        health_status="healthy", health_consecutive_failures=0, health_last_error=None,
        health_checked_at=checked_at)
    keys = [incident_key(kind, str(pid)) for pid in ids for kind in PROVIDER_ALERTS]
    for key in await Alert.filter(open_key__in=keys).values_list("open_key", flat=True):
        kind, _, subject = key.partition(":")
        await resolve_alert(ctx, kind, subject)
    changed = sorted({s.org for s in successes if s.previous_status != "healthy"})
    if changed:
        from service.resolve import ALL_ORGS, announce_provider_change

        for org in changed if len(changed) <= ANNOUNCE_EACH_UP_TO else [ALL_ORGS]:
            await announce_provider_change(ctx, org)
    return updated
