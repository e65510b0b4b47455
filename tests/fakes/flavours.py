"""One handler per provider wire format. Each answers an `Ask` (the parsed request) as the real API would.

Authentication is checked first, exactly as the provider does it; the behaviour token in the key
(`fake-<behaviour>-...`, see server.py) then picks the answer. Models named `missing...` do not exist.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import bodies as b

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
AZURE_VERSIONS = {"2024-02-01", "2024-06-01", "2024-10-21", "2025-01-01-preview", "2025-04-01-preview", "preview"}
AZURE_COMPLETION_TOKENS_SINCE = "2024-09-01"


@dataclass
class Ask:
    """A request as the fakes see it."""

    flavour: str
    method: str
    path: str  # below the flavour prefix, without leading "/"
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any
    key: str | None
    behaviour: str
    first: bool  # the first request with this key (flaky behaviours fail only then)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return str(self.json.get("model") or "") if isinstance(self.json, dict) else ""


def is_reasoning(model: str) -> bool:
    return model.lower().startswith(REASONING_PREFIXES)


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


# --- OpenAI, and the OpenAI-compatible servers (generic, vLLM, Ollama) ------------------------------


def openai_like(ask: Ask) -> web.Response:
    style = ask.flavour  # openai | compat | vllm | ollama
    path = ask.path
    if not path.startswith("v1/"):
        return _not_found(style, ask)
    auth = _openai_auth(ask, style)
    if auth is not None:
        return auth
    failure = _openai_behaviour(ask, style)
    if failure is not None:
        return failure
    rest = path[3:]
    if ask.method == "GET" and rest == "models":
        data = [{"id": m, "object": "model", "owned_by": style} for m in ("gpt-4o-mini", "llama3.2:latest", "fake-model")]
        return web.json_response({"object": "list", "data": data}, headers={"x-request-id": b.request_id()})
    if ask.method == "GET" and rest.startswith("models/") and style == "openai":
        model = rest[len("models/"):]
        if model.startswith("missing"):
            return b.openai_error(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
        return b.openai_model(model)
    if ask.method == "POST" and rest == "chat/completions":
        return _openai_chat(ask, style)
    return _not_found(style, ask)


def _not_found(style: str, ask: Ask) -> web.Response:
    if style == "openai":
        return b.openai_error(404, f"Invalid URL ({ask.method} /v1/{ask.path.removeprefix('v1/')})")
    if style == "vllm":
        return web.json_response({"detail": "Not Found"}, status=404)
    return _text(404, "404 page not found")  # Ollama and Go/Node servers: plain text


def _openai_auth(ask: Ask, style: str) -> web.Response | None:
    if style == "ollama":
        return None  # Ollama ignores the Authorization header
    if style == "vllm":
        return None if ask.key and ask.key.startswith("fake-") else web.json_response({"error": "Unauthorized"}, status=401)
    if not ask.key:
        return b.openai_error(401, b.OPENAI_NO_KEY)
    if not ask.key.startswith("fake-"):
        return b.openai_error(401, b.OPENAI_BAD_KEY.format(shown=b.masked(ask.key)), code="invalid_api_key")
    return None


def _openai_behaviour(ask: Ask, style: str) -> web.Response | None:
    kind = ask.behaviour
    if kind == "denied":
        return b.openai_error(401, b.OPENAI_SCOPES)
    if kind == "region":
        return b.openai_error(403, "Country, region, or territory not supported", type_="request_forbidden",
                              code="unsupported_country_region_territory")
    if kind == "ratelimit" or (kind == "flaky429" and ask.first):
        wait = "20" if kind == "ratelimit" else "1"
        return b.openai_error(429, b.OPENAI_RATE.format(model=ask.model or "gpt-4o-mini"), type_="requests",
                              code="rate_limit_exceeded", headers={"retry-after": wait})
    if kind == "quota":
        if style == "compat":  # OpenRouter-style servers use 402 for exhausted credit
            return web.json_response({"error": {"message": "Insufficient credits. Add more using /settings/credits",
                                                 "code": 402}}, status=402)
        return b.openai_error(429, b.OPENAI_QUOTA, type_="insufficient_quota", code="insufficient_quota")
    if kind == "overloaded":
        return b.openai_error(503, b.OPENAI_OVERLOADED, type_="server_error")
    if kind == "error500" or (kind == "flaky500" and ask.first):
        return b.openai_error(500, b.OPENAI_SERVER, type_="server_error")
    if kind == "badrequest":
        return b.openai_error(400, "Invalid value for 'messages': expected an array.", param="messages")
    if kind == "echo":
        return b.openai_error(400, f"Invalid header for key {ask.key} (shown as {b.masked(ask.key or '')}).")
    return None


def _openai_chat(ask: Ask, style: str) -> web.Response:
    body = ask.json if isinstance(ask.json, dict) else {}
    model = ask.model
    if not model or not isinstance(body.get("messages"), list):
        return b.openai_error(400, "you must provide a model parameter", param="model")
    if model.startswith("missing"):
        if style == "ollama":
            return web.json_response({"error": f'model "{model}" not found, try pulling it first'}, status=404)
        if style == "vllm":
            return web.json_response({"error": {"message": f"The model `{model}` does not exist.", "type": "NotFoundError",
                                                "param": None, "code": 404}}, status=404)
        return b.openai_error(404, b.OPENAI_NO_MODEL.format(model=model), code="model_not_found")
    if style == "openai" and is_reasoning(model):
        return reasoning_answer(ask, body)
    return b.openai_completion(model, tool_calls=b.openai_tool_calls(body.get("tools")))


def reasoning_answer(ask: Ask, body: dict) -> web.Response:
    """o-series / gpt-5: refuse max_tokens; a tiny budget ends as "length" with no text, or (models named
    ...-strict) as the 400 "output limit was reached"."""
    if "max_tokens" in body:
        return b.openai_error(400, b.OPENAI_MAX_TOKENS, param="max_tokens", code="unsupported_parameter")
    limit = body.get("max_completion_tokens")
    if isinstance(limit, int) and limit < 256:
        if "strict" in ask.model:
            return b.openai_error(400, b.OPENAI_OUTPUT_LIMIT)
        return b.openai_completion(ask.model, content="", finish_reason="length", reasoning_tokens=limit)
    return b.openai_completion(ask.model)


# --- Azure OpenAI ---------------------------------------------------------------------------------


def azure(ask: Ask) -> web.Response:
    path = ask.path
    version = ask.query.get("api-version", "")
    if path == "openai/v1/chat/completions" and ask.method == "POST":
        deployment, v1 = ask.model, True
    elif path.startswith("openai/deployments/") and path.endswith("/chat/completions") and ask.method == "POST":
        if version not in AZURE_VERSIONS:
            return b.azure_error(404, "404", "Resource not found")
        deployment, v1 = path[len("openai/deployments/"):-len("/chat/completions")], False
    else:
        return b.azure_error(404, "404", "Resource not found")
    if not ask.key or not ask.key.startswith("fake-"):
        return b.azure_error(401, "401", b.AZURE_BAD_KEY)
    failure = _azure_behaviour(ask, version or "v1")
    if failure is not None:
        return failure
    body = ask.json if isinstance(ask.json, dict) else {}
    if v1 and not deployment:
        return b.openai_error(400, "Missing required parameter: 'model'.", param="model")
    if deployment.startswith("missing"):
        return b.azure_error(404, "DeploymentNotFound", b.AZURE_NO_DEPLOYMENT)
    if not v1 and version[:10] < AZURE_COMPLETION_TOKENS_SINCE and "max_completion_tokens" in body:
        return b.openai_error(400, b.AZURE_UNRECOGNIZED.format(param="max_completion_tokens"))
    if is_reasoning(deployment):
        return reasoning_answer(ask, body)
    return b.openai_completion(deployment, headers={"apim-request-id": b.request_id("")},
                               tool_calls=b.openai_tool_calls(body.get("tools")))


def _azure_behaviour(ask: Ask, version: str) -> web.Response | None:
    kind = ask.behaviour
    if kind == "denied":
        return b.azure_error(403, "403", b.AZURE_FIREWALL)
    if kind == "ratelimit" or (kind == "flaky429" and ask.first):
        wait = "20" if kind == "ratelimit" else "1"
        return b.azure_error(429, "429", b.AZURE_RATE.format(version=version), headers={"retry-after": wait})
    if kind == "overloaded":
        return b.azure_error(503, "ServiceUnavailable", "The service is temporarily unable to process your request.")
    if kind == "error500" or (kind == "flaky500" and ask.first):
        return b.azure_error(500, "InternalServerError", "The server had an error processing your request.")
    if kind == "badrequest":
        return b.openai_error(400, "Invalid value for 'messages': expected an array.", param="messages")
    if kind == "echo":
        return b.openai_error(400, f"Unrecognized key {ask.key} in request.")
    return None


# --- Anthropic ------------------------------------------------------------------------------------


def anthropic(ask: Ask) -> web.Response:
    if not ask.key:
        return b.anthropic_error(401, "authentication_error", "x-api-key header is required")
    if not ask.key.startswith("fake-"):
        return b.anthropic_error(401, "authentication_error", "invalid x-api-key")
    if ask.headers.get("anthropic-version") != "2023-06-01":
        return b.anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
    failure = _anthropic_behaviour(ask)
    if failure is not None:
        return failure
    if ask.method == "GET" and ask.path.startswith("v1/models/"):
        model = ask.path[len("v1/models/"):]
        if model.startswith("missing"):
            return b.anthropic_error(404, "not_found_error", f"model: {model}")
        return b.anthropic_model(model)
    if ask.method != "POST" or ask.path != "v1/messages":
        return b.anthropic_error(404, "not_found_error", "Not Found")
    body = ask.json if isinstance(ask.json, dict) else {}
    if "max_tokens" not in body:
        return b.anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    if ask.model.startswith("missing"):
        return b.anthropic_error(404, "not_found_error", f"model: {ask.model}")
    return b.anthropic_message(ask.model)


def _anthropic_behaviour(ask: Ask) -> web.Response | None:
    kind = ask.behaviour
    if kind == "denied":
        return b.anthropic_error(403, "permission_error",
                                 "Your API key does not have permission to use the specified resource.")
    if kind == "ratelimit" or (kind == "flaky429" and ask.first):
        wait = "20" if kind == "ratelimit" else "1"
        return b.anthropic_error(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate "
                                 "limit. Please try again later.", headers={"retry-after": wait})
    if kind == "quota":
        return b.anthropic_error(400, "invalid_request_error", b.ANTHROPIC_CREDIT)
    if kind == "overloaded" or (kind == "flaky529" and ask.first):
        return b.anthropic_error(529, "overloaded_error", "Overloaded")
    if kind == "error500" or (kind == "flaky500" and ask.first):
        return b.anthropic_error(500, "api_error", "Internal server error")
    if kind == "badrequest":
        return b.anthropic_error(400, "invalid_request_error", "messages: roles must alternate between \"user\" and "
                                 "\"assistant\", but found multiple \"user\" roles in a row")
    if kind == "echo":
        return b.anthropic_error(400, "invalid_request_error", f"invalid x-api-key {ask.key}")
    return None


# --- Gemini ---------------------------------------------------------------------------------------


def gemini(ask: Ask) -> web.Response:
    key = ask.key
    if not key:
        return b.gemini_error(403, "PERMISSION_DENIED", b.GEMINI_NO_KEY)
    if not key.startswith("fake-"):
        details = [b.gemini_reason("API_KEY_INVALID"), {"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                                                        "locale": "en-US", "message": b.GEMINI_BAD_KEY}]
        return b.gemini_error(400, "INVALID_ARGUMENT", b.GEMINI_BAD_KEY, details)
    failure = _gemini_behaviour(ask)
    if failure is not None:
        return failure
    if not ask.path.startswith("v1beta/models/"):
        return b.gemini_error(404, "NOT_FOUND", "Requested entity was not found.")
    name = ask.path[len("v1beta/models/"):]
    model, _, action = name.partition(":")
    if model.startswith("missing"):
        return b.gemini_error(404, "NOT_FOUND", b.GEMINI_NO_MODEL.format(model=model))
    if ask.method == "GET" and not action:
        return b.gemini_model(model)
    if ask.method != "POST" or action != "generateContent":
        return b.gemini_error(404, "NOT_FOUND", "Requested entity was not found.")
    config = (ask.json or {}).get("generationConfig") or {} if isinstance(ask.json, dict) else {}
    if "pro" in model and int(config.get("maxOutputTokens") or 8192) < 256:
        return b.gemini_content(model, text="", finish="MAX_TOKENS")  # thinking spent the budget
    return b.gemini_content(model)


def _gemini_behaviour(ask: Ask) -> web.Response | None:
    kind = ask.behaviour
    if kind == "denied":
        return b.gemini_error(403, "PERMISSION_DENIED", b.GEMINI_DISABLED,
                              [b.gemini_reason("SERVICE_DISABLED", consumer="projects/123456789012")])
    if kind == "region":
        return b.gemini_error(400, "FAILED_PRECONDITION", b.GEMINI_LOCATION)
    if kind == "ratelimit":
        return b.gemini_error(429, "RESOURCE_EXHAUSTED", b.GEMINI_QUOTA,
                              b.gemini_quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", "20s"))
    if kind == "flaky429" and ask.first:
        return b.gemini_error(429, "RESOURCE_EXHAUSTED", b.GEMINI_QUOTA,
                              b.gemini_quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", "1s"))
    if kind == "quota":
        return b.gemini_error(429, "RESOURCE_EXHAUSTED", b.GEMINI_QUOTA,
                              b.gemini_quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "0", None))
    if kind == "overloaded":
        return b.gemini_error(503, "UNAVAILABLE", b.GEMINI_OVERLOADED)
    if kind == "error500" or (kind == "flaky500" and ask.first):
        return b.gemini_error(500, "INTERNAL", b.GEMINI_INTERNAL)
    if kind == "badrequest":
        return b.gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\": Cannot "
                              "find field.")
    if kind == "echo":
        return b.gemini_error(400, "INVALID_ARGUMENT", f"Invalid value for key {ask.key}.")
    return None


HANDLERS = {
    "openai": openai_like,
    "compat": openai_like,
    "vllm": openai_like,
    "ollama": openai_like,
    "azure": azure,
    "anthropic": anthropic,
    "gemini": gemini,
}
