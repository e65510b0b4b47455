"""Failure reports from the AI services: counted, shown to operators, and fed into provider health.

A report counts like a failed health check of the org's active provider. When it names the provider it
called (`provider_id`, as `resolve` handed it out) and that is no longer the active one (switched while the
call ran), it is only counted: the new provider's health does not pay for the old one's failure.
"""
from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.providers import ActiveProvider, ProviderRecord
from service.alerts import open_alert
from service.auth import Principal
from service.checks import ERROR_CODES
from service.context import ServiceContext
from service.errors import InvalidInput
from service.health import record_health
from service.providers.catalog import FEATURES
from service.redact import excerpt

Feature = Literal[FEATURES]  # type: ignore[valid-type]
NOT_RECORDED = {"recorded": False, "provider_id": None, "health": None}


class ProviderErrorReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org: str = Field(min_length=1, max_length=128)
    feature: Feature
    code: str = Field(min_length=1, max_length=64)
    message: str = Field("", max_length=2000)
    provider_id: str | None = Field(None, max_length=64)


async def _reported_record(report: ProviderErrorReport) -> tuple[ProviderRecord | None, bool]:
    """The record the report is about (None when unknown) and whether it is the org's active one."""
    pointer = await ActiveProvider.get_or_none(org=report.org)
    active_id = pointer.provider_id if pointer else None
    if report.provider_id is None:
        target_id = active_id
    else:
        try:
            target_id = uuid.UUID(report.provider_id)
        except ValueError:
            raise InvalidInput({"provider_id": "must be a provider id"}) from None
    if target_id is None:
        return None, False
    record = await ProviderRecord.get_or_none(id=target_id, org=report.org)
    return record, record is not None and record.id == active_id


async def report_provider_error(ctx: ServiceContext, principal: Principal, report: ProviderErrorReport) -> dict:
    if report.code not in ERROR_CODES:
        raise InvalidInput({"code": "must be one of " + ", ".join(ERROR_CODES)})
    from service.metrics import PROVIDER_ERROR_REPORTS

    PROVIDER_ERROR_REPORTS.labels(feature=report.feature, code=report.code).inc()
    record, active = await _reported_record(report)
    if record is None or not active:
        return NOT_RECORDED
    key = None
    try:
        key = ctx.vault.decrypt(record.org, str(record.id), record.key_ciphertext)
    except Exception:  # noqa: BLE001 - without the key only masked-key patterns are redacted
        pass
    message = excerpt(report.message, key, limit=300) or report.code
    error = {"code": report.code, "message": f"Reported by the {report.feature} service: {message}",
             "provider_status": None, "provider_request_id": None, "source": "ai_service"}
    change = await record_health(ctx, record.id, False, error)
    if change is None:  # deleted meanwhile
        return NOT_RECORDED
    await open_alert(ctx, "provider_errors", str(record.id),
                     f"AI services report failed calls to the active provider {record.name!r} ({record.kind}) "
                     f"of org {record.org}: {report.code} in {report.feature}.", org=record.org,
                     provider_id=record.id)
    record = await ProviderRecord.get(id=record.id)
    return {"recorded": True, "provider_id": str(record.id), "health": {
        "status": record.health_status,
        "checked_at": record.health_checked_at.isoformat() if record.health_checked_at else None,
        "consecutive_failures": record.health_consecutive_failures, "last_error": record.health_last_error}}
