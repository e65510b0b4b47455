"""Google Gemini: the key in the `x-goog-api-key` header (never in the URL),
POST /v1beta/models/{model}:generateContent.

Error bodies (real answers) follow google.rpc.Status: {"error": {"code": 400, "message": "API key not valid.
Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type":
"type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", ...}]}}. A bad key is a 400, not a
401. 403 PERMISSION_DENIED (SERVICE_DISABLED, API_KEY_SERVICE_BLOCKED), 404 NOT_FOUND ("models/x is not found
for API version v1beta, or is not supported for generateContent."), 429 RESOURCE_EXHAUSTED with QuotaFailure
violations and RetryInfo, 400 FAILED_PRECONDITION ("User location is not supported for the API use.").
Gemini sends no request id header.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from service.providers.base import (
    CHECK_MAX_TOKENS,
    CHECK_PROMPT,
    ChatReply,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    Verdict,
    join_url,
    key_value,
    parse_retry_after,
    split_system,
    status_label,
)
from service.providers.target import ProviderTarget
from service.redact import excerpt


def _error(payload: Any) -> dict[str, Any]:
    if isinstance(payload, list) and payload:  # some Google front ends wrap the status in a list
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [d for d in error.get("details") or [] if isinstance(d, dict)]


class GeminiAdapter(ProviderAdapter):
    kind = "gemini"
    label = "Google Gemini"
    request_id_headers = ()

    def base_url(self, target: ProviderTarget, settings: Any) -> str:
        """The host root, as the google-genai SDK's base_url."""
        return settings.gemini_base_url.strip().rstrip("/")

    def _model(self, target: ProviderTarget) -> str:
        return quote(target.model.strip().removeprefix("models/"), safe="-._~")

    def _headers(self, target: ProviderTarget) -> dict[str, str]:
        return {"x-goog-api-key": key_value(target), "Content-Type": "application/json"}

    def build_check_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest:
        """generateContent with one short part and a small maxOutputTokens; a thinking model that stops at
        MAX_TOKENS with no text still proved key and model."""
        url = join_url(self.base_url(target, settings), "v1beta/models", f"{self._model(target)}:generateContent")
        body = {
            "contents": [{"role": "user", "parts": [{"text": CHECK_PROMPT}]}],
            "generationConfig": {"maxOutputTokens": CHECK_MAX_TOKENS},
        }
        return ProviderRequest("POST", url, self._headers(target), body, "check")

    def build_probe_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest:
        """GET /v1beta/models/{model}: free model metadata."""
        url = join_url(self.base_url(target, settings), "v1beta/models", self._model(target))
        return ProviderRequest("GET", url, {"x-goog-api-key": key_value(target)}, None, "probe")

    def accept_success(self, request: ProviderRequest, payload: Any) -> Verdict:
        wanted = ("name",) if request.purpose == "probe" else ("candidates", "usageMetadata", "promptFeedback")
        if isinstance(payload, dict) and any(k in payload for k in wanted):
            return Verdict.success()
        return self._not_provider_format(200)

    def classify_error(self, status: int, payload: Any, key: SecretStr | str | None = None) -> tuple[str, str]:
        error = _error(payload)
        gstatus = str(error.get("status") or "")
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        m = message.lower()
        reasons = {str(d.get("reason")) for d in _details(error) if d.get("reason")}
        reason = next(iter(sorted(reasons)), "")
        shown = status_label(status, ", ".join(x for x in (gstatus, reason) if x))
        said = excerpt(message, key)
        if "API_KEY_INVALID" in reasons or "api key not valid" in m or "api key expired" in m or "api key not found" in m:
            return "invalid_api_key", f"The API key was rejected by Google Gemini ({shown})."
        if "leaked" in m:
            return "invalid_api_key", f"Google blocked this API key because it was reported as leaked ({shown})."
        if status == 429 or gstatus == "RESOURCE_EXHAUSTED":
            return self._exhausted(error, m, shown)
        if status == 403 or gstatus == "PERMISSION_DENIED":
            if "SERVICE_DISABLED" in reasons:
                return "permission_denied", (
                    f"The Generative Language API is not enabled for this key's Google Cloud project ({shown})."
                )
            return "permission_denied", f"Google Gemini refused the request for this key ({shown})." + (
                f' Google said: "{said}"' if said else "")
        if status == 404 or gstatus == "NOT_FOUND":
            return "model_not_found", (
                f"Google Gemini does not know this model or it does not support generateContent ({shown}). "
                "Check the model name."
            )
        if gstatus == "FAILED_PRECONDITION":
            if "billing" in m:
                return "quota_exceeded", f"Google Gemini needs billing enabled for this request ({shown})."
            return "permission_denied", f"Google Gemini does not serve this request from here ({shown})." + (
                f' Google said: "{said}"' if said else "")
        if status == 401 or gstatus == "UNAUTHENTICATED":
            return "invalid_api_key", f"The API key was rejected by Google Gemini ({shown})."
        if status >= 500 or gstatus in ("INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return "provider_error", f"Google Gemini is overloaded or failing ({shown}); try again later."
        return "bad_request", f"Google Gemini rejected the request ({shown})." + (f' Google said: "{said}"' if said else "")

    def _exhausted(self, error: Mapping[str, Any], m: str, shown: str) -> tuple[str, str]:
        """RESOURCE_EXHAUSTED is a per-minute throttle unless it says the quota is zero or only daily
        quotas are used up."""
        violations = [
            v for d in _details(error) if str(d.get("@type", "")).endswith("QuotaFailure")
            for v in d.get("violations") or [] if isinstance(v, dict)
        ]
        quota_ids = [str(v.get("quotaId") or "") for v in violations]
        zero = "limit: 0" in m or any(str(v.get("quotaValue")) == "0" for v in violations)
        daily = bool(quota_ids) and all("PerDay" in q for q in quota_ids)
        if zero or daily:
            return "quota_exceeded", (
                f"Google Gemini quota for this key's project is used up or zero for this model ({shown}). "
                "Check the plan, billing and quotas in Google AI Studio."
            )
        return "rate_limited", f"Google Gemini is rate-limiting this key for now ({shown}); the same request should work later."

    def retry_after(self, response: ProviderResponse, payload: Any) -> float | None:
        """Retry-After, else the RetryInfo retryDelay ("26s") in the body."""
        header = parse_retry_after(response.headers)
        if header is not None:
            return header
        for detail in _details(_error(payload)):
            delay = str(detail.get("retryDelay") or "")
            if delay.endswith("s"):
                try:
                    return max(float(delay[:-1]), 0.0)
                except ValueError:
                    return None
        return None

    def build_chat_request(
        self,
        target: ProviderTarget,
        settings: Any,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 1024,
    ) -> ProviderRequest:
        """Plain-text chat: system messages become systemInstruction, assistant turns the "model" role."""
        system, plain = split_system(messages)
        contents = [{"role": "model" if assistant else "user", "parts": [{"text": text}]} for assistant, text in plain]
        body: dict[str, Any] = {"contents": contents, "generationConfig": {"maxOutputTokens": max_tokens}}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        url = join_url(self.base_url(target, settings), "v1beta/models", f"{self._model(target)}:generateContent")
        return ProviderRequest("POST", url, self._headers(target), body, "chat")

    def parse_chat_response(self, payload: Any) -> ChatReply:
        candidate = (payload.get("candidates") or [{}])[0] if isinstance(payload, dict) else {}
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
        return ChatReply(text=text, finish_reason=candidate.get("finishReason"), model=payload.get("modelVersion"))
