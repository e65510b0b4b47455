"""Model discovery for the admin page: which models a key can use, for candidate or saved credentials.

Both calls reach the provider (through the egress guard), so they count against the org's limit on live
calls, like test and activate. A provider refusal is 422 `discovery_failed` with the check result's shape
in `result`; the key is never in an answer.
"""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.auth import MANAGERS, PRINCIPAL, requires
from api.errors import error_response
from api.keys import CONTEXT
from api.openapi import documented
from api.schemas import read_json
from service import records
from service.model_discovery import Discovery, candidate_target, discover_models
from service.validation import DiscoverModelsRequest, parse_body

routes = web.RouteTableDef()


class ModelsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[str]


@routes.post("/llm-providers/discover-models")
@documented("List the models candidate credentials can use (before saving them)", request=DiscoverModelsRequest,
            responses={200: ModelsOut}, errors=(422, 429, 503))
@requires(*MANAGERS)
async def discover_candidate_models(request: web.Request) -> web.Response:
    data = parse_body(DiscoverModelsRequest, await read_json(request))
    target = candidate_target(data)
    ctx = request.app[CONTEXT]
    await ctx.extras["rate_limiter"].hit(request[PRINCIPAL].org)
    return _answer(await discover_models(target, ctx.http, ctx.settings))


@routes.get("/llm-providers/{id}/models")
@documented("List the models a saved provider's key can use", responses={200: ModelsOut},
            errors=(404, 422, 429, 503))
@requires(*MANAGERS)
async def saved_provider_models(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    ctx = request.app[CONTEXT]
    record = await records.get_record(principal.org, request.match_info["id"])
    await ctx.extras["rate_limiter"].hit(principal.org)
    target = records.target_of(ctx, record)
    return _answer(await discover_models(target, ctx.http, ctx.settings))


def _answer(discovery: Discovery) -> web.Response:
    if discovery.ok:
        return web.json_response({"models": discovery.models})
    result = discovery.error.as_dict()
    return error_response(422, "discovery_failed", result["error"]["message"], result=result)
