"""Org isolation: a ciphertext copied onto another org's (or record's) row never decrypts, and every call on
another org's record or job answers 404 and changes nothing."""
from __future__ import annotations

import pytest

from models.audit import AuditEntry
from models.jobs import Job
from models.providers import ActiveProvider, ProviderRecord
from tests.conftest import good_key
from tests.security.conftest import unique_org

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
async def live(production_api, live_settings, worker_factory):
    worker_factory(live_settings)
    return await production_api(live_settings)


async def _active_record(api, org: str, key: str) -> dict:
    status, record, _ = await api.call("POST", "/llm-providers", org=org,
                                       json={"kind": "openai", "name": "Main", "model": "gpt-4.1-mini",
                                             "api_key": key})
    assert status == 201, record
    status, record, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate", org=org)
    assert status == 200 and record["is_active"], record
    return record


async def test_a_copied_ciphertext_never_decrypts(live):
    victim, thief = unique_org("victim"), unique_org("thief")
    victim_key, thief_key = good_key("victimkey"), good_key("thiefkey")
    stolen = await _active_record(live, victim, victim_key)
    target = await _active_record(live, thief, thief_key)
    status, spare, _ = await live.call("POST", "/llm-providers", org=victim,
                                       json={"kind": "openai", "name": "Spare", "model": "gpt-4.1-mini",
                                             "api_key": good_key()})
    assert status == 201
    ciphertext = (await ProviderRecord.get(id=stolen["id"])).key_ciphertext
    await ProviderRecord.filter(id=target["id"]).update(key_ciphertext=ciphertext)  # another org's row
    await ProviderRecord.filter(id=spare["id"]).update(key_ciphertext=ciphertext)  # another record, same org

    for org, record in ((thief, target), (victim, spare)):
        rid = record["id"]
        answers = {
            "test": await live.call("POST", f"/llm-providers/{rid}/test", org=org),
            "activate": await live.call("POST", f"/llm-providers/{rid}/activate", org=org),
            "models": await live.call("GET", f"/llm-providers/{rid}/models", org=org),
        }
        for name, (status, err, _) in answers.items():
            assert status == 503 and err["error"]["code"] == "credentials_unavailable", (name, status, err)
            assert "key" in err["error"]["message"].lower()
            assert victim_key not in str(err) and victim_key[-12:] not in str(err)
        status, shown, _ = await live.call("GET", f"/llm-providers/{rid}", org=org)
        assert status == 200 and shown["key_last4"] == record["key_last4"]  # nothing of the victim's shows

    status, err, headers = await live.call("GET", f"/internal/active-provider?org={thief}&feature=triage",
                                           role="service")
    assert status == 503 and err["error"]["code"] == "credentials_unavailable", err
    assert victim_key not in str(err) and thief_key not in str(err)
    # The victim is untouched: still resolves to its own key.
    status, resolved, _ = await live.call("GET", f"/internal/active-provider?org={victim}&feature=triage",
                                          role="service")
    assert status == 200 and resolved["provider"]["api_key"] == victim_key


async def test_another_orgs_record_and_jobs_are_404_and_unchanged(live):
    owner_org, other = unique_org("owner"), unique_org("other")
    record = await _active_record(live, owner_org, good_key())
    rid = record["id"]
    status, inactive, _ = await live.call("POST", "/llm-providers", org=owner_org,
                                          json={"kind": "openai", "name": "Second", "model": "gpt-4.1-mini",
                                                "api_key": good_key()})
    assert status == 201
    status, job, _ = await live.call("POST", f"/llm-providers/{rid}/test", org=owner_org,
                                     headers={"Prefer": "respond-async"})
    job_id = job["job_id"]
    before = await ProviderRecord.filter(org=owner_org).order_by("id").values()
    jobs_before = await Job.filter(org=owner_org).count()
    audit_before = await AuditEntry.filter(org=owner_org).count()

    calls = []
    for target in (rid, inactive["id"]):
        calls += [("GET", f"/llm-providers/{target}", None),
                  ("PATCH", f"/llm-providers/{target}", {"name": "stolen"}),
                  ("PATCH", f"/llm-providers/{target}", {"api_key": good_key(), "model": "gpt-4.1"}),
                  ("DELETE", f"/llm-providers/{target}", None),
                  ("POST", f"/llm-providers/{target}/test", None),
                  ("POST", f"/llm-providers/{target}/activate", None),
                  ("GET", f"/llm-providers/{target}/models", None)]
    calls.append(("GET", f"/jobs/{job_id}", None))
    for role in ("owner", "admin", "member"):
        for method, path, body in calls:
            status, err, _ = await live.call(method, path, org=other, role=role, json=body)
            expected = 404 if role != "member" or method == "GET" and "/models" not in path else 403
            assert status == expected, (role, method, path, status, err)
            if status == 404:
                assert err["error"]["code"] in ("provider_not_found", "job_not_found"), err

    # The other org's own views show nothing of it.
    status, listing, _ = await live.call("GET", "/llm-providers", org=other)
    assert listing == {"items": [], "active_provider_id": None}
    status, audit, _ = await live.call("GET", "/llm-providers/audit", org=other)
    assert audit["items"] == []
    assert (await live.call("POST", "/llm-providers/deactivate", org=other))[0] == 200
    # An AI-service report naming the record under the wrong org is not applied to it.
    status, outcome, _ = await live.call("POST", "/internal/provider-errors", role="service",
                                         json={"org": other, "feature": "triage", "code": "invalid_api_key",
                                               "provider_id": rid})
    assert status == 202 and outcome["recorded"] is False

    after = await ProviderRecord.filter(org=owner_org).order_by("id").values()
    assert after == before
    assert (await ActiveProvider.get(org=owner_org)).provider_id == record["id"] or \
        str((await ActiveProvider.get(org=owner_org)).provider_id) == rid
    assert await Job.filter(org=owner_org).count() == jobs_before
    assert await Job.filter(org=other).count() == 0
    assert await AuditEntry.filter(org=owner_org).count() == audit_before
