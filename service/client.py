"""The client the platform's AI services use: which provider serves an org's feature, and chat calls through it.

    async with LLMProvidersClient("http://llm-providers:8080", token=SERVICE_TOKEN) as client:
        resolved = await client.resolve("acme", "triage")       # None: use the platform's own provider
        reply = await client.complete(resolved, [{"role": "user", "content": "..."}])

Fail closed: every case where an org's own provider is configured but cannot serve raises a subclass of
`ProviderUnavailable` (`FeatureUnsupported`, `CredentialsUnavailable`, `ResolverUnavailable`, or a failed
call); none of them means "use the platform default". Only `resolve` returning None does.

Async, on aiohttp, deliberately: the AI services run many LLM calls at once (agents, batch triage), and
aiohttp's pooled client scales with concurrency where httpx's does not (docs in
/work/shared/measurements); and provider calls go through this service's own `EgressClient`, so they get
the same SSRF guard (every resolved address checked at connect time, no redirects, capped bodies, the
`LLMP_EGRESS_ALLOW` rules) and the same transport error codes as the live checks. The chat requests are
built and judged by the same adapters as the checks, so a call fails with the same codes and messages an
admin sees when testing the provider.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
from pydantic import SecretStr

from service.egress import EgressClient, EndpointBlocked, TransportError
from service.providers.base import ChatReply, ProviderResponse, sentence
from service.providers.catalog import kind_spec
from service.providers.registry import UnknownKind, get_adapter
from service.providers.target import ProviderTarget
from service.redact import redact

__all__ = ["LLMProvidersClient", "ResolvedProvider", "ChatReply", "LLMProvidersError", "ProviderUnavailable",
           "FeatureUnsupported", "CredentialsUnavailable", "ResolverUnavailable", "InvalidRequest",
           "NotAuthorized"]

log = logging.getLogger("llmp.client")
RESOLVE_TIMEOUT = 5.0
REPORT_TIMEOUT = 5.0
CHAT_TIMEOUT = 120.0


class LLMProvidersError(Exception):
    """Base of the client's errors: `code` (snake_case) and a message for a person, never a key."""

    code = "llm_providers_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status  # the LLM Providers service's HTTP status, where it answered
        self.details = dict(details or {})


class ProviderUnavailable(LLMProvidersError):
    """The org's own provider cannot serve this call: fail the feature; never fall back to the platform."""

    code = "provider_unavailable"

    def __init__(self, message: str, *, provider_status: int | None = None, provider_request_id: str | None = None,
                 reported: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.provider_status = provider_status
        self.provider_request_id = provider_request_id
        self.reported = reported


class FeatureUnsupported(ProviderUnavailable):
    """The active provider's kind cannot serve this feature (tool calling on Anthropic or Gemini)."""

    code = "feature_unsupported_by_provider"


class CredentialsUnavailable(ProviderUnavailable):
    """The active provider's stored key cannot be decrypted; an admin must enter it again."""

    code = "credentials_unavailable"


class ResolverUnavailable(ProviderUnavailable):
    """The LLM Providers service gave no usable answer: whether the org has its own provider is unknown."""

    code = "resolver_unavailable"


class InvalidRequest(LLMProvidersError, ValueError):
    """The call itself is wrong (an unknown feature, an empty org): a bug in the caller."""

    code = "validation_error"


class NotAuthorized(LLMProvidersError):
    """The service token was refused (401) or is not a `service` token (403)."""

    code = "unauthorized"


@dataclass(frozen=True)
class ResolvedProvider:
    """An org's own provider for one feature, as the SDKs take it. Its repr never shows the key."""

    org: str
    feature: str
    id: str
    kind: str
    model: str
    base_url: str  # exactly what the provider's official SDK takes as base_url (Azure: azure_endpoint)
    api_version: str | None
    api_key: str = field(repr=False)
    health: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source = "byo"
    quota_bypassed = True  # calls on the org's own key do not count against the platform's quotas

    def __repr__(self) -> str:
        return (f"ResolvedProvider(org={self.org!r}, feature={self.feature!r}, id={self.id!r}, kind={self.kind!r}, "
                f"model={self.model!r}, base_url={self.base_url!r}, api_version={self.api_version!r}, "
                "api_key=<hidden>)")

    __str__ = __repr__

    @property
    def supports_tools(self) -> bool:
        return kind_spec(self.kind).supports_tool_calling


class LLMProvidersClient:
    """One per process (it pools connections); use it as an async context manager or call `close()`.

    `token` is a `service` bearer token, or a callable returning a current one. `egress_allow` opens private
    addresses for provider calls exactly as `LLMP_EGRESS_ALLOW` does for the service (e.g. an in-house
    Ollama); pass the same value.
    """

    def __init__(self, base_url: str, token: str | Callable[[], str], *, egress_allow: Iterable[str] = (),
                 resolve_timeout: float = RESOLVE_TIMEOUT, chat_timeout: float = CHAT_TIMEOUT,
                 http: EgressClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.resolve_timeout = resolve_timeout
        self.chat_timeout = chat_timeout
        self._own_http = http is None
        self._http = http or EgressClient(SimpleNamespace(egress_allow_list=list(egress_allow)))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LLMProvidersClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_http:
            await self._http.close()

    def _headers(self) -> dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        return {"Authorization": f"Bearer {token}"}

    def _service(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "llm-providers-client/0.1"})
        return self._session

    async def _call(self, method: str, path: str, timeout: float, **kwargs: Any) -> tuple[int, Any]:
        try:
            async with self._service().request(method, self.base_url + path, headers=self._headers(),
                                               timeout=aiohttp.ClientTimeout(total=timeout), **kwargs) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise ResolverUnavailable(f"The LLM Providers service did not answer ({type(exc).__name__}); the "
                                      "feature fails rather than fall back to the platform's keys.") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            raise ResolverUnavailable(f"The LLM Providers service answered {status} with something that is not "
                                      "JSON.", status=status) from None

    # --- resolve ---------------------------------------------------------------------------------------

    async def resolve(self, org: str, feature: str) -> ResolvedProvider | None:
        """The org's own provider for `feature`, or None when the org has none (use the platform default).

        Raises FeatureUnsupported, CredentialsUnavailable or ResolverUnavailable (all ProviderUnavailable)
        when the org has a provider that cannot serve; InvalidRequest or NotAuthorized for a wrong call.
        """
        status, body = await self._call("GET", "/internal/active-provider", self.resolve_timeout,
                                        params={"org": org, "feature": feature})
        if status == 200 and isinstance(body, dict):
            if body.get("source") == "default" and body.get("provider") is None:
                return None
            provider = body.get("provider")
            if body.get("source") == "byo" and isinstance(provider, dict):
                try:
                    return ResolvedProvider(
                        org=org, feature=feature, id=str(provider["id"]), kind=str(provider["kind"]),
                        model=str(provider["model"]), base_url=str(provider["base_url"]),
                        api_version=provider.get("api_version"), api_key=str(provider["api_key"]),
                        health=provider.get("health") or {})
                except KeyError:
                    pass
            raise ResolverUnavailable("The LLM Providers service answered in an unknown shape.", status=status)
        raise _error_from(status, body)

    # --- chat ------------------------------------------------------------------------------------------

    async def complete(self, resolved: ResolvedProvider, messages: Sequence[Mapping[str, Any]],
                       tools: Sequence[Mapping[str, Any]] | None = None, max_tokens: int = 1024, *,
                       timeout: float | None = None) -> ChatReply:
        """One chat completion on the org's provider: OpenAI-style `messages`, and for the OpenAI-style kinds
        OpenAI-style `tools` (the reply's `tool_calls` then hold {id, name, arguments JSON}).

        Any provider failure raises ProviderUnavailable with the check codes (`invalid_api_key`,
        `rate_limited`, `timeout`, ...) after reporting it to the service, where it counts against the
        provider's health and shows to operators.
        """
        try:
            adapter = get_adapter(resolved.kind)
        except UnknownKind:
            raise ProviderUnavailable(f"This client does not know the provider kind {resolved.kind!r}; update it.",
                                      code="unsupported_kind") from None
        if tools and not resolved.supports_tools:
            raise FeatureUnsupported(f"{sentence(adapter.label)} providers do not support tool calling; the "
                                     "org's tool-calling features are unavailable with it.")
        key = SecretStr(resolved.api_key)
        # The adapters take a native kind's base from settings and the others' from the endpoint: give both.
        base = resolved.base_url.rstrip("/")
        settings = SimpleNamespace(openai_base_url=base, anthropic_base_url=base, gemini_base_url=base)
        target = ProviderTarget(kind=resolved.kind, model=resolved.model, api_key=key, endpoint=base + "/",
                                api_version=resolved.api_version)
        request = adapter.build_chat_request(target, settings, messages, tools, max_tokens)
        try:
            raw = await self._http.request(request.method, request.url, headers=request.headers, json=request.json,
                                           timeout=timeout or self.chat_timeout)
        except EndpointBlocked as exc:
            raise await self._failed(resolved, "endpoint_blocked", exc.message) from None
        except TransportError as exc:
            raise await self._failed(resolved, exc.code, exc.message) from None
        response = ProviderResponse(raw.status, raw.headers, raw.body, raw.elapsed)
        verdict = adapter.evaluate(request, response, key)
        if not verdict.ok:
            raise await self._failed(resolved, verdict.code or "unexpected_response", verdict.message or "",
                                     response.status, adapter.request_id(response))
        try:
            return adapter.parse_chat_response(response.json())
        except (AttributeError, TypeError, KeyError, IndexError):
            raise await self._failed(resolved, "unexpected_response",
                                     f"{sentence(adapter.label)} answered in a shape that is not a chat reply.",
                                     response.status) from None

    async def _failed(self, resolved: ResolvedProvider, code: str, message: str, provider_status: int | None = None,
                      request_id: str | None = None) -> ProviderUnavailable:
        message = redact(message or "The call to the provider failed.", resolved.api_key)
        reported = await self.report_error(resolved, code, message)
        return ProviderUnavailable(message, code=code, provider_status=provider_status,
                                   provider_request_id=redact(request_id, resolved.api_key) if request_id else None,
                                   reported=reported)

    async def report_error(self, resolved: ResolvedProvider, code: str, message: str) -> bool:
        """Tell the service a call to the org's provider failed (best effort: never raises).

        Returns whether the service counted it against the provider's health."""
        body = {"org": resolved.org, "feature": resolved.feature, "code": code, "provider_id": resolved.id,
                "message": redact(message, resolved.api_key)[:2000]}
        try:
            status, answer = await self._call("POST", "/internal/provider-errors", REPORT_TIMEOUT, json=body)
        except ResolverUnavailable as exc:
            log.warning("provider error report not delivered: %s", exc.message)
            return False
        if status != 202:
            log.warning("provider error report refused: %s", status)
            return False
        return bool(isinstance(answer, dict) and answer.get("recorded"))


def _error_from(status: int, body: Any) -> LLMProvidersError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or f"The LLM Providers service answered {status}.")
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    if status == 409 and code == FeatureUnsupported.code:
        return FeatureUnsupported(message, status=status, details=details)
    if status == 503 and code == CredentialsUnavailable.code:
        return CredentialsUnavailable(message, status=status, details=details)
    if status in (400, 404, 422):
        return InvalidRequest(message, code=code or None, status=status, details=details)
    if status in (401, 403):
        return NotAuthorized(message, code=code or None, status=status)
    return ResolverUnavailable(message, status=status, details=details)
