"""What the platform's AI services call: the org's active provider, and reports of failed calls."""
from __future__ import annotations

from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.keys import CONTEXT
from api.openapi import documented
from api.schemas import ProviderErrorReportOut, ResolvedOut, read_json
from service.errors import InvalidInput
from service.provider_errors import ProviderErrorReport, report_provider_error
from service.resolve import resolve_active_provider
from service.validation import parse_body

routes = web.RouteTableDef()


@routes.get("/internal/active-provider")
@documented("The org's active provider for one AI feature (fail closed)", responses={200: ResolvedOut},
            errors=(409, 422, 503),
            query={"org": {"required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 128}},
                   "feature": {"required": True, "schema": {"type": "string"}}})
@requires("service")
async def active_provider(request: web.Request) -> web.Response:
    org, feature = request.query.get("org", ""), request.query.get("feature", "")
    problems = {}
    if not 1 <= len(org) <= 128:
        problems["org"] = "is required (1 to 128 characters)"
    if not feature:
        problems["feature"] = "is required"
    if problems:
        raise InvalidInput(problems)
    return web.json_response(await resolve_active_provider(request.app[CONTEXT], org, feature))


@routes.post("/internal/provider-errors")
@documented("Report a failed call to an org's BYO provider", request=ProviderErrorReport,
            responses={202: ProviderErrorReportOut}, errors=(404,))
@requires("service")
async def provider_errors(request: web.Request) -> web.Response:
    report = parse_body(ProviderErrorReport, await read_json(request))
    outcome = await report_provider_error(request.app[CONTEXT], request[PRINCIPAL], report)
    return web.json_response(outcome, status=202)
