"""The OpenAPI 3 document, built from the same pydantic models the handlers validate and answer with."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from api.schemas import ErrorOut, JobAcceptedOut

_ERROR_STATUSES = {400: "Malformed request", 401: "Missing or invalid token", 403: "Role not allowed",
                   404: "Not found (or another org's)", 409: "Conflict", 413: "Body too large",
                   422: "Invalid fields", 429: "Rate limited", 503: "A dependency is down"}


def documented(summary: str, *, request: type[BaseModel] | None = None,
               responses: dict[int, type[BaseModel] | None] | None = None,
               query: dict[str, dict[str, Any]] | None = None, errors: tuple[int, ...] = (),
               media: dict[int, str] | None = None) -> Callable:
    """Attach what the OpenAPI document says about a handler. `media` names statuses answered with a
    non-JSON body (e.g. {200: "text/plain"}); `responses` then holds None for them."""

    def decorate(handler: Callable) -> Callable:
        handler.llmp_doc = {"summary": summary, "request": request, "responses": responses or {},
                            "query": query or {}, "errors": errors, "media": media or {}}
        return handler

    return decorate


def build_openapi(app: web.Application) -> dict:
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        for name, definition in schema.pop("$defs", {}).items():
            schemas[name] = definition
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def input_ref(model: type[BaseModel]) -> dict:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        for name, definition in schema.pop("$defs", {}).items():
            schemas[name] = definition
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict] = {}
    for route in app.router.routes():
        handler = route.handler
        doc = getattr(handler, "llmp_doc", None)
        if doc is None or route.method == "HEAD":
            continue
        path = route.resource.canonical
        roles = getattr(handler, "llmp_roles", None)
        operation: dict[str, Any] = {"summary": doc["summary"], "responses": {}}
        if roles:
            operation["security"] = [{"bearer": []}]
            operation["description"] = "Roles: " + ", ".join(roles)
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _path_params(path)]
        parameters += [{"name": name, "in": "query", **_no_nul(spec)} for name, spec in doc["query"].items()]
        if parameters:
            operation["parameters"] = parameters
        if doc["request"] is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": input_ref(doc["request"])}}}
        for status, model in doc["responses"].items():
            body: dict[str, Any] = {"description": "OK" if status < 300 else "Answer"}
            if model is not None:
                body["content"] = {"application/json": {"schema": ref(model)}}
            elif status in doc["media"]:
                media_type = doc["media"][status]
                body["content"] = {media_type: {"schema": {"type": "object" if media_type.endswith("json")
                                                           else "string"}}}
            if model is JobAcceptedOut:
                body["headers"] = {"Location": {"description": "The job to poll: /jobs/{id}",
                                                "schema": {"type": "string"}}}
            operation["responses"][str(status)] = body
        error_statuses = set(doc["errors"])
        if roles:
            # Every authenticated call reads the database: 503 when it (or Redis) does not answer.
            error_statuses |= {401, 403, 503}
        if doc["request"] is not None:
            error_statuses |= {400, 413, 422}
        for status in sorted(error_statuses):
            operation["responses"][str(status)] = {
                "description": _ERROR_STATUSES.get(status, "Error"),
                "content": {"application/json": {"schema": ref(ErrorOut)}},
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM Providers", "version": "0.1.0",
                 "description": "Bring-your-own LLM provider records, checks, activation and resolution."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _no_nul(spec: dict[str, Any]) -> dict[str, Any]:
    """A string query parameter never holds NUL (api.errors refuses it with 422): say so in its schema."""
    schema = spec.get("schema", {})
    if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
        spec = {**spec, "schema": {**schema, "pattern": "^[^\\x00]*$"}}
    return spec


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
