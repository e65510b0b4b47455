"""Live credential checks: one provider request (or a few, within one time budget) and a contract result.

`run_check` never raises for provider or transport problems: every outcome is a `CheckResult` whose error
code comes from the closed set `ERROR_CODES` and whose message is written for an admin and never carries
the key. Retries happen only where they can change the answer: a reset connection, a 5xx (Anthropic's 529
included), a 429 rate limit that asks for a short wait. Never on 400/401/403/404, never on a quota error.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, retry_if_result, stop_after_attempt

from service.egress import EgressClient, EndpointBlocked, TransportError
from service.providers.base import ProviderAdapter, ProviderRequest, ProviderResponse, Verdict, sentence
from service.providers.registry import UnknownKind, get_adapter
from service.providers.target import ProviderTarget
from service.redact import redact

log = logging.getLogger(__name__)

ErrorCode = Literal[
    "invalid_api_key",
    "permission_denied",
    "model_not_found",
    "rate_limited",
    "quota_exceeded",
    "bad_request",
    "provider_error",
    "timeout",
    "unreachable",
    "tls_error",
    "endpoint_blocked",
    "unexpected_response",
]
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)

MAX_ATTEMPTS = 3  # sends of one request shape (first try + 2 retries)
MAX_SHAPES = 3  # differently shaped requests per check (see ProviderAdapter.next_request)
MAX_RATE_LIMIT_WAIT = 2.0  # seconds: a longer Retry-After is reported, not waited out
MIN_ATTEMPT_TIME = 0.2  # seconds a retry needs at least, or it is not started


class CheckError(BaseModel):
    """Why a check failed, as the contract shows it."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    provider_status: int | None = None
    provider_request_id: str | None = None


class CheckResult(BaseModel):
    """The contract's check result. `base_url` (not part of the contract shape) is the base that answered."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    latency_ms: int | None = None
    model: str | None = None
    checked_at: datetime
    error: CheckError | None = None
    base_url: str | None = Field(default=None, exclude=True)

    def as_dict(self) -> dict[str, Any]:
        """Exactly the contract's shape: {ok, latency_ms, model, checked_at} or {ok, error, checked_at}."""
        checked_at = _iso_utc(self.checked_at)
        if self.ok:
            return {"ok": True, "latency_ms": self.latency_ms, "model": self.model, "checked_at": checked_at}
        assert self.error is not None
        return {"ok": False, "error": self.error.model_dump(), "checked_at": checked_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Read back what `as_dict` wrote (for jobs and stored health)."""
        return cls.model_validate(data)

    @classmethod
    def failure(cls, code: str, message: str, *, provider_status: int | None = None,
                provider_request_id: str | None = None) -> CheckResult:
        error = CheckError(code=code, message=message, provider_status=provider_status,
                           provider_request_id=provider_request_id)
        return cls(ok=False, checked_at=datetime.now(timezone.utc), error=error)


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Attempt:
    """What one send produced: an answer and its verdict, or only a verdict (no usable answer)."""

    verdict: Verdict
    response: ProviderResponse | None = None


async def run_check(
    target: ProviderTarget, client: EgressClient, settings: Any, *, probe: bool = False
) -> CheckResult:
    """Check `target` live and return the contract result, within `settings.check_timeout` seconds in all.

    `probe=True` uses the kind's free model-metadata request where it has one (periodic health), else the
    minimal generation request that Test and Activate use.
    """
    budget = float(settings.check_timeout)
    started = time.monotonic()
    try:
        adapter = get_adapter(target.kind)
    except UnknownKind:
        return CheckResult.failure("bad_request", f"Unknown provider kind {target.kind!r}.")
    request: ProviderRequest | None = None
    try:
        async with asyncio.timeout(budget):
            request, attempt = await _check(adapter, target, client, settings, probe, started + budget)
    except TimeoutError:
        attempt = _Attempt(Verdict.failure("timeout", f"{sentence(adapter.label)} gave no usable answer within {budget:g} s."))
    except Exception as exc:  # a bug must not take the caller down with it, nor leak the key into logs
        log.error("check failed unexpectedly: kind=%s error=%s", target.kind, redact(repr(exc), target.api_key))
        attempt = _Attempt(Verdict.failure("unexpected_response", f"The check failed unexpectedly ({type(exc).__name__})."))
    result = _result(adapter, target, settings, request, attempt)
    log.info(
        "check kind=%s model=%s probe=%s ok=%s code=%s status=%s took_ms=%d",
        target.kind, target.model, probe, result.ok, result.error.code if result.error else None,
        result.error.provider_status if result.error else 200, (time.monotonic() - started) * 1000,
    )
    return result


async def _check(
    adapter: ProviderAdapter, target: ProviderTarget, client: EgressClient, settings: Any, probe: bool, deadline: float
) -> tuple[ProviderRequest, _Attempt]:
    """Send the check (or probe) request, and the follow-up shapes the adapter asks for."""
    request = (adapter.build_probe_request(target, settings) if probe else None) or adapter.build_check_request(
        target, settings
    )
    attempt = await _send_with_retries(adapter, client, request, target, deadline)
    for _ in range(MAX_SHAPES - 1):
        if attempt.verdict.ok or attempt.response is None:
            break
        follow = adapter.next_request(target, settings, request, attempt.response, attempt.verdict)
        if follow is None:
            break
        request = follow
        attempt = await _send_with_retries(adapter, client, request, target, deadline)
    return request, attempt


async def _send_with_retries(
    adapter: ProviderAdapter, client: EgressClient, request: ProviderRequest, target: ProviderTarget, deadline: float
) -> _Attempt:
    async def send() -> _Attempt:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _Attempt(Verdict.failure("timeout", f"{sentence(adapter.label)} gave no usable answer in time."))
        try:
            raw = await client.request(
                request.method, request.url, headers=request.headers, json=request.json, timeout=remaining
            )
        except EndpointBlocked as exc:
            return _Attempt(Verdict.failure("endpoint_blocked", exc.message))
        except TransportError as exc:
            if exc.retryable:
                raise
            return _Attempt(Verdict.failure(exc.code, exc.message))
        response = ProviderResponse(raw.status, raw.headers, raw.body, raw.elapsed)
        return _Attempt(adapter.evaluate(request, response, target.api_key), response)

    def out_of_time(state: RetryCallState) -> bool:
        return time.monotonic() + (state.upcoming_sleep or 0) + MIN_ATTEMPT_TIME > deadline

    retrying = AsyncRetrying(
        stop=stop_after_attempt(MAX_ATTEMPTS) | out_of_time,
        wait=_wait,
        retry=retry_if_exception_type(TransportError) | retry_if_result(_worth_retrying),
        retry_error_callback=_last_attempt,
    )
    return await retrying(send)


def _worth_retrying(attempt: _Attempt) -> bool:
    """5xx/529 and short rate-limit waits can change the answer; 4xx, quota and transport codes cannot."""
    response, verdict = attempt.response, attempt.verdict
    if response is None or verdict.ok:
        return False
    if response.status >= 500:
        return True
    return (
        verdict.code == "rate_limited"
        and verdict.retry_after is not None
        and verdict.retry_after <= MAX_RATE_LIMIT_WAIT
    )


def _wait(state: RetryCallState) -> float:
    """The provider's Retry-After when it gave one, else a short exponential backoff with jitter."""
    outcome = state.outcome
    if outcome is not None and not outcome.failed:
        retry_after = outcome.result().verdict.retry_after
        if retry_after is not None:
            return retry_after
    return min(0.25 * 2 ** (state.attempt_number - 1), 2.0) + random.uniform(0, 0.1)


def _last_attempt(state: RetryCallState) -> _Attempt:
    """When retries stop: the last answer, or the last transport failure as a verdict."""
    assert state.outcome is not None
    if state.outcome.failed:
        exc = state.outcome.exception()
        if isinstance(exc, TransportError):
            return _Attempt(Verdict.failure(exc.code, exc.message))
        raise exc  # not a transport problem: run_check's last resort handles it
    return state.outcome.result()


def _result(
    adapter: ProviderAdapter,
    target: ProviderTarget,
    settings: Any,
    request: ProviderRequest | None,
    attempt: _Attempt,
) -> CheckResult:
    response, verdict = attempt.response, attempt.verdict
    now = datetime.now(timezone.utc)
    if verdict.ok and response is not None and request is not None:
        return CheckResult(
            ok=True,
            latency_ms=max(int(response.elapsed * 1000), 0),
            model=target.model,
            checked_at=now,
            base_url=adapter.resolved_base_url(target, settings, request),
        )
    code = verdict.code if verdict.code in ERROR_CODES else "unexpected_response"
    request_id = adapter.request_id(response) if response is not None else None
    error = CheckError(
        code=code,
        message=redact(verdict.message or "The check failed.", target.api_key),
        provider_status=response.status if response is not None else None,
        provider_request_id=redact(request_id, target.api_key) if request_id else None,
    )
    return CheckResult(ok=False, checked_at=now, error=error)
