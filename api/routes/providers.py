"""Provider records: list, read, create, update, delete, catalog, audit."""
from __future__ import annotations

from aiohttp import web

from api.job_answers import answer_job
from api.auth import ANY_ORG_ROLE, ANY_ROLE, MANAGERS, PRINCIPAL, requires
from api.keys import CONTEXT
from api.openapi import documented
from api.schemas import AuditPageOut, JobAcceptedOut, CatalogOut, ProviderListOut, ProviderOut, read_json
from service import records
from service.audit import list_audit
from service.catalog_view import catalog_view
from service.errors import InvalidInput
from service.jobs import start_job
from service.validation import ProviderCreate, ProviderUpdate, parse_body

routes = web.RouteTableDef()


@routes.get("/llm-providers")
@documented("List the org's providers", responses={200: ProviderListOut})
@requires(*ANY_ORG_ROLE)
async def list_providers(request: web.Request) -> web.Response:
    items, active_id = await records.list_records(request[PRINCIPAL].org)
    return web.json_response({"items": [records.record_view(r, active_id) for r in items],
                              "active_provider_id": str(active_id) if active_id else None})


@routes.post("/llm-providers")
@documented("Create a provider record", request=ProviderCreate, responses={201: ProviderOut}, errors=(409,))
@requires(*MANAGERS)
async def create_provider(request: web.Request) -> web.Response:
    data = parse_body(ProviderCreate, await read_json(request))
    record = await records.create_record(request.app[CONTEXT], request[PRINCIPAL], data)
    return web.json_response(records.record_view(record, None), status=201)


@routes.get("/llm-providers/catalog")
@documented("Provider kinds, their fields, example models and capabilities", responses={200: CatalogOut})
@requires(*ANY_ROLE)
async def catalog(request: web.Request) -> web.Response:
    return web.json_response(catalog_view(request.app[CONTEXT].settings))


@routes.get("/llm-providers/audit")
@documented("The org's audit log, newest first", responses={200: AuditPageOut}, errors=(422,),
            query={"limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                   "before": {"schema": {"type": "integer", "minimum": 1}}})
@requires(*MANAGERS)
async def audit(request: web.Request) -> web.Response:
    limit = _int_param(request, "limit", 50, 1, 200)
    before = _int_param(request, "before", None, 1, 2**62)
    items, cursor = await list_audit(request[PRINCIPAL].org, limit=limit, before=before)
    return web.json_response({"items": items, "next_cursor": cursor})


@routes.get("/llm-providers/{id}")
@documented("One provider record", responses={200: ProviderOut}, errors=(404,))
@requires(*ANY_ORG_ROLE)
async def get_provider(request: web.Request) -> web.Response:
    org = request[PRINCIPAL].org
    record = await records.get_record(org, request.match_info["id"])
    return web.json_response(records.record_view(record, await records.active_provider_id(org)))


@routes.delete("/llm-providers/{id}")
@documented("Delete a provider (409 while active)", responses={204: None}, errors=(404, 409))
@requires(*MANAGERS)
async def delete_provider(request: web.Request) -> web.Response:
    await records.delete_record(request[PRINCIPAL], request.match_info["id"])
    return web.Response(status=204)


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput({name: "must be an integer"}) from None
    if not low <= value <= high:
        raise InvalidInput({name: f"must be between {low} and {high}"})
    return value


__all__ = ["routes", "ProviderUpdate"]


@routes.patch("/llm-providers/{id}")
@documented("Update a provider; a new api_key rotates the key. For the active provider a new key, model, "
            "endpoint or api_version applies only after a live check passes", request=ProviderUpdate,
            responses={200: ProviderOut, 202: JobAcceptedOut}, errors=(404, 409, 429, 503))
@requires(*MANAGERS)
async def update_provider(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    data = parse_body(ProviderUpdate, await read_json(request))
    record = await records.get_record(principal.org, request.match_info["id"])
    ctx = request.app[CONTEXT]
    try:
        record = await records.update_record(ctx, principal, record, data)
    except records.CheckRequired as pending:
        changes = {**pending.plan.immediate, **pending.plan.checked}
        return await answer_job(request, await start_job(ctx, principal, "update", record, changes))
    return web.json_response(records.record_view(record, await records.active_provider_id(principal.org)))
