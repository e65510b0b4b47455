"""Roles, tokens, org isolation and hostile input: each gets a clear 4xx and changes nothing."""
from __future__ import annotations

import logging
import time
import uuid

import jwt
import pytest

from models.providers import ProviderRecord
from tests.conftest import JWT_SECRET, openai_body


@pytest.fixture
async def record(api):
    status, record, _ = await api.call("POST", "/llm-providers", json=openai_body(name="Mine"))
    assert status == 201
    return record


async def test_members_cannot_mutate(api, record):
    rid = record["id"]
    for method, path, body in (("POST", "/llm-providers", openai_body()),
                               ("PATCH", f"/llm-providers/{rid}", {"name": "x"}),
                               ("DELETE", f"/llm-providers/{rid}", None)):
        status, err, _ = await api.call(method, path, role="member", json=body)
        assert status == 403 and err["error"]["code"] == "forbidden"
    assert (await ProviderRecord.get(id=rid)).name == "Mine"
    assert await ProviderRecord.all().count() == 1


@pytest.mark.parametrize("role", ["service", "ops"])
async def test_platform_roles_have_no_org_access(api, record, role):
    status, err, _ = await api.call("GET", "/llm-providers", role=role)
    assert status == 403


async def test_other_orgs_records_are_404(api, record):
    rid = record["id"]
    for method, body in (("GET", None), ("PATCH", {"name": "stolen"}), ("DELETE", None)):
        status, err, _ = await api.call(method, f"/llm-providers/{rid}", org="evil", json=body)
        assert status == 404 and err["error"]["code"] == "provider_not_found"
    status, listing, _ = await api.call("GET", "/llm-providers", org="evil")
    assert listing["items"] == []
    assert (await ProviderRecord.get(id=rid)).name == "Mine"
    assert (await api.call("GET", "/llm-providers/not-a-uuid"))[0] == 404
    assert (await api.call("GET", f"/llm-providers/{uuid.uuid4()}"))[0] == 404


def _forge(claims: dict, secret: str = JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


@pytest.mark.parametrize("token", [
    "not-a-jwt",
    _forge({"sub": "x", "role": "admin", "org": "acme", "exp": int(time.time()) + 60}, secret="wrong-secret" * 3),
    _forge({"sub": "x", "role": "admin", "org": "acme", "exp": int(time.time()) - 5}),
    _forge({"sub": "x", "role": "admin", "org": "acme"}),  # no exp
    _forge({"sub": "x", "role": "root", "exp": int(time.time()) + 60}),
    _forge({"sub": "x", "role": "admin", "exp": int(time.time()) + 60}),  # org role without org
    jwt.encode({"sub": "x", "role": "admin", "org": "acme", "exp": int(time.time()) + 60}, None, algorithm="none"),
])
async def test_bad_tokens_are_401(api, record, token):
    status, err, _ = await api.call("GET", "/llm-providers", role=None, headers={"Authorization": f"Bearer {token}"})
    assert status == 401 and err["error"]["code"] == "unauthorized"
    status, _, _ = await api.call("DELETE", f"/llm-providers/{record['id']}", role=None,
                                  headers={"Authorization": f"Bearer {token}"})
    assert status == 401 and await ProviderRecord.exists(id=record["id"])


async def test_missing_token_is_401(api):
    assert (await api.call("GET", "/llm-providers", role=None))[0] == 401
    assert (await api.call("GET", "/llm-providers", role=None, headers={"Authorization": "Basic abc"}))[0] == 401


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "model": "gpt-4.1", "api_key": "k"}, "kind"),
    ({"kind": "openai", "model": "gpt-4.1", "api_key": "k"}, "name"),
    ({"kind": "openai", "name": "x", "api_key": "k"}, "model"),
    ({"kind": "openai", "name": "x", "model": "gpt-4.1"}, "api_key"),
    ({"kind": "mistral", "name": "x", "model": "m", "api_key": "k"}, "kind"),
    ({**openai_body(), "surprise": 1}, "surprise"),
    ({**openai_body(), "name": "x" * 101}, "name"),
    ({**openai_body(), "name": ""}, "name"),
    ({**openai_body(), "model": "bad model\n"}, "model"),
    ({**openai_body(), "api_key": "k" * 4097}, "api_key"),
    ({**openai_body(), "api_key": "sk-with space"}, "api_key"),
    ({**openai_body(), "endpoint": "https://api.example.com/v1"}, "endpoint"),
    ({"kind": "azure_openai", "name": "a", "model": "dep", "api_key": "k", "api_version": "2024-10-21"}, "endpoint"),
    ({"kind": "azure_openai", "name": "a", "model": "dep", "api_key": "k",
      "endpoint": "https://r.openai.azure.com"}, "api_version"),
    ({"kind": "openai_compatible", "name": "c", "model": "m", "api_key": "k"}, "endpoint"),
    ({"kind": "openai_compatible", "name": "c", "model": "m", "api_key": "k", "endpoint": "ftp://h/v1"}, "endpoint"),
    ({"kind": "openai_compatible", "name": "c", "model": "m", "api_key": "k", "endpoint": "/v1"}, "endpoint"),
    ({"kind": "openai_compatible", "name": "c", "model": "m", "api_key": "k",
      "endpoint": "http://user:pw@127.0.0.1/v1"}, "endpoint"),
    ({"kind": "openai_compatible", "name": "c", "model": "m", "api_key": "k",
      "endpoint": "http://127.0.0.1/v1?x=1"}, "endpoint"),
    ({"kind": "openai_compatible", "name": "c", "model": "m", "api_key": "k",
      "endpoint": "http://127.0.0.1/v1#frag"}, "endpoint"),
    ({**openai_body(), "name": 5}, "name"),
])
async def test_invalid_bodies_are_422_naming_the_field(api, body, field):
    status, err, _ = await api.call("POST", "/llm-providers", json=body)
    assert status == 422, err
    assert err["error"]["code"] == "validation_error" and field in err["error"]["fields"]
    assert "k" * 40 not in str(err)
    assert await ProviderRecord.all().count() == 0


async def test_malformed_oversized_and_non_object_bodies(api, record):
    headers = {"Content-Type": "application/json"}
    cases = [(b"{not json", 400), (b"\xff\xfe{}", 400), (b"", 400), (b"[1, 2]", 422),
             (b'{"a": ' * 5000 + b"1" + b"}" * 5000, 400),
             (b'{"kind": "openai", "name": "' + b"x" * (70 * 1024) + b'"}', 413)]
    for raw, expected in cases:
        status, err, _ = await api.call("POST", "/llm-providers", data=raw, headers=headers)
        assert status == expected, (raw[:20], status, err)
        assert "error" in err and "Traceback" not in str(err)
    assert await ProviderRecord.all().count() == 1


async def test_key_never_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "sk-logcanary-" + uuid.uuid4().hex
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=secret))
    await api.call("PATCH", f"/llm-providers/{record['id']}", json={"api_key": secret + "9", "bogus": 1})
    await api.call("POST", "/llm-providers", json=openai_body(api_key=secret, name=record["name"]))
    assert secret not in caplog.text
