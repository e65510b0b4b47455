"""Calls that start jobs (test, activate), deactivation, and polling jobs."""
from __future__ import annotations

from aiohttp import web

from api.auth import ANY_ORG_ROLE, MANAGERS, PRINCIPAL, requires
from api.job_answers import answer_job
from api.keys import CONTEXT
from api.openapi import documented
from api.schemas import CheckResultOut, DeactivatedOut, JobAcceptedOut, JobOut, ProviderOut
from service import records
from service.activation import deactivate
from service.jobs import get_job, job_view, start_job

routes = web.RouteTableDef()
_PREFER = {"Prefer": {"schema": {"type": "string"}}}


@routes.post("/llm-providers/deactivate")
@documented("Switch the org to the platform defaults (idempotent)", responses={200: DeactivatedOut})
@requires(*MANAGERS)
async def deactivate_provider(request: web.Request) -> web.Response:
    await deactivate(request.app[CONTEXT], request[PRINCIPAL])
    return web.json_response({"active_provider_id": None})


@routes.post("/llm-providers/{id}/test")
@documented("Run a live check of the stored provider", responses={200: CheckResultOut, 202: JobAcceptedOut},
            errors=(404, 409, 429, 503))
@requires(*MANAGERS)
async def test_provider(request: web.Request) -> web.Response:
    return await _start(request, "test")


@routes.post("/llm-providers/{id}/activate")
@documented("Check live, then make this the org's active provider",
            responses={200: ProviderOut, 202: JobAcceptedOut}, errors=(404, 409, 422, 429, 503))
@requires(*MANAGERS)
async def activate_provider(request: web.Request) -> web.Response:
    return await _start(request, "activate")


@routes.get("/jobs/{id}")
@documented("A job of the org", responses={200: JobOut}, errors=(404,))
@requires(*ANY_ORG_ROLE)
async def get_job_status(request: web.Request) -> web.Response:
    job = await get_job(request[PRINCIPAL].org, request.match_info["id"])
    return web.json_response(job_view(job))


async def _start(request: web.Request, job_type: str) -> web.Response:
    principal = request[PRINCIPAL]
    record = await records.get_record(principal.org, request.match_info["id"])
    job = await start_job(request.app[CONTEXT], principal, job_type, record)
    return await answer_job(request, job)
