"""The adapter interface: what every provider kind knows about its own wire format.

An adapter is a set of pure functions (build a request, judge an answer, map an error) with no I/O, so it
can be tested from real error bodies alone. `service.checks` runs the requests through the shared egress
client; the registry is the only place that picks an adapter by kind.
"""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any, ClassVar

from pydantic import SecretStr

from service.providers.target import ProviderTarget

CHECK_PROMPT = "ping"
CHECK_MAX_TOKENS = 16


@dataclass(frozen=True)
class ProviderRequest:
    """One HTTP request to a provider. `variant` records how it was shaped, for `next_request`."""

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None
    purpose: str = "check"  # check | probe | chat
    variant: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # headers carry the key: never show them
        return f"ProviderRequest({self.method} {self.url.split('?')[0]}, purpose={self.purpose})"


@dataclass(frozen=True)
class ProviderResponse:
    """One provider answer as received (status, headers, raw body)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float = 0.0

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class Verdict:
    """What an answer means: ok, or an error code from the closed set with a message for an admin."""

    ok: bool
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None  # seconds the provider asked us to wait (rate limits)

    @classmethod
    def success(cls) -> Verdict:
        return cls(ok=True)

    @classmethod
    def failure(cls, code: str, message: str, retry_after: float | None = None) -> Verdict:
        return cls(ok=False, code=code, message=message, retry_after=retry_after)


@dataclass(frozen=True)
class ChatReply:
    """A chat answer in one shape for every kind (tool calls in the OpenAI form: id, name, arguments JSON)."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    model: str | None = None


class ProviderAdapter(ABC):
    """One provider kind's wire format. Subclasses are stateless; one instance serves every call."""

    kind: ClassVar[str]
    label: ClassVar[str]  # the provider's name as an admin knows it, usable mid-sentence ("Anthropic")
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id",)

    @abstractmethod
    def base_url(self, target: ProviderTarget, settings: Any) -> str:
        """Exactly what the provider's official SDK takes as base_url for this target (no trailing "/")."""

    @abstractmethod
    def build_check_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest:
        """The smallest generation request that proves the key is valid and the model reachable."""

    def build_probe_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest | None:
        """A free model-metadata request for periodic health checks, or None where the provider has none."""
        return None

    def next_request(
        self,
        target: ProviderTarget,
        settings: Any,
        request: ProviderRequest,
        response: ProviderResponse,
        verdict: Verdict,
    ) -> ProviderRequest | None:
        """A differently shaped request worth one more try after a failed answer (None: the answer stands).

        Used where the failure says more about how we asked than about the key: a token-limit parameter
        the model refuses, an OpenAI-compatible base that needs `/v1`.
        """
        return None

    @abstractmethod
    def classify_error(self, status: int, payload: Any, key: SecretStr | str | None = None) -> tuple[str, str]:
        """Map an error answer (status and parsed JSON body) to (code, admin message). Pure."""

    def accept_success(self, request: ProviderRequest, payload: Any) -> Verdict:
        """Judge a 2xx JSON answer: ok when it has the provider's shape."""
        return Verdict.success() if isinstance(payload, dict) else self._not_provider_format(200)

    def evaluate(self, request: ProviderRequest, response: ProviderResponse, key: SecretStr | None = None) -> Verdict:
        """Judge any answer. Status classes first, then the body: 5xx is the provider failing whatever it
        says; a redirect or a non-JSON 2xx/4xx is not the provider's format.
        """
        status = response.status
        if 300 <= status < 400:
            return Verdict.failure(
                "unexpected_response",
                f"The endpoint answered with a redirect ({status}); redirects are not followed. "
                "Check the endpoint URL.",
            )
        if status >= 500:
            payload = response.json()
            message = ""
            if payload is not None:
                code, message = self.classify_error(status, payload, key)
                message = message if code == "provider_error" else ""
            return Verdict.failure(
                "provider_error", message or f"{sentence(self.label)} failed to answer ({status}); try again later."
            )
        payload = response.json()
        if payload is None and status == 429:  # a gateway's own throttling page: the status says it all
            return Verdict.failure("rate_limited", f"{sentence(self.label)} is rate-limiting this key for now (429); "
                                   "the same request should work later.", parse_retry_after(response.headers))
        if payload is None:
            return self._not_provider_format(status)
        if 200 <= status < 300:
            return self.accept_success(request, payload)
        code, message = self.classify_error(status, payload, key)
        return Verdict.failure(code, message, self.retry_after(response, payload) if code == "rate_limited" else None)

    def retry_after(self, response: ProviderResponse, payload: Any) -> float | None:
        """Seconds the provider asks to wait before retrying (Retry-After / retry-after-ms), if it says."""
        return parse_retry_after(response.headers)

    def resolved_base_url(self, target: ProviderTarget, settings: Any, request: ProviderRequest) -> str:
        """The base_url a successful `request` proved (differs from base_url only where bases are tried)."""
        return self.base_url(target, settings)

    def endpoint_for_base(self, target: ProviderTarget, settings: Any, base: str) -> str | None:
        """The endpoint to store so that `base_url` becomes `base` (the base a passed check proved), or None
        when nothing is to be stored (it already is, or this kind cannot say so through its endpoint)."""
        return None

    def request_id(self, response: ProviderResponse) -> str | None:
        for name in self.request_id_headers:
            value = response.headers.get(name)
            if value:
                return value[:200]
        return None

    # Chat calls (used by the AI services later). Kinds that support them override both.
    def build_chat_request(
        self,
        target: ProviderTarget,
        settings: Any,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 1024,
    ) -> ProviderRequest:
        """A chat request from OpenAI-style messages ({"role", "content"}) and optional OpenAI-style tools."""
        raise NotImplementedError(f"{self.label} chat requests are not implemented")

    def parse_chat_response(self, payload: Any) -> ChatReply:
        """The reply of a 2xx chat answer."""
        raise NotImplementedError(f"{self.label} chat responses are not implemented")

    def _not_provider_format(self, status: int) -> Verdict:
        return Verdict.failure(
            "unexpected_response",
            f"The endpoint answered ({status}) with something that is not the API format of {self.label}. "
            "Check the endpoint URL.",
        )


# --- helpers shared by the adapters ----------------------------------------------------------------


def split_system(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[tuple[bool, str]]]:
    """OpenAI-style messages as the plain-text kinds take them: the system messages joined into one text,
    and the other turns as (is_assistant, text)."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    turns = [(m.get("role") == "assistant", str(m.get("content") or "")) for m in messages if m.get("role") != "system"]
    return system, turns


def join_url(base: str, *parts: str) -> str:
    """`base` and path parts joined by exactly one "/" each (never `//chat/completions`)."""
    url = base.rstrip("/")
    for part in parts:
        url += "/" + part.strip("/")
    return url


def key_value(target: ProviderTarget) -> str:
    return target.api_key.get_secret_value()


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After (seconds or HTTP date) or retry-after-ms, as seconds; None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def ident(*values: Any) -> str:
    """The first value that is a short identifier-like string (an error code or type), else ""."""
    for value in values:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value)
            if text and len(text) <= 64 and re.fullmatch(r"[A-Za-z0-9_.\-]+", text):
                return text
    return ""


def sentence(text: str) -> str:
    """`text` with its first letter capitalized (labels such as "the OpenAI-compatible server")."""
    return text[:1].upper() + text[1:]


def status_label(status: int, code: str) -> str:
    """"401 invalid_api_key" or just "401"."""
    return f"{status} {code}" if code and code != str(status) else str(status)
