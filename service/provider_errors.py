"""Failure reports from the AI services: counted, shown to operators, and fed into provider health."""
from __future__ import annotations

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


class ProviderErrorReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org: str = Field(min_length=1, max_length=128)
    feature: Feature
    code: str = Field(min_length=1, max_length=64)
    message: str = Field("", max_length=2000)
    provider_id: str | None = Field(None, max_length=64)


async def report_provider_error(ctx: ServiceContext, principal: Principal, report: ProviderErrorReport) -> dict:
    if report.code not in ERROR_CODES:
        raise InvalidInput({"code": "must be one of " + ", ".join(ERROR_CODES)})
    from service.metrics import PROVIDER_ERROR_REPORTS

    PROVIDER_ERROR_REPORTS.labels(feature=report.feature, code=report.code).inc()
    pointer = await ActiveProvider.get_or_none(org=report.org)
    if pointer is None:
        return {"recorded": False, "provider_id": None, "health": None}
    record = await ProviderRecord.get(id=pointer.provider_id)
    key = None
    try:
        key = ctx.vault.decrypt(record.org, str(record.id), record.key_ciphertext)
    except Exception:  # noqa: BLE001 - without the key only masked-key patterns are redacted
        pass
    message = excerpt(report.message, key, limit=300) or report.code
    error = {"code": report.code, "message": f"Reported by the {report.feature} service: {message}",
             "provider_status": None, "provider_request_id": None, "source": "ai_service"}
    change = await record_health(ctx, record.id, False, error)
    await open_alert(ctx, "provider_errors", str(record.id),
                     f"AI services report failed calls to the active provider {record.name!r} ({record.kind}) of "
                     f"org {record.org}: {report.code} in {report.feature}.", org=record.org, provider_id=record.id)
    record = await ProviderRecord.get(id=record.id)
    return {"recorded": True, "provider_id": str(record.id), "health": {
        "status": record.health_status,
        "checked_at": record.health_checked_at.isoformat() if record.health_checked_at else None,
        "consecutive_failures": record.health_consecutive_failures, "last_error": record.health_last_error}
        if change else None}
