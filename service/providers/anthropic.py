"""Anthropic: `x-api-key` and `anthropic-version: 2023-06-01`, POST /v1/messages (max_tokens is required).

Error bodies (real answers): {"type": "error", "error": {"type": "authentication_error", "message": "invalid
x-api-key"}, "request_id": "req_..."} with types authentication_error (401), permission_error (403),
not_found_error (404), rate_limit_error (429), api_error (500), overloaded_error (529), and
invalid_request_error (400), which also carries "Your credit balance is too low to access the Anthropic API.
Please go to Plans & Billing to upgrade or purchase credits." The request id comes in the `request-id` header.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from service.providers.base import (
    CHECK_PROMPT,
    ChatReply,
    ProviderAdapter,
    ProviderRequest,
    Verdict,
    join_url,
    key_value,
    split_system,
    status_label,
)
from service.providers.target import ProviderTarget
from service.redact import excerpt

ANTHROPIC_VERSION = "2023-06-01"

_BY_TYPE = {
    "authentication_error": "invalid_api_key",
    "permission_error": "permission_denied",
    "not_found_error": "model_not_found",
    "rate_limit_error": "rate_limited",
    "billing_error": "quota_exceeded",
    "overloaded_error": "provider_error",
    "api_error": "provider_error",
    "timeout_error": "provider_error",
    "request_too_large": "bad_request",
}
_BY_STATUS = {401: "invalid_api_key", 402: "quota_exceeded", 403: "permission_denied", 404: "model_not_found",
              429: "rate_limited"}


class AnthropicAdapter(ProviderAdapter):
    kind = "anthropic"
    label = "Anthropic"
    request_id_headers = ("request-id",)

    def base_url(self, target: ProviderTarget, settings: Any) -> str:
        """The host root, as the anthropic SDK's base_url."""
        return settings.anthropic_base_url.strip().rstrip("/")

    def _headers(self, target: ProviderTarget) -> dict[str, str]:
        return {
            "x-api-key": key_value(target),
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }

    def build_check_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest:
        """POST /v1/messages with max_tokens 1: the cheapest call that runs the model."""
        body = {"model": target.model, "max_tokens": 1, "messages": [{"role": "user", "content": CHECK_PROMPT}]}
        return ProviderRequest("POST", join_url(self.base_url(target, settings), "v1/messages"),
                               self._headers(target), body, "check")

    def build_probe_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest:
        """GET /v1/models/{model} (aliases resolve): free, 404 not_found_error for an unknown model."""
        url = join_url(self.base_url(target, settings), "v1/models", quote(target.model, safe=""))
        headers = {k: v for k, v in self._headers(target).items() if k != "content-type"}
        return ProviderRequest("GET", url, headers, None, "probe")

    def accept_success(self, request: ProviderRequest, payload: Any) -> Verdict:
        wanted = "model" if request.purpose == "probe" else "message"
        if isinstance(payload, dict) and payload.get("type") == wanted:
            return Verdict.success()
        return self._not_provider_format(200)

    def classify_error(self, status: int, payload: Any, key: SecretStr | str | None = None) -> tuple[str, str]:
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        etype = str(error.get("type") or "")
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        shown = status_label(status, etype)
        if "credit balance" in message.lower():
            return "quota_exceeded", (
                f"Anthropic refused the request because the organization's credit balance is too low ({shown}). "
                "Add credits under Plans & Billing."
            )
        code = _BY_TYPE.get(etype) or _BY_STATUS.get(status) or ("provider_error" if status >= 500 else "bad_request")
        said = excerpt(message, key)
        messages = {
            "invalid_api_key": f"The API key was rejected by Anthropic ({shown}).",
            "permission_denied": f"Anthropic knows the key but it may not use this model or API ({shown}).",
            "model_not_found": f"Anthropic does not know this model, or the key may not use it ({shown}). "
            "Check the model name.",
            "rate_limited": f"Anthropic is rate-limiting this key for now ({shown}); the same request should work later.",
            "quota_exceeded": f"Anthropic refused the request for billing reasons ({shown}). Check Plans & Billing.",
            "provider_error": f"Anthropic is overloaded or failing ({shown}); try again later.",
            "bad_request": f"Anthropic rejected the request ({shown})." + (f' Anthropic said: "{said}"' if said else ""),
        }
        return code, messages[code]

    def build_chat_request(
        self,
        target: ProviderTarget,
        settings: Any,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 1024,
    ) -> ProviderRequest:
        """Plain-text chat: system messages become the `system` field (tools are not offered for Anthropic)."""
        system, plain = split_system(messages)
        turns = [{"role": "assistant" if assistant else "user", "content": text} for assistant, text in plain]
        body: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens, "messages": turns}
        if system:
            body["system"] = system
        return ProviderRequest("POST", join_url(self.base_url(target, settings), "v1/messages"),
                               self._headers(target), body, "chat")

    def parse_chat_response(self, payload: Any) -> ChatReply:
        blocks = payload.get("content") or [] if isinstance(payload, dict) else []
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        return ChatReply(text=text, finish_reason=payload.get("stop_reason"), model=payload.get("model"))
