"""Model discovery over real HTTP: POST /llm-providers/discover-models (candidate credentials) and
GET /llm-providers/{id}/models (a saved record), against the fake providers through the egress guard."""
from __future__ import annotations

import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import openai_body

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

FAKE_MODELS = ["fake-model", "gpt-4o-mini", "llama3.2:latest"]  # what the fakes' GET /v1/models lists


def key(tag: str = "ok") -> str:
    return f"fake-{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def discovery_settings(make_settings, database_url, fakes):
    return make_settings(database_url=database_url, **fakes.native_settings())


async def discover(api, body, role="admin", org="acme"):
    return await api.call("POST", "/llm-providers/discover-models", json=body, role=role, org=org)


async def test_candidate_credentials_list_their_models_and_the_key_stays_out(api_factory, discovery_settings,
                                                                             fakes):
    api = await api_factory(discovery_settings)
    secret = key()
    for role in ("admin", "owner"):
        status, body, _ = await discover(api, {"kind": "openai", "api_key": secret}, role=role)
        assert status == 200 and body == {"models": FAKE_MODELS}
    sent = fakes.requests("openai")[-1]
    assert (sent["method"], sent["path"]) == ("GET", "/openai/v1/models")
    assert sent["headers"]["authorization"] == f"Bearer {secret}"
    status, _, _ = await api.call("GET", "/llm-providers")
    assert status == 200  # discovery saves nothing
    _, listing, _ = await api.call("GET", "/llm-providers")
    assert listing["items"] == []


async def test_an_openai_compatible_endpoint_without_v1_is_tried_with_it(api_factory, discovery_settings, fakes):
    api = await api_factory(discovery_settings)
    status, body, _ = await discover(api, {"kind": "openai_compatible", "api_key": key(),
                                           "endpoint": fakes.base_url("compat_bare")})
    assert status == 200 and body["models"] == FAKE_MODELS
    assert [r["path"] for r in fakes.requests("compat")] == ["/compat/models", "/compat/v1/models"]


@pytest.mark.parametrize("api_key, code, status_seen, words", [
    ("sk-wrong-" + "a1b2c3d4e5f6a7b8", "invalid_api_key", 401, "The API key was rejected by OpenAI"),
    (key("denied"), "permission_denied", 401, "lacks the permissions"),
    (key("quota"), "quota_exceeded", 429, "Check the plan and billing details"),
    (key("ratelimit"), "rate_limited", 429, "the same request should work later"),
    (key("error500"), "provider_error", 500, "failed to answer"),
    (key("html"), "unexpected_response", 200, "not the OpenAI models list"),
    (key("redirect"), "unexpected_response", 302, "are not followed"),
])  # (words the key itself does not contain: text matching a run of the key is redacted)
async def test_refusals_are_classified_like_checks(api_factory, discovery_settings, api_key, code, status_seen,
                                                   words):
    api = await api_factory(discovery_settings)
    status, body, _ = await discover(api, {"kind": "openai", "api_key": api_key})
    assert status == 422 and body["error"]["code"] == "discovery_failed"
    result = body["error"]["result"]
    assert result["ok"] is False and result["error"]["code"] == code
    assert result["error"]["provider_status"] == status_seen
    assert words in result["error"]["message"] and body["error"]["message"] == result["error"]["message"]


async def test_a_key_the_provider_echoes_is_never_in_the_answer(api_factory, discovery_settings):
    api = await api_factory(discovery_settings)
    secret = key("echo")
    async with api.session.post(f"{api.base}/llm-providers/discover-models", json={"kind": "openai", "api_key": secret},
                                headers=api.headers()) as resp:
        text = await resp.text()
    assert resp.status == 422 and '"bad_request"' in text
    assert secret not in text and secret[-12:] not in text and "[redacted]" in text


async def test_the_egress_guard_refuses_private_addresses_unless_allowed(api_factory, make_settings, database_url,
                                                                         fakes):
    settings = make_settings(database_url=database_url, egress_allow="", **fakes.native_settings())
    api = await api_factory(settings)
    cases = [{"kind": "openai_compatible", "api_key": key(), "endpoint": fakes.base_url("compat")},
             {"kind": "openai", "api_key": key()},  # the deployment's base URL is on 127.0.0.1 too
             {"kind": "openai_compatible", "api_key": key(), "endpoint": "http://169.254.169.254/v1"}]
    for body in cases:
        status, answer, _ = await discover(api, body)
        assert status == 422, answer
        error = answer["error"]["result"]["error"]
        assert error["code"] == "endpoint_blocked" and "LLMP_EGRESS_ALLOW" in error["message"]
    assert fakes.requests() == []  # refused before connecting


async def test_roles_and_invalid_bodies(api_factory, discovery_settings):
    api = await api_factory(discovery_settings)
    body = {"kind": "openai", "api_key": key()}
    assert (await discover(api, body, role=None))[0] == 401
    for role in ("member", "service", "ops"):
        status, answer, _ = await discover(api, body, role=role)
        assert status == 403 and answer["error"]["code"] == "forbidden"
    invalid = [
        ({"kind": "openai"}, {"api_key": "field required"}),
        ({"kind": "azure_openai", "api_key": key()}, {"endpoint": "is required for Azure OpenAI",
                                                      "api_version": "is required for Azure OpenAI"}),
        ({"kind": "openai", "api_key": key(), "endpoint": "https://example.com/v1"},
         {"endpoint": "is not used by OpenAI"}),
        ({"kind": "openai", "api_key": "has spaces in it"}, {"api_key": "must not contain whitespace"}),
        ({"kind": "openai", "api_key": key(), "model": "x"}, {"model": "unknown field"}),
        ({"kind": "mystery", "api_key": key()}, {"kind": "must be one of openai, anthropic, gemini, azure_openai, "
                                                          "openai_compatible"}),
    ]
    for sent, fields in invalid:
        status, answer, _ = await discover(api, sent)
        assert status == 422 and answer["error"]["fields"] == fields, answer
        if "api_key" in sent:
            assert sent["api_key"] not in str(answer)
    status, answer, _ = await api.call("POST", "/llm-providers/discover-models", data=b"{not json",
                                       headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["code"] == "malformed_json"


async def test_a_saved_provider_lists_the_models_of_its_stored_key(api_factory, discovery_settings, fakes):
    api = await api_factory(discovery_settings)
    secret = key()
    status, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=secret))
    assert status == 201
    status, body, _ = await api.call("GET", f"/llm-providers/{record['id']}/models")
    assert status == 200 and body == {"models": FAKE_MODELS}
    assert fakes.requests("openai")[-1]["headers"]["authorization"] == f"Bearer {secret}"
    assert (await api.call("GET", f"/llm-providers/{record['id']}/models", role="member"))[0] == 403
    status, answer, _ = await api.call("GET", f"/llm-providers/{record['id']}/models", org="other")
    assert status == 404 and answer["error"]["code"] == "provider_not_found"
    assert (await api.call("GET", f"/llm-providers/{uuid.uuid4()}/models"))[0] == 404

    status, stale, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key="sk-revoked-1234abcd"))
    status, answer, _ = await api.call("GET", f"/llm-providers/{stale['id']}/models")
    assert status == 422 and answer["error"]["result"]["error"]["code"] == "invalid_api_key"


async def test_discovery_counts_against_the_orgs_limit_on_live_calls(api_factory, make_settings, database_url, fakes):
    settings = make_settings(database_url=database_url, rate_limit_checks="2/minute", **fakes.native_settings())
    api = await api_factory(settings)
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=key()))
    assert (await discover(api, {"kind": "openai", "api_key": key()}))[0] == 200
    assert (await api.call("GET", f"/llm-providers/{record['id']}/models"))[0] == 200
    status, answer, headers = await discover(api, {"kind": "openai", "api_key": key()})
    assert status == 429 and answer["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
    status, _, _ = await api.call("POST", f"/llm-providers/{record['id']}/test")
    assert status == 429  # the same limit as test and activate
    assert (await discover(api, {"kind": "openai", "api_key": key()}, org="other"))[0] == 200


async def _native_lists(request: web.Request) -> web.Response:
    """List answers in Anthropic's, Gemini's and Azure's formats (the shared fakes serve only OpenAI's)."""
    path, headers = request.path, request.headers
    if path == "/anthropic/v1/models" and headers.get("x-api-key") and headers.get("anthropic-version") == "2023-06-01":
        assert request.query["limit"] == "1000"
        return web.json_response({"data": [{"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude"},
                                           {"type": "model", "id": "claude-haiku-4-5"}],
                                  "has_more": False, "first_id": "claude-sonnet-4-5", "last_id": "claude-haiku-4-5"})
    if path == "/gemini/v1beta/models" and headers.get("x-goog-api-key") and "key" not in request.query:
        return web.json_response({"models": [
            {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent", "countTokens"]},
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
            {"name": "models/gemini-2.5-pro", "supportedGenerationMethods": ["generateContent"]}]})
    if path == "/azure/openai/deployments" and headers.get("api-key") and request.query.get("api-version") == "2022-12-01":
        return web.json_response({"data": [{"id": "gpt-4o-prod", "model": "gpt-4o", "object": "deployment"}],
                                  "object": "list"})
    if path == "/azure/openai/v1/models" and headers.get("api-key"):
        return web.json_response({"data": [{"id": "gpt-4.1-mini", "object": "model"}], "object": "list"})
    return web.json_response({"error": {"message": "unexpected request"}}, status=418)


async def test_anthropic_gemini_and_azure_lists_are_read_in_their_formats(api_factory, make_settings, database_url):
    app = web.Application()
    app.router.add_get("/{tail:.*}", _native_lists)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    root = str(server.make_url("")).rstrip("/")
    try:
        api = await api_factory(make_settings(database_url=database_url, anthropic_base_url=f"{root}/anthropic",
                                              gemini_base_url=f"{root}/gemini"))
        cases = [({"kind": "anthropic"}, ["claude-haiku-4-5", "claude-sonnet-4-5"]),
                 ({"kind": "gemini"}, ["gemini-2.5-flash", "gemini-2.5-pro"]),
                 ({"kind": "azure_openai", "endpoint": f"{root}/azure/", "api_version": "2022-12-01"}, ["gpt-4o-prod"]),
                 ({"kind": "azure_openai", "endpoint": f"{root}/azure/openai/", "api_version": "v1"}, ["gpt-4.1-mini"])]
        for body, models in cases:
            status, answer, _ = await discover(api, {**body, "api_key": key()})
            assert status == 200 and answer == {"models": models}, (body, answer)
    finally:
        await server.close()


async def test_the_openapi_document_describes_both_endpoints(api_factory, discovery_settings):
    api = await api_factory(discovery_settings)
    status, doc, _ = await api.call("GET", "/openapi.json", role=None)
    assert status == 200
    post = doc["paths"]["/llm-providers/discover-models"]["post"]
    assert post["description"] == "Roles: admin, owner" and "requestBody" in post
    assert {"200", "401", "403", "422", "429"} <= set(post["responses"])
    schema = doc["components"]["schemas"]["DiscoverModelsRequest"]
    assert set(schema["required"]) == {"kind", "api_key"}
    get = doc["paths"]["/llm-providers/{id}/models"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ModelsOut"}
    assert {"404", "422"} <= set(get["responses"])
