"""Schemathesis over the API's own /openapi.json, with a token of every role.

Checks: no 5xx, every status, content type, header and body conforms to the document, and data the
document calls invalid is rejected. The quick run is derandomized (same examples every run, bounded
time); the `slow` run explores with fresh random examples and many more of them.

Nothing of the fuzzing may leave the machine, not even a DNS query: the native kinds point at a closed
port on 127.0.0.1 that the (empty) egress allow list refuses anyway, and a generated `endpoint` is
replaced by one of a few that are refused without resolving a name (host names are the SSRF tests' part).
"""
from __future__ import annotations

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import good_key, openai_body
from tests.security.conftest import ROLES, unique_org

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
QUICK_EXAMPLES = 20
SLOW_EXAMPLES = 150


# Each is refused by the field rules or by the egress guard without a name being resolved.
LOCAL_ENDPOINTS = ("http://127.0.0.1:9/v1", "https://[::1]:9/openai", "http://0x7f000001:9/", "not a url",
                   "ftp://127.0.0.1:9/", "http://user@127.0.0.1:9/v1", "")
CLOSED = "http://127.0.0.1:9"


def keep_local(case) -> None:
    """Replace a generated endpoint (any string could be a host name to resolve) by a local one."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("endpoint"), str):
        body["endpoint"] = LOCAL_ENDPOINTS[len(body["endpoint"]) % len(LOCAL_ENDPOINTS)]


async def _drop(job_id: str) -> None:
    """Jobs are recorded but never run: test/activate answer 202 with a job to poll."""


class FuzzTarget:
    def __init__(self, api, org: str) -> None:
        self.api = api
        self.org = org
        self.session = requests.Session()
        from service.auth import issue_token

        self.tokens = {role: issue_token(api.settings.jwt_key, role=role,
                                         org=org if role in ("owner", "admin", "member") else None, ttl=3600)
                       for role in ROLES}

    def headers(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def seed(self) -> None:
        """Records, a job and audit entries, so listings answer with real items to validate."""
        admin = self.headers("admin")
        for body in (openai_body(api_key=good_key()),
                     {"kind": "anthropic", "name": "Claude", "model": "claude-haiku-4-5", "api_key": good_key()}):
            answer = self.session.post(self.api.base + "/llm-providers", json=body, headers=admin, timeout=10)
            assert answer.status_code == 201, answer.text
        self.record_id = answer.json()["id"]
        answer = self.session.post(f"{self.api.base}/llm-providers/{self.record_id}/test", headers=admin, timeout=10)
        assert answer.status_code == 202, answer.text
        self.job_id = answer.json()["job_id"]


def _target(threaded_api_factory, settings) -> FuzzTarget:
    local = {"sync_wait": 0.0, "rate_limit_checks": "100000/minute", "egress_allow": "",
             "openai_base_url": CLOSED + "/v1", "anthropic_base_url": CLOSED, "gemini_base_url": CLOSED}
    api = threaded_api_factory(settings.model_copy(update=local), enqueue=_drop)
    target = FuzzTarget(api, unique_org("fuzz"))
    target.seed()
    return target


@pytest.fixture
def fuzz_target(threaded_api_factory, redis_settings):
    target = _target(threaded_api_factory, redis_settings)
    yield target
    target.session.close()


def fuzz(target: FuzzTarget, examples: int, derandomize: bool) -> tuple[list[str], int]:
    """Every operation of the document, positive and negative examples, each sent with every role's token
    (and, for operations on a provider, once more against a real record). Returns failures and calls made."""
    schema = schemathesis.openapi.from_url(target.api.base + "/openapi.json")
    # The bearer token is ours to set (every role's in turn); unknown query parameters are ignored, as HTTP
    # APIs do (unknown body fields are 422: the bodies are strict).
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    calls = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        fixed = [None]
        if "{id}" in operation.path:
            fixed.append({"id": target.job_id if operation.path.startswith("/jobs/") else target.record_id})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in fixed:
                strategy = operation.as_strategy(mode, path_parameters=path_parameters)

                @hypothesis.settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
                                     suppress_health_check=list(hypothesis.HealthCheck),
                                     phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate))
                @hypothesis.given(strategy)
                def run(case):
                    nonlocal calls
                    keep_local(case)
                    for role in ROLES:
                        calls += 1
                        try:
                            case.call_and_validate(session=target.session, headers=target.headers(role),
                                                   checks=CHECKS, timeout=15)
                        except BaseException as exc:
                            exc.add_note(f"(sent with a token of role {role})")
                            raise

                try:
                    run()
                except hypothesis.errors.Unsatisfiable:
                    continue  # nothing of this mode to generate for this operation
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all, then report
                    notes = "\n".join(getattr(exc, "__notes__", []))
                    failures.append(f"{operation.label} [{mode.value}, path {path_parameters}]: {exc}\n{notes}")
    return failures, calls


def test_every_operation_for_every_role(fuzz_target):
    failures, calls = fuzz(fuzz_target, QUICK_EXAMPLES, derandomize=True)
    assert not failures, "\n\n".join(failures)
    print(f"schemathesis: {calls} calls")
    assert calls > 500


@pytest.mark.slow
def test_every_operation_for_every_role_long_run(fuzz_target):
    failures, calls = fuzz(fuzz_target, SLOW_EXAMPLES, derandomize=False)
    assert not failures, "\n\n".join(failures)


# --- every kind of answer the handlers really give, checked against the document ---------------------


class Conformance:
    """Calls the API over real HTTP and checks each answer against the operation the document describes."""

    def __init__(self, api, schema, client, org: str) -> None:
        self.api, self.schema, self.client, self.org = api, schema, client, org
        self.seen: set[tuple[str, str, int]] = set()

    async def call(self, method: str, path: str, template: str, *, role: str | None = "admin",
                   json=None, headers: dict | None = None, expect: int | None = None):
        hdrs = dict(headers or {})
        if role is not None:
            hdrs["Authorization"] = f"Bearer {self.api.token(role, self.org)}"
        response = await self.client.request(method, self.api.base + path, json=json, headers=hdrs)
        operation = self.schema[template][method]
        try:
            operation.validate_response(response)
        except BaseException as exc:
            exc.add_note(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
            raise
        if expect is not None:
            assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        self.seen.add((method, template, response.status_code))
        return response


async def test_real_answers_conform_to_the_document(production_api, live_settings, worker_factory, fakes):
    import httpx

    settings = live_settings.model_copy(update={"rate_limit_checks": "12/minute"})
    worker_factory(settings)
    api = await production_api(settings)
    async with httpx.AsyncClient(timeout=30) as client:
        document = (await client.get(api.base + "/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(document)
        org = unique_org("walk")
        c = Conformance(api, schema, client, org)
        P, R = "/llm-providers", "/llm-providers/{id}"
        await c.call("GET", "/healthz", "/healthz", role=None, expect=200)
        await c.call("GET", "/readyz", "/readyz", role=None, expect=200)
        await c.call("GET", "/openapi.json", "/openapi.json", role=None, expect=200)
        await c.call("GET", P + "/catalog", P + "/catalog", role="service", expect=200)
        good = (await c.call("POST", P, P, json=openai_body(api_key=good_key()), expect=201)).json()
        bad = (await c.call("POST", P, P, json=openai_body(api_key="sk-wrong-000000"), expect=201)).json()
        await c.call("POST", P, P, json=openai_body(name=good["name"]), expect=409)
        await c.call("POST", P, P, json={"kind": "openai"}, expect=422)
        await c.call("POST", P, P, role=None, json=openai_body(), expect=401)
        await c.call("POST", P, P, role="member", json=openai_body(), expect=403)
        await c.call("GET", P, P, role="member", expect=200)
        await c.call("GET", f"{P}/{good['id']}", R, role="member", expect=200)
        await c.call("GET", f"{P}/{bad['id']}x", R, expect=404)
        await c.call("POST", f"{P}/{good['id']}/test", R + "/test", expect=200)
        await c.call("POST", f"{P}/{bad['id']}/test", R + "/test", expect=200)
        accepted = await c.call("POST", f"{P}/{good['id']}/test", R + "/test",
                                headers={"Prefer": "respond-async"}, expect=202)
        assert accepted.headers["Location"] == "/jobs/" + accepted.json()["job_id"]
        await c.call("POST", f"{P}/{bad['id']}/activate", R + "/activate", expect=422)
        await c.call("POST", f"{P}/{good['id']}/activate", R + "/activate", expect=200)
        await c.call("PATCH", f"{P}/{good['id']}", R, json={"name": "Renamed"}, expect=200)
        await c.call("PATCH", f"{P}/{good['id']}", R, json={"model": "missing-model"}, expect=422)
        await c.call("PATCH", f"{P}/{good['id']}", R, json={"endpoint": "http://127.0.0.1:9/v1"}, expect=422)
        await c.call("DELETE", f"{P}/{good['id']}", R, expect=409)
        await c.call("GET", f"{P}/{good['id']}/models", R + "/models", expect=200)
        await c.call("POST", P + "/discover-models", P + "/discover-models",
                     json={"kind": "openai", "api_key": "sk-wrong-000000"}, expect=422)
        await c.call("POST", P + "/discover-models", P + "/discover-models",
                     json={"kind": "openai", "api_key": good_key()}, expect=200)
        await c.call("GET", "/jobs/" + accepted.json()["job_id"], "/jobs/{id}", role="member", expect=200)
        await c.call("GET", f"/internal/active-provider?org={org}&feature=triage", "/internal/active-provider",
                     role="service", expect=200)
        await c.call("GET", f"/internal/active-provider?org={org}&feature=scan_agent", "/internal/active-provider",
                     role="service", expect=200)
        await c.call("GET", f"/internal/active-provider?org=nobody&feature=triage", "/internal/active-provider",
                     role="service", expect=200)
        await c.call("GET", f"/internal/active-provider?org={org}&feature=nope", "/internal/active-provider",
                     role="service", expect=422)
        await c.call("POST", "/internal/provider-errors", "/internal/provider-errors", role="service",
                     json={"org": org, "feature": "triage", "code": "rate_limited", "message": "slow down"},
                     expect=202)
        await c.call("GET", "/ops/alerts?status=open", "/ops/alerts", role="ops", expect=200)
        await c.call("GET", P + "/audit?limit=5", P + "/audit", expect=200)
        await c.call("GET", P + "/audit?limit=0", P + "/audit", expect=422)
        await c.call("POST", P + "/deactivate", P + "/deactivate", expect=200)
        await c.call("DELETE", f"{P}/{bad['id']}", R, expect=204)
        for _ in range(12):  # the org's limit on live calls (12 a minute here) runs out
            answer = await c.call("POST", f"{P}/{good['id']}/test", R + "/test", headers={"Prefer": "respond-async"})
            if answer.status_code == 429:
                assert int(answer.headers["Retry-After"]) >= 1
                break
        else:
            raise AssertionError("the rate limit never answered 429")
        await c.call("GET", "/metrics", "/metrics", role=None, expect=200)
    assert len(c.seen) >= 30
