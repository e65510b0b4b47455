"""The API's access log: aiohttp's format, minus the successful answers of the AI services' hot path.

`GET /internal/active-provider` is called for every AI task on the platform; a log line for each of its
successful answers would cost more CPU than answering (a formatted record and a write per request) and
say nothing `llmp_resolves_total{source}` does not count. Its refusals (4xx, 5xx) are logged as usual,
as is every other path.
"""
from __future__ import annotations

from aiohttp.web_log import AccessLogger

QUIET_PATHS = frozenset({"/internal/active-provider"})


class ApiAccessLogger(AccessLogger):
    def log(self, request, response, time: float) -> None:
        if response.status < 300 and request.path in QUIET_PATHS:
            return
        super().log(request, response, time)
