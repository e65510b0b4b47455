"""Real providers' answers, as the fakes send them: status, headers and error bodies in each wire format.

Shapes and wording follow answers seen from the real APIs (OpenAI, Anthropic, Gemini, Azure OpenAI, vLLM,
Ollama); the sources are listed in the module docstrings of service/providers/*.py.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web


def request_id(prefix: str = "req_") -> str:
    return prefix + secrets.token_hex(12)


def masked(key: str) -> str:
    """How OpenAI shows a wrong key: the first 8 characters, asterisks, the last 4."""
    return key[:8] + "*" * max(len(key) - 12, 4) + key[-4:] if len(key) > 12 else "*" * len(key)


# --- OpenAI and the servers that copy its format ---------------------------------------------------


def openai_error(status: int, message: str, *, type_: str | None = "invalid_request_error", code: Any = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers={"x-request-id": request_id(), **(headers or {})})


def openai_completion(model: str, content: str = "pong", finish_reason: str = "stop", reasoning_tokens: int = 0,
                      headers: dict[str, str] | None = None, tool_calls: list[dict] | None = None) -> web.Response:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:  # as OpenAI answers a call of a tool: no content, finish_reason "tool_calls"
        message.update(content=None, tool_calls=tool_calls)
        finish_reason = "tool_calls"
    body = {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 16, "total_tokens": 24,
                  "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}},
    }
    return web.json_response(body, headers={"x-request-id": request_id(), **(headers or {})})


def openai_tool_calls(tools: Any) -> list[dict] | None:
    """The call a model makes when offered tools: the first function, with the arguments {"path": "README.md"}."""
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    name = (tools[0].get("function") or {}).get("name") or "tool"
    return [{"id": "call_" + secrets.token_hex(8), "type": "function",
             "function": {"name": name, "arguments": '{"path": "README.md"}'}}]


def openai_model(model: str) -> web.Response:
    body = {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"}
    return web.json_response(body, headers={"x-request-id": request_id()})


OPENAI_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using "
                 "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) "
                 "if you're accessing the API from your browser and are prompted for a username.")
OPENAI_BAD_KEY = "Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
OPENAI_SCOPES = ("You have insufficient permissions for this operation. Missing scopes: model.request. Check that you "
                 "have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and "
                 "if you're using a restricted API key, that it has the necessary scopes.")
OPENAI_QUOTA = ("You exceeded your current quota, please check your plan and billing details. For more information on "
                "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")
OPENAI_RATE = ("Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, "
               "Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.")
OPENAI_NO_MODEL = "The model `{model}` does not exist or you do not have access to it."
OPENAI_MAX_TOKENS = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
OPENAI_OUTPUT_LIMIT = ("Could not finish the message because max_tokens or model output limit was reached. Please try "
                       "again with higher max_tokens.")
OPENAI_SERVER = "The server had an error while processing your request. Sorry about that!"
OPENAI_OVERLOADED = "The server is overloaded or not ready yet."

# --- Azure OpenAI ----------------------------------------------------------------------------------


def azure_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    base = {"apim-request-id": request_id(""), "x-request-id": request_id("")}
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers={**base, **(headers or {})})


AZURE_BAD_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
                 "for an active subscription and use a correct regional API endpoint for your resource.")
AZURE_NO_DEPLOYMENT = ("The API deployment for this resource does not exist. If you created the deployment within the last "
                       "5 minutes, please wait a moment and try again.")
AZURE_FIREWALL = "Access denied due to Virtual Network/Firewall rules."
AZURE_RATE = ("Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have exceeded "
              "token rate limit of your current OpenAI S0 pricing tier. Please retry after 20 seconds. Please go here: "
              "https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.")
AZURE_UNRECOGNIZED = "Unrecognized request argument supplied: {param}"

# --- Anthropic -------------------------------------------------------------------------------------


def anthropic_error(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    rid = request_id("req_011C")
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": rid}
    return web.json_response(body, status=status, headers={"request-id": rid, **(headers or {})})


def anthropic_message(model: str) -> web.Response:
    rid = request_id("req_011C")
    body = {"id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "P"}], "stop_reason": "max_tokens", "stop_sequence": None,
            "usage": {"input_tokens": 8, "output_tokens": 1}}
    return web.json_response(body, headers={"request-id": rid})


def anthropic_model(model: str) -> web.Response:
    body = {"type": "model", "id": model, "display_name": model, "created_at": "2025-02-19T00:00:00Z"}
    return web.json_response(body, headers={"request-id": request_id("req_011C")})


ANTHROPIC_CREDIT = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
                    "or purchase credits.")

# --- Gemini (google.rpc.Status; no request id header) ------------------------------------------------


def gemini_error(code: int, status: str, message: str, details: list[dict] | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=code, headers=headers)


def gemini_reason(reason: str, **metadata: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com", **metadata}}


def gemini_quota(quota_id: str, value: str, retry: str | None = "20s") -> list[dict]:
    details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
        "quotaValue": value}]}]
    if retry:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry})
    return details


def gemini_content(model: str, text: str = "pong", finish: str = "STOP") -> web.Response:
    parts = [{"text": text}] if text else []
    body = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
            "modelVersion": model, "responseId": secrets.token_hex(8)}
    return web.json_response(body)


def gemini_model(model: str) -> web.Response:
    body = {"name": f"models/{model}", "version": "001", "displayName": model, "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536, "supportedGenerationMethods": ["generateContent", "countTokens"]}
    return web.json_response(body)


GEMINI_BAD_KEY = "API key not valid. Please pass a valid API key."
GEMINI_NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
                 "other form of API consumer identity to call this API.")
GEMINI_DISABLED = ("Generative Language API has not been used in project 123456789012 before or it is disabled. Enable it "
                   "by visiting https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview"
                   "?project=123456789012 then retry.")
GEMINI_NO_MODEL = ("models/{model} is not found for API version v1beta, or is not supported for generateContent. Call "
                   "ListModels to see the list of available models and their supported methods.")
GEMINI_QUOTA = ("You exceeded your current quota, please check your plan and billing details. For more information on "
                "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.")
GEMINI_LOCATION = "User location is not supported for the API use."
GEMINI_OVERLOADED = "The model is overloaded. Please try again later."
GEMINI_INTERNAL = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
