"""Response shapes (for the OpenAPI document and tests) and reading request bodies."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from service.errors import InvalidInput
from service.validation import ProviderCreate, ProviderUpdate  # noqa: F401 - request shapes, re-exported


BODY_READ_TIMEOUT = 10.0  # seconds a client may take to send its (at most 64 KiB) body


async def read_json(request: web.Request) -> Any:
    """The decoded body; 400 for malformed JSON or invalid UTF-8 (unpaired surrogate escapes included),
    408 when the body trickles in slower than `BODY_READ_TIMEOUT`, 413 (via aiohttp) past the size cap,
    422 for a string holding a NUL character (no database column can store one)."""
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT):
            raw = await request.read()
    except TimeoutError:
        error = ApiError(408, "request_timeout", "The request body did not arrive in time.")
        error.force_close()
        raise error from None
    if not raw:
        raise ApiError(400, "malformed_json", "The request body must be a JSON object.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "The request body is not valid UTF-8.") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "The request body is not valid JSON.") from None
    problem = _unstorable_string(data)
    if problem == "surrogate":
        raise ApiError(400, "malformed_json", "The request body is not valid UTF-8 (an unpaired surrogate).")
    if problem is not None:
        raise InvalidInput({problem: "must not contain NUL characters"})
    return data


def _unstorable_string(data: Any, path: str = "") -> str | None:
    """"surrogate" when a string (key or value) holds an unpaired surrogate, the dotted path of the first
    string holding a NUL character, else None."""
    stack = [(data, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                found = _bad_text(key, name) or _bad_text(item, name)
                if found:
                    return found
                stack.append((item, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                name = f"{where}.{index}" if where else str(index)
                found = _bad_text(item, name)
                if found:
                    return found
                stack.append((item, name))
        else:
            found = _bad_text(value, where or "body")
            if found:
                return found
    return None


def _bad_text(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    return where if "\x00" in value else None


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(_Out):
    error: ErrorDetail


class HealthOut(_Out):
    status: Literal["unknown", "healthy", "failing"]
    checked_at: str | None
    consecutive_failures: int
    last_error: dict[str, Any] | None


class ProviderOut(_Out):
    id: str
    kind: str
    name: str
    model: str
    endpoint: str | None
    api_version: str | None
    key_set: bool
    key_last4: str
    is_active: bool
    health: HealthOut
    supported_features: list[str]
    created_at: str
    updated_at: str


class ProviderListOut(_Out):
    items: list[ProviderOut]
    active_provider_id: str | None


class CatalogKindOut(_Out):
    kind: str
    label: str
    required_fields: list[str]
    optional_fields: list[str]
    default_base_url: str | None
    example_models: list[str]
    supports_tool_calling: bool
    supported_features: list[str]
    hints: dict[str, str]
    docs_url: str | None


class CatalogOut(_Out):
    kinds: list[CatalogKindOut]
    features: list[str]
    tool_calling_features: list[str]


class AuditEntryOut(_Out):
    id: int
    actor: str
    actor_role: str
    action: str
    provider_id: str | None
    outcome: str
    details: dict[str, Any]
    created_at: str


class AuditPageOut(_Out):
    items: list[AuditEntryOut]
    next_cursor: int | None


class CheckErrorOut(_Out):
    code: str
    message: str
    provider_status: int | None
    provider_request_id: str | None


class CheckResultOut(_Out):
    ok: bool
    latency_ms: int | None = None
    model: str | None = None
    error: CheckErrorOut | None = None
    checked_at: str


class JobOut(_Out):
    id: str
    type: Literal["test", "activate", "update"]
    provider_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    result: CheckResultOut | None
    outcome: str | None = None
    created_at: str
    started_at: str | None
    finished_at: str | None


class JobAcceptedOut(_Out):
    job_id: str
    status: str


class DeactivatedOut(_Out):
    active_provider_id: None = Field(default=None)


class ProbeOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str


class ResolvedProviderOut(_Out):
    id: str
    kind: str
    model: str
    base_url: str
    api_version: str | None
    api_key: str
    health: dict[str, Any]


class ResolvedOut(_Out):
    source: Literal["default", "byo"]
    quota_bypassed: bool
    provider: ResolvedProviderOut | None


class ProviderErrorReportOut(_Out):
    recorded: bool
    provider_id: str | None
    health: HealthOut | None


class AlertOut(_Out):
    id: str
    kind: Literal["provider_failing", "provider_errors", "workers_silent", "scheduler_silent"]
    status: Literal["open", "resolved"]
    org: str | None
    provider_id: str | None
    message: str
    opened_at: str
    resolved_at: str | None


class AlertListOut(_Out):
    items: list[AlertOut]
