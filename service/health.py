"""Provider health with hysteresis: `failing` after N consecutive failed checks, healthy after one success.

Health checks (the periodic sweep) and failure reports from the AI services both feed it. Flagging
opens one `provider_failing` alert per incident; recovery resolves it (and any `provider_errors` alert).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from tortoise.transactions import in_transaction

from models.providers import ProviderRecord
from service.alerts import open_alert, resolve_alert
from service.context import ServiceContext


@dataclass
class HealthChange:
    previous: str
    current: str
    consecutive_failures: int

    @property
    def flagged(self) -> bool:
        return self.current == "failing" and self.previous != "failing"

    @property
    def recovered(self) -> bool:
        return self.current == "healthy" and self.previous == "failing"


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
    if change.flagged:
        code = (error or {}).get("code", "unknown")
        await open_alert(ctx, "provider_failing", str(record.id),
                         f"The active provider {record.name!r} ({record.kind}, model {record.model}) of org "
                         f"{record.org} failed {change.consecutive_failures} consecutive checks; last error: "
                         f"{code}.", org=record.org, provider_id=record.id)
    if change.recovered or (ok and previous != "healthy"):
        await resolve_alert(ctx, "provider_failing", str(record.id))
        await resolve_alert(ctx, "provider_errors", str(record.id))
    if change.previous != change.current:
        from service.resolve import announce_provider_change

        await announce_provider_change(ctx, record.org)
    return change
