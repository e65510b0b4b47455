"""Liveness, readiness and the OpenAPI document: open to anyone, never a secret."""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from api.keys import CONTEXT
from api.openapi import build_openapi, documented
from api.schemas import ProbeOut
from service.metrics import scrape
from service.readiness import readiness

routes = web.RouteTableDef()


@routes.get("/healthz")
@documented("Liveness", responses={200: ProbeOut})
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@documented("Readiness: the database and the broker answer", responses={200: ProbeOut, 503: ProbeOut})
async def readyz(request: web.Request) -> web.Response:
    report = await readiness(request.app[CONTEXT])
    return web.json_response(report, status=200 if report["status"] == "ready" else 503)


@routes.get("/metrics")
@documented("Prometheus metrics (text exposition format)", responses={200: None}, media={200: "text/plain"})
async def metrics(request: web.Request) -> web.Response:
    body = await scrape(request.app[CONTEXT])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
@documented("This OpenAPI document", responses={200: None}, media={200: "application/json"})
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app))
