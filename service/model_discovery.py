"""Which models a key can use: one list-models request per kind, for the admin page's "Fetch models".

Each kind's lister builds its request from the kind's adapter (same base URL, same auth headers as the
checks) and reads the provider's list format. Requests go through the shared egress client, so the
egress guard applies exactly as for checks, and error answers are judged by the adapter's own
`evaluate` (same codes, same redacted admin messages). The key never appears in what this returns.

| kind              | request                                                                  |
|-------------------|--------------------------------------------------------------------------|
| openai            | GET {base}/models, Bearer                                                |
| openai_compatible | GET {base}/models, Bearer; the other base spelling on 404/405           |
| anthropic         | GET {base}/v1/models?limit=1000, x-api-key + anthropic-version           |
| gemini            | GET {base}/v1beta/models?pageSize=1000, x-goog-api-key                   |
| azure_openai      | GET {endpoint}/openai/deployments?api-version=V (dated versions) or      |
|                   | GET {endpoint}/openai/v1/models (api_version v1), api-key                |
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from service.checks import CheckError, CheckResult, ERROR_CODES
from service.egress import EgressClient, EndpointBlocked, TransportError
from service.providers.anthropic import ANTHROPIC_VERSION
from service.providers.base import ProviderAdapter, ProviderRequest, ProviderResponse, join_url, key_value
from service.providers.registry import get_adapter
from service.providers.target import ProviderTarget
from service.redact import redact
from service.validation import DiscoverModelsRequest, check_kind_fields

log = logging.getLogger("llmp.discovery")

MAX_MODELS = 1000
MAX_LIST_BYTES = 8 * 1024 * 1024  # some servers (OpenRouter) describe hundreds of models in one answer


def candidate_target(data: DiscoverModelsRequest) -> ProviderTarget:
    """What discovery with candidate credentials must reach (no model is named yet)."""
    check_kind_fields(data.kind, data.model_dump())
    return ProviderTarget(kind=data.kind, model="", api_key=data.api_key, endpoint=data.endpoint,
                          api_version=data.api_version)


@dataclass(frozen=True)
class Discovery:
    """The models a key can use, or why they could not be listed (`error` in the check result's shape)."""

    models: list[str]
    error: CheckResult | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ModelLister:
    """How one kind lists models: the requests to try in order, and how to read a 2xx answer."""

    requests: Callable[[Any, ProviderTarget, Any], list[ProviderRequest]]
    parse: Callable[[Any], list[str] | None]  # None: the answer is not the provider's list format


# --- one lister per kind ---------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str], **variant: Any) -> ProviderRequest:
    return ProviderRequest("GET", url, headers, None, "models", variant)


def _openai_requests(adapter, target: ProviderTarget, settings: Any) -> list[ProviderRequest]:
    return [_get(join_url(adapter.base_url(target, settings), "models"), adapter.auth_headers(target))]


def _compatible_requests(adapter, target: ProviderTarget, settings: Any) -> list[ProviderRequest]:
    return [_get(join_url(base, "models"), adapter.auth_headers(target), base=i)
            for i, base in enumerate(adapter.candidate_bases(target))]


def _anthropic_requests(adapter, target: ProviderTarget, settings: Any) -> list[ProviderRequest]:
    headers = {"x-api-key": key_value(target), "anthropic-version": ANTHROPIC_VERSION}
    return [_get(join_url(adapter.base_url(target, settings), "v1/models") + "?limit=1000", headers)]


def _gemini_requests(adapter, target: ProviderTarget, settings: Any) -> list[ProviderRequest]:
    headers = {"x-goog-api-key": key_value(target)}
    return [_get(join_url(adapter.base_url(target, settings), "v1beta/models") + "?pageSize=1000", headers)]


def _azure_requests(adapter, target: ProviderTarget, settings: Any) -> list[ProviderRequest]:
    base = adapter.base_url(target, settings)
    if adapter.is_v1(target):
        return [_get(join_url(base, "openai/v1/models"), adapter.auth_headers(target))]
    version = quote((target.api_version or "").strip(), safe="")
    return [_get(join_url(base, "openai/deployments") + f"?api-version={version}", adapter.auth_headers(target))]


def _ids_in_data(payload: Any) -> list[str] | None:
    """OpenAI's list shape (also Anthropic's and Azure's deployments): {"data": [{"id": ...}, ...]}."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return None
    return [str(item["id"]) for item in payload["data"] if isinstance(item, dict) and item.get("id")]


def _gemini_models(payload: Any) -> list[str] | None:
    """{"models": [{"name": "models/gemini-2.5-flash", "supportedGenerationMethods": [...]}]}: the models
    that can generate content, without the "models/" prefix. No models at all is answered as `{}`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("models", []), list):
        return None
    names = []
    for item in payload.get("models", []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        methods = item.get("supportedGenerationMethods")
        if isinstance(methods, list) and "generateContent" not in methods:
            continue
        names.append(item["name"].removeprefix("models/"))
    return names


LISTERS: dict[str, ModelLister] = {
    "openai": ModelLister(_openai_requests, _ids_in_data),
    "openai_compatible": ModelLister(_compatible_requests, _ids_in_data),
    "anthropic": ModelLister(_anthropic_requests, _ids_in_data),
    "gemini": ModelLister(_gemini_requests, _gemini_models),
    "azure_openai": ModelLister(_azure_requests, _ids_in_data),
}


# --- running a discovery ---------------------------------------------------------------------------


class _Failed(Exception):
    def __init__(self, code: str, message: str, response: ProviderResponse | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.response = code, message, response


async def discover_models(target: ProviderTarget, client: EgressClient, settings: Any) -> Discovery:
    """List the models `target`'s key can use, within `settings.check_timeout` seconds. Never raises for
    provider or transport problems: those come back as `Discovery.error`, classified like a check."""
    adapter = get_adapter(target.kind)
    lister = LISTERS[target.kind]
    budget = float(settings.check_timeout)
    deadline = time.monotonic() + budget
    started = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            models = await _list(adapter, lister, target, client, settings, deadline)
    except TimeoutError:
        failure = _Failed("timeout", f"{adapter.label} gave no usable answer within {budget:g} s.")
    except _Failed as exc:
        failure = exc
    else:
        unique = sorted(set(models))[:MAX_MODELS]
        log.info("discover kind=%s ok=True count=%d took_ms=%d", target.kind, len(unique),
                 (time.monotonic() - started) * 1000)
        return Discovery(models=unique)
    log.info("discover kind=%s ok=False code=%s took_ms=%d", target.kind, failure.code,
             (time.monotonic() - started) * 1000)
    return Discovery(models=[], error=_failure_result(adapter, target.api_key, failure))


async def _list(adapter: ProviderAdapter, lister: ModelLister, target: ProviderTarget, client: EgressClient,
                settings: Any, deadline: float) -> list[str]:
    requests = lister.requests(adapter, target, settings)
    for index, request in enumerate(requests):
        try:
            raw = await client.request(request.method, request.url, headers=request.headers,
                                       timeout=max(deadline - time.monotonic(), 0.001), max_body=MAX_LIST_BYTES)
        except EndpointBlocked as exc:
            raise _Failed("endpoint_blocked", exc.message) from None
        except TransportError as exc:
            raise _Failed(exc.code, exc.message) from None
        response = ProviderResponse(raw.status, raw.headers, raw.body, raw.elapsed)
        if 200 <= response.status < 300:
            models = lister.parse(response.json())
            if models is None:
                raise _Failed("unexpected_response", f"The endpoint answered ({response.status}) with something "
                              f"that is not the {adapter.label} models list. Check the endpoint URL.", response)
            return models
        verdict = adapter.evaluate(request, response, target.api_key)
        code, message = verdict.code or "unexpected_response", verdict.message or "The request failed."
        if code == "model_not_found":  # no model was named: a 404 here means the address is wrong
            code, message = "bad_request", (f"{adapter.label} has no models list at this address "
                                            f"({response.status}). Check the endpoint URL.")
        if response.status in (404, 405) and index + 1 < len(requests):
            continue  # the other base spelling (OpenAI-compatible servers)
        raise _Failed(code, message, response)
    raise _Failed("unexpected_response", "No request could list the models.")  # pragma: no cover


def _failure_result(adapter: ProviderAdapter, key: SecretStr, failure: _Failed) -> CheckResult:
    response = failure.response
    request_id = adapter.request_id(response) if response is not None else None
    error = CheckError(
        code=failure.code if failure.code in ERROR_CODES else "unexpected_response",
        message=redact(failure.message, key),
        provider_status=response.status if response is not None else None,
        provider_request_id=redact(request_id, key) if request_id else None,
    )
    return CheckResult(ok=False, checked_at=datetime.now(timezone.utc), error=error)
