"""What OpenAI, Azure OpenAI and OpenAI-compatible servers share: chat completions and the error mapping.

Error bodies this mapping is written against (real answers, see tests/unit/test_classification.py):
  401 {"error": {"message": "Incorrect API key provided: sk-proj-****abcd. ...", "type": "invalid_request_error",
        "param": null, "code": "invalid_api_key"}}
  401 {"error": {"message": "You have insufficient permissions for this operation. Missing scopes: model.request.
        ...", ...}}                                               -> permission_denied, not a bad key
  403 {"error": {"code": "unsupported_country_region_territory", "message": "Country, region, or territory not
        supported", "type": "request_forbidden"}}
  404 {"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.", ...,
        "code": "model_not_found"}}
  429 {"error": {"message": "You exceeded your current quota, ...", "type": "insufficient_quota",
        "code": "insufficient_quota"}}                             -> quota_exceeded; other 429s are rate limits
  400 {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use
        'max_completion_tokens' instead.", "param": "max_tokens", "code": "unsupported_parameter"}}
  400 "Could not finish the message because max_tokens or model output limit was reached. ..."
  vLLM 401 {"error": "Unauthorized"} (a string); Ollama 404 {"error": "model \"x\" not found, try pulling it first"}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from service.providers.base import (
    CHECK_MAX_TOKENS,
    CHECK_PROMPT,
    ChatReply,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    Verdict,
    ident,
    key_value,
    sentence,
    status_label,
)
from service.providers.target import ProviderTarget
from service.redact import excerpt

TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")


def openai_error_fields(payload: Any) -> tuple[Any, Any, str, Any]:
    """(code, type, message, param) from an OpenAI-style error body, tolerating the servers that differ:
    `error` as a string (vLLM), top-level `message`/`detail` (FastAPI servers), integer codes.
    """
    if not isinstance(payload, dict):
        return None, None, "", None
    error = payload.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return error.get("code"), error.get("type"), message if isinstance(message, str) else "", error.get("param")
    if isinstance(error, str):
        return None, None, error, None
    message = payload.get("message") or payload.get("detail")
    return payload.get("code"), payload.get("type"), message if isinstance(message, str) else "", payload.get("param")


def mentions_missing_model(message: str) -> bool:
    m = message.lower()
    return "model" in m and any(
        phrase in m for phrase in ("does not exist", "not found", "no such model", "unknown model", "not available")
    )


def classify_openai_error(status: int, payload: Any, label: str, key: SecretStr | str | None) -> tuple[str, str]:
    """Map an OpenAI-style error answer to (code, admin message); body fields decide before the status."""
    code, etype, message, _param = openai_error_fields(payload)
    c, t, m = str(code or "").lower(), str(etype or "").lower(), message.lower()
    shown = status_label(status, ident(code, etype))
    said = excerpt(message, key)
    name = sentence(label)
    detail = f' {name} said: "{said}"' if said else ""
    if c == "insufficient_quota" or t == "insufficient_quota" or status == 402 or "exceeded your current quota" in m:
        return "quota_exceeded", (
            f"{name} refused the request because the account's quota or credit is used up ({shown}). "
            "Check the plan and billing details."
        )
    if c == "unsupported_country_region_territory" or "territory not supported" in m:
        return "permission_denied", f"{name} does not serve requests from this country or region ({shown})."
    if "missing scopes" in m or "insufficient permissions" in m:
        return "permission_denied", (
            f"{name} knows the key but it lacks the permissions to call models ({shown}). "
            f"Give the key the model request scope or use a key with all permissions.{detail}"
        )
    if c == "account_deactivated" or ("account" in m and "deactivated" in m):
        return "permission_denied", f"{name} knows the key but its account is deactivated ({shown})."
    if c == "invalid_api_key" or "incorrect api key" in m or status == 401:
        return "invalid_api_key", f"The API key was rejected by {label} ({shown})."
    if c == "model_not_found" or (status in (400, 404) and mentions_missing_model(message)):
        return "model_not_found", (
            f"{name} does not know this model, or the key may not use it ({shown}). Check the model name."
        )
    if status == 429 or c == "rate_limit_exceeded":
        return "rate_limited", f"{name} is rate-limiting this key for now ({shown}); the same request should work later."
    if status == 403:
        return "permission_denied", f"{name} refused the request for this key ({shown}).{detail}"
    if status in (404, 405):
        return "bad_request", f"{name} has no such API path ({shown}). Check the endpoint URL.{detail}"
    if status >= 500:
        return "provider_error", f"{name} failed to answer ({shown}); try again later."
    return "bad_request", f"{name} rejected the request ({shown}).{detail}"


def is_output_limit_error(status: int, payload: Any) -> bool:
    """A reasoning model ran out of the check's token budget: the key and model worked."""
    _code, _type, message, _param = openai_error_fields(payload)
    m = message.lower()
    return status == 400 and ("output limit was reached" in m or "max_tokens or model output limit" in m)


def rejects_token_param(status: int, payload: Any, sent: str) -> bool:
    """The server refused the token-limit parameter we sent (so the other one is worth a try)."""
    if status not in (400, 422):
        return False
    code, _type, message, param = openai_error_fields(payload)
    m = message.lower()
    if param == sent and str(code or "").lower() in ("unsupported_parameter", "unknown_parameter", ""):
        return True
    return sent in m and any(word in m for word in ("unsupported", "not supported", "unrecognized", "unknown", "extra"))


class OpenAIStyleAdapter(ProviderAdapter):
    """Chat completions over the OpenAI wire format. Subclasses say where and how to authenticate."""

    default_token_param = "max_tokens"

    def chat_url(self, target: ProviderTarget, settings: Any, variant: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def auth_headers(self, target: ProviderTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {key_value(target)}"}

    def token_param(self, target: ProviderTarget) -> str:
        """Which token-limit parameter to send first (reasoning models refuse `max_tokens`)."""
        return self.default_token_param

    def model_in_body(self, target: ProviderTarget) -> bool:
        return True

    def classify_error(self, status: int, payload: Any, key: SecretStr | str | None = None) -> tuple[str, str]:
        return classify_openai_error(status, payload, self.label, key)

    def build_check_request(
        self, target: ProviderTarget, settings: Any, variant: Mapping[str, Any] | None = None
    ) -> ProviderRequest:
        """POST chat/completions with one short user message and a small token limit (no temperature: the
        o-series refuses non-default values)."""
        shape = {"token_param": self.token_param(target), **(variant or {})}
        messages = [{"role": "user", "content": CHECK_PROMPT}]
        return self._chat(target, settings, messages, None, CHECK_MAX_TOKENS, shape, "check")

    def _chat(
        self,
        target: ProviderTarget,
        settings: Any,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        max_tokens: int,
        shape: Mapping[str, Any],
        purpose: str,
    ) -> ProviderRequest:
        body: dict[str, Any] = {"messages": [dict(m) for m in messages], shape["token_param"]: max_tokens}
        if self.model_in_body(target):
            body = {"model": target.model, **body}
        if tools:
            body["tools"] = [dict(t) for t in tools]
        headers = {**self.auth_headers(target), "Content-Type": "application/json"}
        return ProviderRequest("POST", self.chat_url(target, settings, shape), headers, body, purpose, dict(shape))

    def evaluate(self, request: ProviderRequest, response: ProviderResponse, key: SecretStr | None = None) -> Verdict:
        if request.purpose == "check" and is_output_limit_error(response.status, response.json()):
            return Verdict.success()
        return super().evaluate(request, response, key)

    def accept_success(self, request: ProviderRequest, payload: Any) -> Verdict:
        """A completion with a `choices` list is ok, even empty content with finish_reason "length": a
        reasoning model that spent the small budget thinking still proved key and model."""
        if request.purpose == "probe":
            return Verdict.success() if isinstance(payload, dict) and "id" in payload else self._not_provider_format(200)
        if isinstance(payload, dict) and isinstance(payload.get("choices"), list):
            return Verdict.success()
        return self._not_provider_format(200)

    def next_request(
        self,
        target: ProviderTarget,
        settings: Any,
        request: ProviderRequest,
        response: ProviderResponse,
        verdict: Verdict,
    ) -> ProviderRequest | None:
        """Once: retry with the other token-limit parameter when the server refused the one we sent."""
        if request.purpose != "check" or request.variant.get("token_switched"):
            return None
        sent = request.variant.get("token_param", self.default_token_param)
        if not rejects_token_param(response.status, response.json(), sent):
            return None
        other = next(p for p in TOKEN_PARAMS if p != sent)
        return self.build_check_request(target, settings, {**request.variant, "token_param": other, "token_switched": True})

    def build_chat_request(
        self,
        target: ProviderTarget,
        settings: Any,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 1024,
    ) -> ProviderRequest:
        shape = {"token_param": self.token_param(target)}
        return self._chat(target, settings, messages, tools, max_tokens, shape, "chat")

    def parse_chat_response(self, payload: Any) -> ChatReply:
        choice = (payload.get("choices") or [{}])[0] if isinstance(payload, dict) else {}
        message = choice.get("message") or {}
        calls = [
            {
                "id": call.get("id"),
                "name": (call.get("function") or {}).get("name"),
                "arguments": (call.get("function") or {}).get("arguments") or "{}",
            }
            for call in message.get("tool_calls") or []
        ]
        return ChatReply(
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=choice.get("finish_reason"),
            model=payload.get("model") if isinstance(payload, dict) else None,
        )
