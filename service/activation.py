"""Which provider is an org's active one: activation after a passed check, checked updates, deactivation.

Each write here runs inside the caller's transaction; the `active_providers` primary key (one row per
org) is what keeps "exactly one active" true under concurrency.
"""
from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr
from tortoise.transactions import in_transaction

from models.jobs import Job
from models.providers import ActiveProvider, ProviderRecord
from service.audit import record_audit
from service.auth import Principal
from service.context import ServiceContext
from service.providers.registry import get_adapter
from service.providers.target import ProviderTarget
from service.records import apply_update
from service.resolve import announce_provider_change

log = logging.getLogger("llmp.activation")


def _now():
    from service.jobs import now

    return now()


async def _locked_record(job: Job) -> ProviderRecord | None:
    return await ProviderRecord.filter(id=job.provider_id, org=job.org).select_for_update().first()


async def set_active(org: str, record: ProviderRecord, actor: str) -> None:
    """Point the org at `record`. Update first, insert when the org had none; a concurrent insert makes
    this raise IntegrityError and the caller retries its transaction."""
    values = {"provider_id": record.id, "checked_version": record.version, "activated_at": _now(),
              "activated_by": actor}
    if not await ActiveProvider.filter(org=org).update(**values):
        await ActiveProvider.create(org=org, **values)


def _adopt_proven_base(ctx: ServiceContext, record: ProviderRecord, check) -> bool:
    """Store the base the check proved where the record's own spelling would give another one (an
    OpenAI-compatible endpoint typed without the `/v1` its server needs), so what `resolve` hands the AI
    services is the base that worked. Returns whether the endpoint changed."""
    if not check.base_url:
        return False
    target = ProviderTarget(kind=record.kind, model=record.model, api_key=SecretStr(""), endpoint=record.endpoint,
                            api_version=record.api_version)
    endpoint = get_adapter(record.kind).endpoint_for_base(target, ctx.settings, check.base_url)
    if endpoint is None or endpoint == record.endpoint:
        return False
    log.info("provider %s: endpoint %s stored as %s, the base its check proved", record.id, record.endpoint, endpoint)
    record.endpoint = endpoint
    return True


def _mark_healthy(record: ProviderRecord, checked_at) -> None:
    record.health_status = "healthy"
    record.health_checked_at = checked_at
    record.health_consecutive_failures = 0
    record.health_last_error = None


async def _still_the_checked_record(job: Job, check) -> tuple[ProviderRecord | None, str | None]:
    """The job's record, locked, when the check passed and the record is still the one checked;
    otherwise the outcome that stops the job."""
    if not check.ok:
        return None, "check_failed"
    record = await _locked_record(job)
    if record is None:
        return None, "provider_deleted"
    if record.version != job.expected_version:
        return None, "provider_changed"
    return record, None


async def apply_activation(ctx: ServiceContext, job: Job, check, changes: dict[str, Any]) -> tuple[str, str]:
    record, refusal = await _still_the_checked_record(job, check)
    if refusal:
        return "failed", refusal
    _mark_healthy(record, check.checked_at)
    adopted = ["endpoint"] if _adopt_proven_base(ctx, record, check) else []
    await record.save(update_fields=["health_status", "health_checked_at", "health_consecutive_failures",
                                     "health_last_error", "updated_at", *adopted])
    await set_active(job.org, record, job.requested_by)
    return "succeeded", "activated"


async def apply_checked_update(ctx: ServiceContext, job: Job, check, changes: dict[str, Any]) -> tuple[str, str]:
    record, refusal = await _still_the_checked_record(job, check)
    if refusal:
        return "failed", refusal
    _mark_healthy(record, check.checked_at)
    record = await apply_update(ctx, record, changes)
    if _adopt_proven_base(ctx, record, check):
        await record.save(update_fields=["endpoint", "updated_at"])
    await ActiveProvider.filter(org=job.org, provider_id=record.id).update(checked_version=record.version)
    return "succeeded", "updated"


# Jobs that change state; a test job only records its result (service.job_runner).
JOB_APPLIERS = {"activate": apply_activation, "update": apply_checked_update}


async def deactivate(ctx: ServiceContext, principal: Principal) -> bool:
    """Clear the org's active provider; records stay. Idempotent; returns whether one was active."""
    async with in_transaction():  # the change and its audit entry, or neither
        pointer = await ActiveProvider.get_or_none(org=principal.org)
        removed = await ActiveProvider.filter(org=principal.org).delete()
        await record_audit(principal, "deactivate", "ok" if removed else "ok:none_active",
                           provider_id=pointer.provider_id if pointer else None)
    await announce_provider_change(ctx, principal.org)
    return bool(removed)
