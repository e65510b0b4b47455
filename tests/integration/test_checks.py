"""Live checks over real HTTP against the fake providers: every error code through the real adapters.

Transport failures, the egress guard and key hygiene are in test_checks_transport.py.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest
from pydantic import SecretStr

from service.checks import ERROR_CODES, CheckResult, run_check
from service.config import Settings
from service.egress import EgressClient
from service.providers.target import ProviderTarget
from tests.fakes import start_fake_providers


@pytest.fixture
async def fakes():
    running = await start_fake_providers()
    yield running
    await running.close()


def make_settings(fakes, **overrides) -> Settings:
    values = {"egress_allow": "127.0.0.1", "check_timeout": 5.0, **fakes.native_settings(), **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture
async def client(fakes):
    async with EgressClient(make_settings(fakes)) as shared:
        yield shared


def key(behaviour: str) -> str:
    """A fresh key selecting a fake behaviour (fresh, so flaky behaviours start over)."""
    return f"fake-{behaviour}-{secrets.token_hex(12)}"


def make_target(fakes, kind: str, model: str, api_key: str, api_version: str | None = None, flavour: str | None = None):
    endpoint = fakes.base_url(flavour or kind) if kind in ("azure_openai", "openai_compatible") else None
    if kind == "azure_openai" and api_version is None:
        api_version = "2024-10-21"
    return ProviderTarget(kind=kind, model=model, api_key=SecretStr(api_key), endpoint=endpoint, api_version=api_version)


async def check(fakes, client, kind, model="fake-model", api_key=None, *, probe=False, flavour=None,
                api_version=None) -> CheckResult:
    target = make_target(fakes, kind, model, api_key or key("ok"), api_version, flavour)
    return await run_check(target, client, make_settings(fakes), probe=probe)


KINDS = ["openai", "anthropic", "gemini", "azure_openai", "openai_compatible"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_valid_key_and_model_pass(fakes, client, kind):
    result = await check(fakes, client, kind, "gpt-4o-mini")
    body = result.as_dict()
    assert set(body) == {"ok", "latency_ms", "model", "checked_at"}
    assert body["ok"] is True and body["model"] == "gpt-4o-mini" and isinstance(body["latency_ms"], int)
    assert body["checked_at"].endswith("Z")
    assert CheckResult.from_dict(body).ok


# (kind, flavour, behaviour, model, code, provider status)
ERROR_MATRIX = [
    ("openai", None, "denied", "gpt-4o", "permission_denied", 401),
    ("openai", None, "region", "gpt-4o", "permission_denied", 403),
    ("anthropic", None, "denied", "claude-haiku-4-5", "permission_denied", 403),
    ("gemini", None, "denied", "gemini-2.5-flash", "permission_denied", 403),
    ("gemini", None, "region", "gemini-2.5-flash", "permission_denied", 400),
    ("azure_openai", None, "denied", "gpt4o", "permission_denied", 403),
    ("openai", None, "ok", "missing-model", "model_not_found", 404),
    ("anthropic", None, "ok", "missing-model", "model_not_found", 404),
    ("gemini", None, "ok", "missing-model", "model_not_found", 404),
    ("azure_openai", None, "ok", "missing-deployment", "model_not_found", 404),
    ("openai_compatible", None, "ok", "missing-model", "model_not_found", 404),
    ("openai_compatible", "ollama", "ok", "missing-model", "model_not_found", 404),
    ("openai_compatible", "vllm", "ok", "missing-model", "model_not_found", 404),
    ("openai", None, "ratelimit", "gpt-4o", "rate_limited", 429),
    ("anthropic", None, "ratelimit", "claude-haiku-4-5", "rate_limited", 429),
    ("gemini", None, "ratelimit", "gemini-2.5-flash", "rate_limited", 429),
    ("azure_openai", None, "ratelimit", "gpt4o", "rate_limited", 429),
    ("openai_compatible", None, "ratelimit", "llama3.2", "rate_limited", 429),
    ("openai", None, "quota", "gpt-4o", "quota_exceeded", 429),
    ("anthropic", None, "quota", "claude-haiku-4-5", "quota_exceeded", 400),
    ("gemini", None, "quota", "gemini-2.5-pro", "quota_exceeded", 429),
    ("openai_compatible", None, "quota", "llama3.2", "quota_exceeded", 402),
    ("openai", None, "badrequest", "gpt-4o", "bad_request", 400),
    ("anthropic", None, "badrequest", "claude-haiku-4-5", "bad_request", 400),
    ("gemini", None, "badrequest", "gemini-2.5-flash", "bad_request", 400),
    ("azure_openai", None, "badrequest", "gpt4o", "bad_request", 400),
    ("openai_compatible", None, "badrequest", "llama3.2", "bad_request", 400),
]


@pytest.mark.parametrize(("kind", "flavour", "behaviour", "model", "code", "status"), ERROR_MATRIX)
async def test_provider_errors_get_the_right_code_with_one_request(fakes, client, kind, flavour, behaviour, model,
                                                                    code, status):
    result = await check(fakes, client, kind, model, key(behaviour), flavour=flavour)
    body = result.as_dict()
    assert set(body) == {"ok", "error", "checked_at"} and body["ok"] is False
    assert body["error"]["code"] == code and body["error"]["provider_status"] == status
    assert set(body["error"]) == {"code", "message", "provider_status", "provider_request_id"}
    assert len(fakes.log) == 1  # 4xx and long rate limits are never retried


@pytest.mark.parametrize(
    ("kind", "flavour", "status"),
    [("openai", None, 401), ("anthropic", None, 401), ("gemini", None, 400), ("azure_openai", None, 401),
     ("openai_compatible", None, 401), ("openai_compatible", "vllm", 401)],
)
async def test_a_wrong_key_is_invalid_api_key(fakes, client, kind, flavour, status):
    result = await check(fakes, client, kind, "gpt-4o", "sk-wrong-" + secrets.token_hex(16), flavour=flavour)
    assert result.error.code == "invalid_api_key" and result.error.provider_status == status
    assert result.error.message.startswith("The API key was rejected by")
    assert len(fakes.log) == 1


async def test_request_ids_come_from_each_providers_header(fakes, client):
    openai = await check(fakes, client, "openai", "missing-model")
    anthropic = await check(fakes, client, "anthropic", "missing-model")
    gemini = await check(fakes, client, "gemini", "missing-model")
    azure = await check(fakes, client, "azure_openai", "missing-deployment")
    assert openai.error.provider_request_id.startswith("req_")
    assert anthropic.error.provider_request_id.startswith("req_011C")  # the `request-id` header
    assert gemini.error.provider_request_id is None  # Gemini sends none
    assert azure.error.provider_request_id


async def test_the_anthropic_message_names_the_provider_and_its_error_type(fakes, client):
    result = await check(fakes, client, "anthropic", "claude-haiku-4-5", "sk-ant-api03-" + secrets.token_hex(20))
    assert result.error.message == "The API key was rejected by Anthropic (401 authentication_error)."


@pytest.mark.parametrize(
    ("kind", "model", "api_version"),
    [("openai", "o3-mini", None), ("openai", "gpt-5-strict", None), ("openai", "o4-mini", None),
     ("azure_openai", "o4-mini", "2024-10-21"), ("azure_openai", "gpt-5", "v1")],
)
async def test_reasoning_models_are_not_failed_by_how_the_check_asks(fakes, client, kind, model, api_version):
    result = await check(fakes, client, kind, model, api_version=api_version)
    assert result.ok, result.as_dict()
    sent = fakes.log[-1]["json"]
    assert "max_tokens" not in sent and sent["max_completion_tokens"] > 0


async def test_an_old_azure_api_version_falls_back_to_max_tokens(fakes, client):
    result = await check(fakes, client, "azure_openai", "gpt4o", api_version="2024-06-01")
    assert result.ok and "max_tokens" in fakes.log[-1]["json"]
    fakes.clear()
    # An o-series deployment on an api-version that predates max_completion_tokens: one switch, then the
    # provider's refusal stands as bad_request (the deployment needs a newer api-version).
    result = await check(fakes, client, "azure_openai", "o4-mini", api_version="2024-06-01")
    assert result.error.code == "bad_request" and len(fakes.log) == 2
    assert "max_tokens" in fakes.log[0]["json"] and "max_completion_tokens" in fakes.log[1]["json"]


async def test_azure_wrong_api_version_is_bad_request_not_model_not_found(fakes, client):
    result = await check(fakes, client, "azure_openai", "gpt4o", api_version="2023-01-01-nope")
    assert result.error.code == "bad_request" and result.error.provider_status == 404
    assert "api-version" in result.error.message


async def test_gemini_thinking_model_out_of_tokens_is_ok_and_the_key_is_only_in_the_header(fakes, client):
    api_key = key("ok")
    result = await check(fakes, client, "gemini", "gemini-2.5-pro", api_key)
    assert result.ok
    (sent,) = fakes.requests("gemini")
    assert sent["headers"]["x-goog-api-key"] == api_key
    assert api_key not in sent["url"] and "key=" not in sent["query"]


@pytest.mark.parametrize(
    ("flavour", "endpoint_kind", "api_key", "base_suffix"),
    [("compat", "compat", key("ok"), "/compat/v1"), ("compat", "compat_bare", key("ok"), "/compat/v1"),
     ("ollama", "ollama", "anything-ollama-ignores-it", "/ollama/v1"),
     ("ollama", "ollama_bare", "anything-ollama-ignores-it", "/ollama/v1"), ("vllm", "vllm", key("ok"), "/vllm/v1")],
)
async def test_openai_compatible_endpoints_with_and_without_v1(fakes, client, flavour, endpoint_kind, api_key, base_suffix):
    target = ProviderTarget(kind="openai_compatible", model="llama3.2", api_key=SecretStr(api_key),
                            endpoint=fakes.base_url(endpoint_kind))
    result = await run_check(target, client, make_settings(fakes))
    assert result.ok, result.as_dict()
    assert result.base_url == fakes.root + base_suffix
    assert fakes.log[-1]["path"] == base_suffix + "/chat/completions"


@pytest.mark.parametrize(
    ("kind", "behaviour", "attempts"),
    [("openai", "flaky500", 2), ("anthropic", "flaky529", 2), ("gemini", "flaky500", 2), ("azure_openai", "flaky500", 2),
     ("openai_compatible", "flakyreset", 2)],
)
async def test_transient_failures_are_retried(fakes, client, kind, behaviour, attempts):
    result = await check(fakes, client, kind, "gpt-4o", key(behaviour))
    assert result.ok and len(fakes.log) == attempts


@pytest.mark.parametrize("kind", KINDS)
async def test_a_short_retry_after_is_waited_out_once(fakes, client, kind):
    started = time.monotonic()
    result = await check(fakes, client, kind, "gpt-4o", key("flaky429"))
    assert result.ok and len(fakes.log) == 2
    assert time.monotonic() - started >= 0.9  # the fake asked for 1 s


@pytest.mark.parametrize(("kind", "status"), [("anthropic", 529), ("openai", 503), ("gemini", 503), ("azure_openai", 503)])
async def test_a_provider_that_keeps_failing_is_provider_error_after_three_tries(fakes, client, kind, status):
    result = await check(fakes, client, kind, "gpt-4o", key("overloaded"))
    assert result.error.code == "provider_error" and result.error.provider_status == status
    assert len(fakes.log) == 3


async def test_retries_stay_inside_the_time_budget(fakes):
    fakes.delay = 0.4
    settings = make_settings(fakes, check_timeout=1.0)
    async with EgressClient(settings) as client:
        started = time.monotonic()
        result = await run_check(make_target(fakes, "anthropic", "claude", key("overloaded")), client, settings)
    assert time.monotonic() - started < 1.2
    assert result.error.code in ("provider_error", "timeout")
    assert len(fakes.log) == 2  # a third try would not fit into the budget


@pytest.mark.parametrize(
    ("kind", "model", "method", "path"),
    [("openai", "gpt-4o", "GET", "/openai/v1/models/gpt-4o"),
     ("anthropic", "claude-haiku-4-5", "GET", "/anthropic/v1/models/claude-haiku-4-5"),
     ("gemini", "gemini-2.5-flash", "GET", "/gemini/v1beta/models/gemini-2.5-flash"),
     ("openai_compatible", "llama3.2", "GET", "/compat/v1/models"),
     ("azure_openai", "gpt4o", "POST", "/azure/openai/deployments/gpt4o/chat/completions")],
)
async def test_probes_use_the_free_metadata_endpoint_where_there_is_one(fakes, client, kind, model, method, path):
    result = await check(fakes, client, kind, model, probe=True)
    assert result.ok, result.as_dict()
    assert (fakes.log[-1]["method"], fakes.log[-1]["path"]) == (method, path)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "openai_compatible", "azure_openai"])
async def test_probes_report_a_missing_model(fakes, client, kind):
    result = await check(fakes, client, kind, "missing-model", probe=True)
    assert result.error.code == "model_not_found"


async def test_one_client_serves_many_different_checks_at_once(fakes, client):
    cases = [("openai", "gpt-4o", "ok", True), ("openai", "gpt-4o", "quota", "quota_exceeded"),
             ("anthropic", "claude", "ok", True), ("anthropic", "claude", "denied", "permission_denied"),
             ("gemini", "gemini-2.5-flash", "ratelimit", "rate_limited"), ("gemini", "missing-x", "ok", "model_not_found"),
             ("azure_openai", "gpt4o", "slow200", True), ("openai_compatible", "llama3.2", "ok", True)] * 25
    results = await asyncio.gather(*(check(fakes, client, kind, model, key(b)) for kind, model, b, _ in cases))
    for (_kind, _model, _b, expected), result in zip(cases, results):
        assert (result.ok if expected is True else result.error.code) == expected
    assert client.started


def test_error_codes_are_the_contracts_closed_set():
    assert ERROR_CODES == ("invalid_api_key", "permission_denied", "model_not_found", "rate_limited", "quota_exceeded",
                           "bad_request", "provider_error", "timeout", "unreachable", "tls_error", "endpoint_blocked",
                           "unexpected_response")
    failed = CheckResult.failure("timeout", "No answer.")
    assert CheckResult.from_dict(json.loads(json.dumps(failed.as_dict()))).as_dict() == failed.as_dict()
