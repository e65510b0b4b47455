"""What the platform's AI services call: the org's active provider, and reports of failed calls."""
from __future__ import annotations

from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.keys import CONTEXT
from api.openapi import documented
from api.schemas import ProviderErrorReportOut, ResolvedOut, read_json
from service.errors import InvalidInput, ServiceError
from service.metrics import RESOLVES
from service.provider_errors import ProviderErrorReport, report_provider_error
from service.resolve import DEFAULT_BODY, resolve_active_body
from service.validation import parse_body

routes = web.RouteTableDef()
_COUNT = {"byo": RESOLVES.labels(source="byo"), "default": RESOLVES.labels(source="default"),
          "refused": RESOLVES.labels(source="refused")}
# The answer carries an API key: no cache may keep it.
_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


@routes.get("/internal/active-provider")
@documented("The org's active provider for one AI feature (fail closed)", responses={200: ResolvedOut},
            errors=(409, 422, 503),
            query={"org": {"required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 128}},
                   "feature": {"required": True, "schema": {"type": "string"}}})
@requires("service")
async def active_provider(request: web.Request) -> web.Response:
    query = request.query
    org, feature = query.get("org", ""), query.get("feature", "")
    if not 1 <= len(org) <= 128 or not feature:
        problems = {}
        if not 1 <= len(org) <= 128:
            problems["org"] = "is required (1 to 128 characters)"
        if not feature:
            problems["feature"] = "is required"
        raise InvalidInput(problems)
    try:
        body = await resolve_active_body(request.app[CONTEXT], org, feature)
    except ServiceError:
        _COUNT["refused"].inc()
        raise
    _COUNT["default" if body is DEFAULT_BODY else "byo"].inc()
    return web.Response(body=body, headers=_HEADERS)


@routes.post("/internal/provider-errors")
@documented("Report a failed call to an org's BYO provider; counted, fed into its health, shown to operators",
            request=ProviderErrorReport, responses={202: ProviderErrorReportOut}, errors=(422,))
@requires("service")
async def provider_errors(request: web.Request) -> web.Response:
    report = parse_body(ProviderErrorReport, await read_json(request))
    outcome = await report_provider_error(request.app[CONTEXT], request[PRINCIPAL], report)
    return web.json_response(outcome, status=202)
