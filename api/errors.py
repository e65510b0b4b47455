"""One table from domain errors to HTTP answers, and the middleware that applies it.

Every error body is `{"error": {"code", "message", ...}}`; never a stack trace, never a secret.
"""
from __future__ import annotations

import json
import logging

from aiohttp import web
from redis.exceptions import RedisError
from tortoise.exceptions import DBConnectionError

from service.db import DATABASE_UNAVAILABLE, is_database_busy
from service.errors import (
    Conflict,
    CredentialsUnavailable,
    DependencyUnavailable,
    InvalidInput,
    LimitExceeded,
    NotFound,
    RateLimited,
    ServiceError,
)

log = logging.getLogger("llmp.api")

STATUS_BY_ERROR: dict[type[ServiceError], int] = {
    NotFound: 404,
    Conflict: 409,
    LimitExceeded: 409,
    InvalidInput: 422,
    RateLimited: 429,
    DependencyUnavailable: 503,
    CredentialsUnavailable: 503,
}

# aiohttp's own HTTP errors (routing, body size) get our shape too.
CODE_BY_HTTP_STATUS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 408: "request_timeout", 409: "conflict", 411: "length_required",
    413: "body_too_large", 415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
    431: "headers_too_large", 500: "internal_error", 503: "dependency_unavailable",
}


class ApiError(web.HTTPException):
    """An HTTP answer decided by the API layer itself (auth, malformed body)."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": {"code": code, "message": message, **extra}}),
                         content_type="application/json")


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra: object) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status, headers=headers)


def status_for(error: ServiceError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _refuse_nul_in_query(request: web.Request) -> None:
    """No query value may hold a NUL character: no database column can store or match one."""
    bad = {name: "must not contain NUL characters" for name, value in request.query.items() if "\x00" in value}
    if bad:
        raise InvalidInput(bad)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        _refuse_nul_in_query(request)
        return await handler(request)
    except ApiError:
        raise
    except ServiceError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        extra = {k: v for k, v in exc.details.items() if k != "retry_after"}
        return error_response(status_for(exc), exc.code, exc.message, headers=headers, **extra)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason if exc.status != 413 else "The request body is too large."
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(exc.status, CODE_BY_HTTP_STATUS.get(exc.status, "http_error"), message, headers=headers)
    except (DBConnectionError, RedisError, ConnectionError, OSError, TimeoutError, *DATABASE_UNAVAILABLE) as exc:
        log.error("dependency unavailable in %s %s: %s", request.method, request.path, type(exc).__name__)
        return error_response(503, "dependency_unavailable", "A service this API depends on is not answering; "
                              "try again shortly.")
    except Exception as exc:  # noqa: BLE001 - the last line of defence: log the type, answer without details
        if is_database_busy(exc):
            log.warning("database busy in %s %s", request.method, request.path)
            return error_response(503, "database_busy", "The database is busy; nothing was changed. Try again "
                                  "shortly.", headers={"Retry-After": "1"})
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
