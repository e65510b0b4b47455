"""Operators' view: alerts (provider health, AI-service error reports, silent workers or scheduler)."""
from __future__ import annotations

from aiohttp import web

from api.auth import requires
from api.keys import CONTEXT
from api.openapi import documented
from api.schemas import AlertListOut
from service.alerts import list_alerts
from service.errors import InvalidInput
from service.liveness import evaluate_liveness

routes = web.RouteTableDef()


@routes.get("/ops/alerts")
@documented("Alerts, newest first", responses={200: AlertListOut}, errors=(422,),
            query={"status": {"schema": {"type": "string", "enum": ["open", "resolved"]}},
                   "org": {"schema": {"type": "string", "maxLength": 128}}})
@requires("ops")
async def alerts(request: web.Request) -> web.Response:
    status = request.query.get("status")
    org = request.query.get("org")
    if status not in (None, "open", "resolved"):
        raise InvalidInput({"status": "must be open or resolved"})
    if org is not None and not 1 <= len(org) <= 128:
        raise InvalidInput({"org": "must be 1 to 128 characters"})
    # Silence is noticed here too, so dead workers and a dead scheduler still show up.
    await evaluate_liveness(request.app[CONTEXT])
    return web.json_response({"items": await list_alerts(status, org)})
