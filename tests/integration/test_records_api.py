"""Provider records over real HTTP against PostgreSQL and SQLite: shapes, secrecy, roles, isolation."""
from __future__ import annotations

import uuid

import pytest

from models.providers import ActiveProvider, ProviderRecord
from tests.conftest import openai_body


async def mark_active(org: str, provider_id: str) -> None:
    """The activation flow arrives with the jobs issue; here the pointer row is written directly."""
    from datetime import datetime, timezone

    record = await ProviderRecord.get(id=provider_id)
    await ActiveProvider.create(org=org, provider=record, checked_version=record.version,
                                activated_at=datetime.now(timezone.utc), activated_by="test")


async def test_create_returns_record_without_key(api):
    body = openai_body(api_key="sk-live-abcdefghijklmnopWXYZ")
    status, record, _ = await api.call("POST", "/llm-providers", json=body)
    assert status == 201
    assert record["key_set"] is True and record["key_last4"] == "WXYZ"
    assert record["kind"] == "openai" and record["model"] == "gpt-4.1-mini"
    assert record["endpoint"] is None and record["api_version"] is None and record["is_active"] is False
    assert record["health"] == {"status": "unknown", "checked_at": None, "consecutive_failures": 0,
                                "last_error": None}
    assert "api_key" not in record and body["api_key"] not in str(record)
    assert set(record) >= {"id", "created_at", "updated_at"}

    status, listing, _ = await api.call("GET", "/llm-providers", role="member")
    assert status == 200 and listing["active_provider_id"] is None
    assert [item["id"] for item in listing["items"]] == [record["id"]]
    status, one, _ = await api.call("GET", f"/llm-providers/{record['id']}", role="member")
    assert status == 200 and one == record


async def test_key_is_not_stored_in_plain_text(api, settings, backend):
    secret = "sk-canary-" + uuid.uuid4().hex
    status, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=secret))
    assert status == 201
    stored = await ProviderRecord.get(id=record["id"])
    assert secret not in stored.key_ciphertext and stored.key_last4 == secret[-4:]
    if backend == "sqlite":
        from tortoise import connections

        await connections.get("default").execute_query("PRAGMA wal_checkpoint(FULL)")
        path = settings.effective_database_url.removeprefix("sqlite://")
        assert secret.encode() not in open(path, "rb").read()
    else:
        from tortoise import connections

        _, rows = await connections.get("default").execute_query(
            "SELECT row_to_json(p)::text AS t FROM provider_records p")
        assert rows and all(secret not in row["t"] for row in rows)


async def test_patch_rotates_key_and_last4(api):
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key="sk-old-key-1111"))
    before = (await ProviderRecord.get(id=record["id"])).key_ciphertext
    status, updated, _ = await api.call("PATCH", f"/llm-providers/{record['id']}",
                                        json={"api_key": "sk-new-key-2222", "name": "Renamed"})
    assert status == 200, updated
    assert updated["key_last4"] == "2222" and updated["name"] == "Renamed" and updated["key_set"] is True
    after = await ProviderRecord.get(id=record["id"])
    assert after.key_ciphertext != before and after.version == 2


async def test_patch_endpoint_without_key_is_refused(api):
    body = {"kind": "openai_compatible", "name": "Local", "model": "llama3.2", "api_key": "ollama",
            "endpoint": "http://127.0.0.1:11434/v1"}
    status, record, _ = await api.call("POST", "/llm-providers", json=body)
    assert status == 201 and record["endpoint"] == "http://127.0.0.1:11434/v1/"
    status, err, _ = await api.call("PATCH", f"/llm-providers/{record['id']}",
                                    json={"endpoint": "http://127.0.0.1:9999/v1"})
    assert status == 422 and "endpoint" in err["error"]["fields"]
    assert (await ProviderRecord.get(id=record["id"])).endpoint == "http://127.0.0.1:11434/v1/"


async def test_delete_and_409_while_active(api):
    _, first, _ = await api.call("POST", "/llm-providers", json=openai_body())
    _, second, _ = await api.call("POST", "/llm-providers", json=openai_body())
    await mark_active("acme", first["id"])
    status, listing, _ = await api.call("GET", "/llm-providers")
    assert listing["active_provider_id"] == first["id"]
    status, err, _ = await api.call("DELETE", f"/llm-providers/{first['id']}")
    assert status == 409 and err["error"]["code"] == "provider_active"
    assert await ProviderRecord.exists(id=first["id"])
    status, _, _ = await api.call("DELETE", f"/llm-providers/{second['id']}")
    assert status == 204
    status, _, _ = await api.call("GET", f"/llm-providers/{second['id']}")
    assert status == 404


async def test_database_refuses_a_second_active_provider(api):
    from tortoise.exceptions import IntegrityError

    _, first, _ = await api.call("POST", "/llm-providers", json=openai_body())
    _, second, _ = await api.call("POST", "/llm-providers", json=openai_body())
    await mark_active("acme", first["id"])
    with pytest.raises(IntegrityError):
        await mark_active("acme", second["id"])
    with pytest.raises(IntegrityError):  # RESTRICT: the database itself keeps an active record
        await ProviderRecord.filter(id=first["id"]).delete()


async def test_names_are_unique_per_org(api):
    body = openai_body(name="Main")
    assert (await api.call("POST", "/llm-providers", json=body))[0] == 201
    status, err, _ = await api.call("POST", "/llm-providers", json=openai_body(name="Main"))
    assert status == 409 and err["error"]["code"] == "name_taken"
    assert (await api.call("POST", "/llm-providers", json=openai_body(name="Main"), org="other"))[0] == 201


async def test_records_per_org_are_capped(api):
    from service.crypto import KeyVault
    from service.validation import MAX_RECORDS_PER_ORG

    for i in range(MAX_RECORDS_PER_ORG):
        await ProviderRecord.create(id=uuid.uuid4(), org="acme", kind="openai", name=f"p{i}", model="gpt-4.1",
                                    key_ciphertext="x", key_last4="abcd")
    status, err, _ = await api.call("POST", "/llm-providers", json=openai_body())
    assert status == 409 and err["error"]["code"] == "too_many_providers"
    assert await ProviderRecord.filter(org="acme").count() == MAX_RECORDS_PER_ORG
    assert KeyVault  # the cap is checked before any key is encrypted


async def test_audit_log_records_mutations_without_keys(api):
    key = "sk-audit-" + uuid.uuid4().hex
    _, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=key))
    await api.call("PATCH", f"/llm-providers/{record['id']}", json={"api_key": key + "2"})
    await api.call("DELETE", f"/llm-providers/{record['id']}")
    status, page, _ = await api.call("GET", "/llm-providers/audit")
    assert status == 200
    assert [e["action"] for e in page["items"]] == ["delete", "update", "create"]
    assert all(e["outcome"] == "ok" and e["provider_id"] == record["id"] for e in page["items"])
    assert page["items"][1]["details"]["key_rotated"] is True
    assert key not in str(page)
    status, page, _ = await api.call("GET", "/llm-providers/audit?limit=2")
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    status, rest, _ = await api.call("GET", f"/llm-providers/audit?limit=2&before={page['next_cursor']}")
    assert [e["action"] for e in rest["items"]] == ["create"] and rest["next_cursor"] is None
    assert (await api.call("GET", "/llm-providers/audit", role="member"))[0] == 403
    status, other, _ = await api.call("GET", "/llm-providers/audit", org="other")
    assert other["items"] == []


async def test_catalog_lists_every_kind(api):
    for role in ("member", "service", "ops"):
        status, catalog, _ = await api.call("GET", "/llm-providers/catalog", role=role)
        assert status == 200
    kinds = {k["kind"]: k for k in catalog["kinds"]}
    assert set(kinds) == {"openai", "anthropic", "gemini", "azure_openai", "openai_compatible"}
    assert {k for k, v in kinds.items() if v["supports_tool_calling"]} == {"openai", "azure_openai",
                                                                             "openai_compatible"}
    assert {"endpoint", "api_version"} <= set(kinds["azure_openai"]["required_fields"])
    assert "endpoint" in kinds["openai_compatible"]["required_fields"]
    assert "/v1" in kinds["openai_compatible"]["hints"]["endpoint"]
    assert kinds["openai"]["default_base_url"] == "https://api.openai.com/v1"
    assert "gpt-4.1" in kinds["openai"]["example_models"]
    assert "agentic_fixer" not in kinds["anthropic"]["supported_features"]
    assert (await api.call("GET", "/llm-providers/catalog", role=None))[0] == 401


async def test_probes_and_openapi(api):
    assert (await api.call("GET", "/healthz", role=None))[0] == 200
    status, ready, _ = await api.call("GET", "/readyz", role=None)
    assert ready["checks"]["database"] == "ok"
    status, doc, _ = await api.call("GET", "/openapi.json", role=None)
    assert status == 200 and doc["openapi"].startswith("3.")
    create = doc["paths"]["/llm-providers"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"kind", "name", "model", "api_key"}
    assert schema["additionalProperties"] is False
    assert "422" in create["responses"] and "201" in create["responses"]
