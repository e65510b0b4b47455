"""The AI services' client (`service.client`) against the real API over HTTP and the fake providers."""
from __future__ import annotations

import json
import uuid

import pytest
from cryptography.fernet import Fernet

from service.client import (
    CredentialsUnavailable,
    FeatureUnsupported,
    InvalidRequest,
    LLMProvidersClient,
    NotAuthorized,
    ProviderUnavailable,
    ResolvedProvider,
    ResolverUnavailable,
)
from tests.conftest import good_key
from tests.integration.test_resolve import activate_directly, free_port

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash",
          "azure_openai": "gpt-4o-prod", "openai_compatible": "fake-model"}
OPENAI_STYLE = ("openai", "azure_openai", "openai_compatible")
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file of the repository",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                          "required": ["path"]}}}]
MESSAGES = [{"role": "system", "content": "You triage findings."}, {"role": "user", "content": "Is this bad?"}]


@pytest.fixture
def fake_settings(make_settings, database_url, fakes):
    return make_settings(database_url=database_url, **fakes.native_settings())


@pytest.fixture
async def api(api_factory, fake_settings):
    return await api_factory(fake_settings)


@pytest.fixture
async def client(api):
    async with LLMProvidersClient(api.base, api.token("service"), egress_allow=["127.0.0.1"]) as client:
        yield client


async def byo(api, fakes, kind: str, key: str | None = None, org: str | None = None) -> tuple[str, dict]:
    """An org whose active provider of `kind` points at the fakes; returns (org, record with its key)."""
    org = org or f"org-{uuid.uuid4().hex[:8]}"
    body = {"kind": kind, "name": kind, "model": MODELS[kind], "api_key": key or good_key()}
    if kind == "azure_openai":
        body.update(endpoint=fakes.base_url("azure"), api_version="2024-10-21")
    if kind == "openai_compatible":
        body.update(endpoint=fakes.base_url("compat"))
    status, record, _ = await api.call("POST", "/llm-providers", org=org, json=body)
    assert status == 201, record
    await activate_directly(record, org)
    return org, {**record, "api_key": body["api_key"]}


async def test_resolve_gives_none_for_the_default_and_a_provider_that_hides_its_key(api, client, fakes):
    assert await client.resolve(f"org-{uuid.uuid4().hex[:8]}", "triage") is None
    org, record = await byo(api, fakes, "openai")
    resolved = await client.resolve(org, "scan_agent")
    assert isinstance(resolved, ResolvedProvider)
    assert (resolved.id, resolved.kind, resolved.model, resolved.api_key) == (
        record["id"], "openai", "gpt-4.1-mini", record["api_key"])
    assert resolved.base_url == fakes.base_url("openai") and resolved.quota_bypassed and resolved.supports_tools
    for shown in (repr(resolved), str(resolved), f"{resolved}", repr([resolved])):
        assert record["api_key"] not in shown and "<hidden>" in shown


async def test_resolve_raises_each_fail_closed_case(api, api_factory, make_settings, database_url, client, fakes):
    org, _ = await byo(api, fakes, "anthropic")
    with pytest.raises(FeatureUnsupported) as unsupported:
        await client.resolve(org, "agentic_fixer")
    assert isinstance(unsupported.value, ProviderUnavailable) and "Anthropic" in unsupported.value.message
    assert (await client.resolve(org, "triage")).kind == "anthropic"

    # A process whose encryption keys no longer include the one the key was stored under.
    other = await api_factory(make_settings(database_url=database_url, encryption_keys=Fernet.generate_key().decode()))
    async with LLMProvidersClient(other.base, other.token("service")) as stale:
        with pytest.raises(CredentialsUnavailable) as unavailable:
            await stale.resolve(org, "triage")
    assert unavailable.value.status == 503 and isinstance(unavailable.value, ProviderUnavailable)

    with pytest.raises(InvalidRequest) as invalid:
        await client.resolve(org, "summarize")
    assert "feature" in invalid.value.details["fields"] and isinstance(invalid.value, ValueError)
    for token in ("not-a-token", api.token("admin")):
        async with LLMProvidersClient(api.base, token) as wrong:
            with pytest.raises(NotAuthorized):
                await wrong.resolve(org, "triage")
    async with LLMProvidersClient(f"http://127.0.0.1:{free_port()}", api.token("service")) as nowhere:
        with pytest.raises(ResolverUnavailable):  # unknown is not "no provider": fail closed
            await nowhere.resolve(org, "triage")


@pytest.mark.parametrize("kind", list(MODELS))
async def test_complete_answers_through_every_kind(api, client, fakes, kind):
    org, record = await byo(api, fakes, kind)
    resolved = await client.resolve(org, "walkthrough")
    fakes.clear()
    reply = await client.complete(resolved, MESSAGES, max_tokens=64)
    assert reply.text in ("pong", "P") and reply.tool_calls == []
    [sent] = fakes.log
    assert record["api_key"] in json.dumps(sent["headers"]) and "Is this bad?" in json.dumps(sent["json"])


@pytest.mark.parametrize("kind", OPENAI_STYLE)
async def test_openai_style_kinds_return_tool_calls(api, client, fakes, kind):
    org, _ = await byo(api, fakes, kind)
    resolved = await client.resolve(org, "agentic_fixer")
    fakes.clear()
    reply = await client.complete(resolved, MESSAGES, tools=TOOLS)
    [call] = reply.tool_calls
    assert call["name"] == "read_file" and json.loads(call["arguments"]) == {"path": "README.md"} and call["id"]
    assert reply.finish_reason == "tool_calls" and fakes.log[0]["json"]["tools"] == TOOLS


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_tools_on_a_kind_without_tool_calling_are_refused_before_any_call(api, client, fakes, kind):
    org, _ = await byo(api, fakes, kind)
    resolved = await client.resolve(org, "fix_proposal")
    fakes.clear()
    with pytest.raises(FeatureUnsupported):
        await client.complete(resolved, MESSAGES, tools=TOOLS)
    assert fakes.log == []


async def test_a_failing_provider_raises_and_shows_in_alerts_and_health(api, client, fakes):
    org, record = await byo(api, fakes, "openai", key=good_key("quota"))
    resolved = await client.resolve(org, "severity_grading")
    with pytest.raises(ProviderUnavailable) as failed:
        await client.complete(resolved, MESSAGES)
    error = failed.value
    assert (error.code, error.provider_status, error.reported) == ("quota_exceeded", 429, True)
    assert error.provider_request_id and "credit is used up" in error.message

    _, alerts, _ = await api.call("GET", f"/ops/alerts?org={org}&status=open", role="ops")
    [alert] = alerts["items"]
    assert alert["kind"] == "provider_errors" and alert["provider_id"] == record["id"]
    assert "quota_exceeded" in alert["message"] and "severity_grading" in alert["message"]
    _, shown, _ = await api.call("GET", f"/llm-providers/{record['id']}", org=org, role="member")
    assert shown["health"]["consecutive_failures"] == 1
    assert shown["health"]["last_error"]["code"] == "quota_exceeded"


async def test_provider_errors_never_carry_the_key(api, client, fakes):
    org, record = await byo(api, fakes, "openai_compatible", key=good_key("echo"))  # the fake echoes the key
    resolved = await client.resolve(org, "triage")
    with pytest.raises(ProviderUnavailable) as failed:
        await client.complete(resolved, MESSAGES)
    assert failed.value.code == "bad_request" and record["api_key"] not in str(failed.value)
    _, shown, _ = await api.call("GET", f"/llm-providers/{record['id']}", org=org)
    assert shown["health"]["last_error"]["code"] == "bad_request" and record["api_key"] not in json.dumps(shown)


async def test_transport_failures_and_the_egress_guard(api, client, fakes):
    org, _ = await byo(api, fakes, "openai", key=good_key("hang"))
    resolved = await client.resolve(org, "triage")
    with pytest.raises(ProviderUnavailable) as failed:
        await client.complete(resolved, MESSAGES, timeout=0.5)
    assert failed.value.code == "timeout" and failed.value.reported

    gone = ResolvedProvider(org=org, feature="triage", id=resolved.id, kind="openai_compatible", model="m",
                            base_url=f"http://127.0.0.1:{free_port()}/v1", api_version=None, api_key=good_key())
    with pytest.raises(ProviderUnavailable) as failed:
        await client.complete(gone, MESSAGES)
    assert failed.value.code == "unreachable"

    # Without the operators' allow list the client refuses loopback, like the service's own checks.
    org, _ = await byo(api, fakes, "openai")
    async with LLMProvidersClient(api.base, api.token("service")) as guarded:
        resolved = await guarded.resolve(org, "triage")
        fakes.clear()
        with pytest.raises(ProviderUnavailable) as blocked:
            await guarded.complete(resolved, MESSAGES)
    assert blocked.value.code == "endpoint_blocked" and fakes.log == []
