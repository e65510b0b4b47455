"""Each adapter maps the providers' real error bodies to the right code, and builds requests in their wire format.

Bodies are copied from real answers (GitHub issues quoting the APIs; vLLM's AuthenticationMiddleware);
the module docstrings of service/providers/*.py list them.
"""
from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from service.config import Settings
from service.providers.base import ProviderResponse, Verdict, join_url, parse_retry_after
from service.providers.registry import get_adapter
from service.providers.target import ProviderTarget

KEY = "sk-proj-Zq81Lw0pVt5cYx3Na7Rm2Kd9"


def classify(kind: str, status: int, body) -> str:
    code, message = get_adapter(kind).classify_error(status, body, SecretStr(KEY))
    assert message and KEY[-8:] not in message
    return code


def oai(message: str, type_: str | None = "invalid_request_error", code=None, param=None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


OPENAI_CASES = [
    (401, oai("Incorrect API key provided: sk-proj-****MxYA. You can find your API key at "
              "https://platform.openai.com/account/api-keys.", code="invalid_api_key"), "invalid_api_key"),
    (401, oai("You didn't provide an API key. You need to provide your API key in an Authorization header."), "invalid_api_key"),
    (401, oai("You have insufficient permissions for this operation. Missing scopes: model.request. Check that you "
              "have the correct role in your organization."), "permission_denied"),
    (403, {"error": {"code": "unsupported_country_region_territory", "message": "Country, region, or territory not "
                     "supported", "param": None, "type": "request_forbidden"}}, "permission_denied"),
    (404, oai("The model `gpt-4o` does not exist or you do not have access to it.", code="model_not_found"), "model_not_found"),
    (429, oai("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota",
              "insufficient_quota"), "quota_exceeded"),
    (429, oai("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota"),
     "quota_exceeded"),  # the older form: type only, code null
    (429, oai("Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 30000.",
              "tokens", "rate_limit_exceeded"), "rate_limited"),
    (400, oai("Invalid value for 'messages': expected an array.", param="messages"), "bad_request"),
    (500, oai("The server had an error while processing your request. Sorry about that!", "server_error"), "provider_error"),
]


@pytest.mark.parametrize(("status", "body", "expected"), OPENAI_CASES)
@pytest.mark.parametrize("kind", ["openai", "openai_compatible"])
def test_openai_error_bodies(kind, status, body, expected):
    assert classify(kind, status, body) == expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": "Unauthorized"}, "invalid_api_key"),  # vLLM: error is a plain string
        (404, {"error": {"message": "The model `llama9` does not exist.", "type": "NotFoundError", "param": None,
                         "code": 404}}, "model_not_found"),  # vLLM, integer code
        (404, {"error": 'model "llama9" not found, try pulling it first'}, "model_not_found"),  # Ollama
        (404, {"detail": "Not Found"}, "bad_request"),  # a FastAPI server without that path
        (402, {"error": {"message": "Insufficient credits. Add more using /settings/credits", "code": 402}},
         "quota_exceeded"),
        (403, {"error": {"message": "Forbidden", "type": "permission_error"}}, "permission_denied"),
    ],
)
def test_openai_compatible_servers_that_differ(status, body, expected):
    assert classify("openai_compatible", status, body) == expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. "
                         "Make sure to provide a valid key for an active subscription and use a correct regional API "
                         "endpoint for your resource."}}, "invalid_api_key"),
        (401, {"error": {"code": "Unauthorized", "message": "Access denied due to invalid subscription key or wrong API "
                         "endpoint."}}, "invalid_api_key"),
        (404, {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. "
                         "If you created the deployment within the last 5 minutes, please wait a moment and try again."}},
         "model_not_found"),
        (404, {"error": {"code": "404", "message": "Resource not found"}}, "bad_request"),
        (400, {"error": {"code": "OperationNotSupported", "message": "The chatCompletion operation does not work with "
                         "the specified model, text-embedding-ada-002."}}, "model_not_found"),
        (403, {"error": {"code": "403", "message": "Access denied due to Virtual Network/Firewall rules."}},
         "permission_denied"),
        (403, {"error": {"code": "AuthenticationTypeDisabled", "message": "Key based authentication is disabled for "
                         "this resource."}}, "permission_denied"),
        (429, {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI "
                         "API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                         "Please retry after 6 seconds."}}, "rate_limited"),
        (400, oai("Unrecognized request argument supplied: max_completion_tokens"), "bad_request"),
    ],
)
def test_azure_error_bodies(status, body, expected):
    assert classify("azure_openai", status, body) == expected


def anthropic_error(type_: str, message: str) -> dict:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_011CbrFTcXhtiMzr3s6EocF7"}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, anthropic_error("authentication_error", "invalid x-api-key"), "invalid_api_key"),
        (403, anthropic_error("permission_error", "Your API key does not have permission to use the specified "
                              "resource."), "permission_denied"),
        (404, anthropic_error("not_found_error", "model: claude-9"), "model_not_found"),
        (429, anthropic_error("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
         "rate_limited"),
        (529, anthropic_error("overloaded_error", "Overloaded"), "provider_error"),
        (500, anthropic_error("api_error", "Internal server error"), "provider_error"),
        (400, anthropic_error("invalid_request_error", "Your credit balance is too low to access the Anthropic API. "
                              "Please go to Plans & Billing to upgrade or purchase credits."), "quota_exceeded"),
        (402, anthropic_error("billing_error", "Payment required."), "quota_exceeded"),
        (400, anthropic_error("invalid_request_error", "max_tokens: Field required"), "bad_request"),
        (413, anthropic_error("request_too_large", "Request exceeds the maximum allowed number of bytes."), "bad_request"),
    ],
)
def test_anthropic_error_bodies(status, body, expected):
    assert classify("anthropic", status, body) == expected


def google(code: int, status: str, message: str, details=None) -> dict:
    body = {"error": {"code": code, "message": message, "status": status}}
    if details:
        body["error"]["details"] = details
    return body


def info(reason: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}}


def quota(quota_id: str, value: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
        {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": quota_id,
         "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": value}]}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, google(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [info("API_KEY_INVALID")]),
         "invalid_api_key"),
        (400, google(400, "INVALID_ARGUMENT", "API Key not found. Please pass a valid API key.",
                     [{"reason": "API_KEY_INVALID", "domain": "googleapis.com"}]), "invalid_api_key"),
        (400, google(400, "INVALID_ARGUMENT", "API key expired. Please renew the API key.", [info("API_KEY_INVALID")]),
         "invalid_api_key"),
        (403, google(403, "PERMISSION_DENIED", "Your API key was reported as leaked. Please use another API key."),
         "invalid_api_key"),
        (403, google(403, "PERMISSION_DENIED", "Generative Language API has not been used in project 411082643095 before "
                     "or it is disabled.", [info("SERVICE_DISABLED")]), "permission_denied"),
        (403, google(403, "PERMISSION_DENIED", "Requests to this API generativelanguage.googleapis.com method "
                     "google.ai.generativelanguage.v1beta.GenerativeService.StreamGenerateContent are blocked.",
                     [info("API_KEY_SERVICE_BLOCKED")]), "permission_denied"),
        (404, google(404, "NOT_FOUND", "models/gemini-pro is not found for API version v1beta, or is not supported for "
                     "generateContent. Call ListModels to see the list of available models and their supported methods."),
         "model_not_found"),
        (429, google(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
                     "details.", [quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10")]), "rate_limited"),
        (429, google(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."), "rate_limited"),
        (429, google(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.",
                     [quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "250")]), "quota_exceeded"),
        (429, google(429, "RESOURCE_EXHAUSTED", "Quota exceeded for metric: generate_content_free_tier_requests, "
                     "limit: 0, model: gemini-2.5-pro"), "quota_exceeded"),
        (400, google(400, "FAILED_PRECONDITION", "User location is not supported for the API use."), "permission_denied"),
        (400, google(400, "FAILED_PRECONDITION", "Gemini API free tier is not available in your country. Please enable "
                     "billing on your project in Google AI Studio."), "quota_exceeded"),
        (503, google(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), "provider_error"),
        (400, google(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\"."), "bad_request"),
    ],
)
def test_gemini_error_bodies(status, body, expected):
    assert classify("gemini", status, body) == expected


def test_gemini_invalid_key_is_a_400_not_a_401():
    body = google(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [info("API_KEY_INVALID")])
    adapter = get_adapter("gemini")
    verdict = adapter.evaluate(adapter.build_check_request(target("gemini"), settings()), response(400, body))
    assert verdict.code == "invalid_api_key"
    assert "API_KEY_INVALID" in verdict.message


# --- whole answers: status classes, shapes, reasoning models ---------------------------------------


def settings() -> Settings:
    return Settings(_env_file=None, openai_base_url="https://api.openai.com/v1/", anthropic_base_url="https://api.anthropic.com/",
                    gemini_base_url="https://generativelanguage.googleapis.com")


def target(kind: str, model: str = "m-1", endpoint: str | None = None, api_version: str | None = None) -> ProviderTarget:
    return ProviderTarget(kind=kind, model=model, api_key=SecretStr(KEY), endpoint=endpoint, api_version=api_version)


def response(status: int, body, headers=None) -> ProviderResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ProviderResponse(status, headers or {}, raw)


def evaluate(kind: str, status: int, body, t: ProviderTarget | None = None) -> Verdict:
    adapter = get_adapter(kind)
    t = t or target(kind, endpoint="https://llm.example.com/v1/" if kind == "openai_compatible" else
                    "https://r.openai.azure.com/" if kind == "azure_openai" else None, api_version="2024-10-21")
    return adapter.evaluate(adapter.build_check_request(t, settings()), response(status, body))


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "azure_openai", "openai_compatible"])
def test_answers_that_are_not_the_providers_format(kind):
    assert evaluate(kind, 200, b"<!DOCTYPE html><html>It works!</html>").code == "unexpected_response"
    assert evaluate(kind, 404, b"404 page not found").code == "unexpected_response"
    assert evaluate(kind, 200, {"hello": "world"}).code == "unexpected_response"
    assert evaluate(kind, 302, b"").code == "unexpected_response"
    assert evaluate(kind, 502, b"<html>Bad gateway</html>").code == "provider_error"  # the provider's edge failed
    assert evaluate(kind, 429, b"<html>Too many requests</html>").code == "rate_limited"


def test_a_reasoning_model_that_spent_the_budget_thinking_is_ok():
    empty = {"id": "c", "object": "chat.completion", "model": "o3-mini", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "length"}]}
    assert evaluate("openai", 200, empty).ok
    limit = oai("Could not finish the message because max_tokens or model output limit was reached. Please try again "
                "with higher max_tokens.")
    assert evaluate("openai", 400, limit).ok
    assert evaluate("azure_openai", 400, limit).ok
    no_text = {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}], "usageMetadata": {}}
    assert evaluate("gemini", 200, no_text).ok


def test_a_refused_token_parameter_leads_to_one_request_with_the_other():
    adapter = get_adapter("openai_compatible")
    t = target("openai_compatible", endpoint="https://llm.example.com/v1/")
    first = adapter.build_check_request(t, settings())
    assert "max_tokens" in first.json
    refusal = response(400, oai("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                                "'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter"))
    second = adapter.next_request(t, settings(), first, refusal, adapter.evaluate(first, refusal))
    assert second is not None and "max_completion_tokens" in second.json and "max_tokens" not in second.json
    assert adapter.next_request(t, settings(), second, refusal, adapter.evaluate(second, refusal)) is None


def test_openai_never_sends_max_tokens_and_azure_picks_by_api_version():
    assert "max_tokens" not in get_adapter("openai").build_check_request(target("openai", "gpt-5"), settings()).json
    azure = get_adapter("azure_openai")
    old = azure.build_check_request(target("azure_openai", "d", "https://r.openai.azure.com/", "2024-06-01"), settings())
    new = azure.build_check_request(target("azure_openai", "d", "https://r.openai.azure.com/", "2025-04-01-preview"), settings())
    assert "max_tokens" in old.json and "max_completion_tokens" in new.json


# --- URLs and headers ------------------------------------------------------------------------------


def test_urls_never_double_slash_and_keys_stay_in_headers():
    s = settings()
    openai = get_adapter("openai").build_check_request(target("openai"), s)
    assert openai.url == "https://api.openai.com/v1/chat/completions"
    assert openai.headers["Authorization"] == f"Bearer {KEY}"
    anthropic = get_adapter("anthropic").build_check_request(target("anthropic", "claude-haiku-4-5"), s)
    assert anthropic.url == "https://api.anthropic.com/v1/messages"
    assert anthropic.headers["x-api-key"] == KEY and anthropic.headers["anthropic-version"] == "2023-06-01"
    assert anthropic.json["max_tokens"] >= 1
    gemini = get_adapter("gemini").build_check_request(target("gemini", "models/gemini-2.5-flash"), s)
    assert gemini.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert gemini.headers["x-goog-api-key"] == KEY and KEY not in gemini.url
    assert KEY not in repr(gemini) and KEY not in repr(openai)


@pytest.mark.parametrize(
    ("endpoint", "version", "url"),
    [
        ("https://r.openai.azure.com/", "2024-10-21",
         "https://r.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"),
        ("https://r.openai.azure.com/openai/", "2024-10-21",
         "https://r.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"),
        ("https://r.openai.azure.com/", "v1", "https://r.openai.azure.com/openai/v1/chat/completions"),
        ("https://r.openai.azure.com/openai/v1/", "v1", "https://r.openai.azure.com/openai/v1/chat/completions"),
    ],
)
def test_azure_url_styles(endpoint, version, url):
    adapter = get_adapter("azure_openai")
    request = adapter.build_check_request(target("azure_openai", "gpt4o-prod", endpoint, version), settings())
    assert request.url == url
    assert request.headers["api-key"] == KEY and "Authorization" not in request.headers
    assert ("model" in request.json) == (version == "v1")
    assert adapter.base_url(target("azure_openai", "d", endpoint, version), settings()) == "https://r.openai.azure.com"


@pytest.mark.parametrize(
    ("endpoint", "bases"),
    [
        ("https://api.groq.com/openai/v1/", ["https://api.groq.com/openai/v1"]),
        ("http://ollama.internal:11434/", ["http://ollama.internal:11434/v1", "http://ollama.internal:11434"]),
        ("https://llm.example.com/compat/", ["https://llm.example.com/compat", "https://llm.example.com/compat/v1"]),
    ],
)
def test_openai_compatible_bases(endpoint, bases):
    adapter = get_adapter("openai_compatible")
    assert adapter.candidate_bases(target("openai_compatible", endpoint=endpoint)) == bases
    assert adapter.base_url(target("openai_compatible", endpoint=endpoint), settings()) == bases[0]


def test_sdk_base_urls_of_the_native_kinds():
    s = settings()
    assert get_adapter("openai").base_url(target("openai"), s) == "https://api.openai.com/v1"
    assert get_adapter("anthropic").base_url(target("anthropic"), s) == "https://api.anthropic.com"
    assert get_adapter("gemini").base_url(target("gemini"), s) == "https://generativelanguage.googleapis.com"
    assert join_url("https://x/v1/", "/chat/completions") == "https://x/v1/chat/completions"


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "350"}) == 0.35
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None
    body = google(429, "RESOURCE_EXHAUSTED", "quota", [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}])
    verdict = evaluate("gemini", 429, body)
    assert verdict.code == "rate_limited" and verdict.retry_after == 1.5


def test_chat_requests_and_replies_share_one_shape():
    s = settings()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    openai = get_adapter("openai").build_chat_request(target("openai", "gpt-4.1"), s, messages, tools, 512)
    assert openai.json["tools"] == tools and openai.json["max_completion_tokens"] == 512
    reply = get_adapter("openai").parse_chat_response({"model": "gpt-4.1", "choices": [{"finish_reason": "tool_calls",
        "message": {"content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                     "function": {"name": "read_file", "arguments": "{\"p\": 1}"}}]}}]})
    assert reply.tool_calls == [{"id": "c1", "name": "read_file", "arguments": "{\"p\": 1}"}] and reply.text == ""
    anthropic = get_adapter("anthropic").build_chat_request(target("anthropic"), s, messages, None, 512)
    assert anthropic.json["system"] == "Be brief." and anthropic.json["messages"] == [{"role": "user", "content": "Hi"}]
    assert get_adapter("anthropic").parse_chat_response(
        {"content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "model": "c"}).text == "Hello"
    gemini = get_adapter("gemini").build_chat_request(target("gemini"), s, messages, None, 512)
    assert gemini.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert get_adapter("gemini").parse_chat_response(
        {"candidates": [{"content": {"parts": [{"text": "Hel"}, {"text": "lo"}]}, "finishReason": "STOP"}]}).text == "Hello"
