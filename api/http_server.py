"""The HTTP server the API runs on: aiohttp's, with limits against hostile clients and JSON protocol errors.

What bounds a client that misbehaves below the application (all checked by tests/security):
- sizes: request line and each header at most `MAX_LINE_SIZE` / `MAX_FIELD_SIZE` bytes, at most
  `MAX_HEADERS` headers (431, or 414 for a long URL), bodies at most `api.app.MAX_BODY_BYTES` (413);
- time: a request head must arrive complete within `HEADER_TIMEOUT` seconds of its first byte (aiohttp has
  no such limit of its own: a client sending its headers a byte at a time would otherwise hold the
  connection until the keep-alive timer, `KEEPALIVE_TIMEOUT`, which aiohttp starts when the connection
  opens); a body must be read within `api.schemas.BODY_READ_TIMEOUT` (408); an idle connection is closed
  after `KEEPALIVE_TIMEOUT`;
- shape: a request aiohttp cannot parse gets `{"error": {...}}` like every other error, and neither the
  answer nor the log repeats any of its bytes (aiohttp's own answer quotes the first 100 bytes of the
  offending line, which can be a bearer token).
"""
from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

log = logging.getLogger("llmp.http")

MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
HEADER_TIMEOUT = 10.0
KEEPALIVE_TIMEOUT = 75.0
LINGERING_TIME = 2.0  # seconds spent draining an unread body after answering early (401, 413, 408)

SERVER_OPTIONS = {"keepalive_timeout": KEEPALIVE_TIMEOUT, "header_timeout": HEADER_TIMEOUT,
                  "max_line_size": MAX_LINE_SIZE, "max_field_size": MAX_FIELD_SIZE, "max_headers": MAX_HEADERS,
                  "lingering_time": LINGERING_TIME}


def _protocol_error(exc: BaseException | None) -> tuple[int, str, str]:
    text = str(getattr(exc, "message", "") or "")
    if isinstance(exc, LineTooLong):
        line = exc.args[0] if exc.args else b""
        if isinstance(line, (bytes, bytearray)) and line[:1] == b"/":
            return 414, "uri_too_long", "The request URL is too long."
        return 431, "headers_too_large", "A request header is too large."
    if "Too many headers" in text:
        return 431, "headers_too_large", "The request has too many headers."
    return 400, "bad_request", "The request is not valid HTTP."


class ApiRequestHandler(web.RequestHandler):
    """aiohttp's connection handler plus a deadline for request heads and JSON answers to protocol errors."""

    def __init__(self, *args, header_timeout: float = HEADER_TIMEOUT, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            if self._head_timer is None and data:
                self._head_timer = self._loop.call_later(self.header_timeout, self._head_timed_out)
        elif self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _waiting_for_head(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._waiting_for_head():
            log.info("closed a connection whose request head was not complete after %g s", self.header_timeout)
            self.force_close()
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            # The request could not be parsed. Say so without repeating any of its bytes, here or in the log.
            status, code, text = _protocol_error(exc)
            log.info("refused an unparseable request from %s: %d %s", request.remote, status, type(exc).__name__)
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            code = {504: "timeout"}.get(status, "internal_error")
            text = "Something went wrong on our side; it has been logged."
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        response = web.Response(status=status, text=json.dumps({"error": {"code": code, "message": text}}),
                                content_type="application/json")
        response.force_close()
        return response


class ApiServer(web.Server):
    __slots__ = ()

    def __call__(self) -> web.RequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """`web.AppRunner` whose connections are `ApiRequestHandler`s; pass `SERVER_OPTIONS` (and overrides)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = ApiServer  # same server, our connection handler
        return server
