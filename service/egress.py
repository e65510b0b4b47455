"""SSRF-safe egress: the one pooled HTTP client per process (the address rules are in `egress_rules`).

Every outbound call to a provider goes through `EgressClient`. It refuses URLs that are not plain http(s)
or carry user-info, checks IP literals in the URL, and checks every address a name resolves to (through a
guarding resolver on the connector, so the address actually connected to is the one checked). It never
follows redirects, never sends cookies from one call to the next and caps what it reads.
Operators open private addresses for their own servers (Ollama, vLLM) with `LLMP_EGRESS_ALLOW`.
"""
from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

# The rules are re-exported: callers import everything egress-related from here.
from service.egress_rules import (  # noqa: F401
    METADATA_ADDRESSES,
    EgressPolicy,
    EndpointBlocked,
    GuardedResolver,
    IPAddress,
    blocked_reason,
    parse_host_address,
    parse_ipv4_spelling,
    validate_endpoint,
)

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_CONNECTION_LIMIT = 2000


class TransportError(Exception):
    """No usable HTTP answer: `code` is one of timeout, unreachable, tls_error, unexpected_response.

    `retryable` marks failures where a second attempt can change the answer (a reset connection).
    Messages name the host at most, never a path, query or header.
    """

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


# --- the client ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EgressResponse:
    """One HTTP answer, read completely (at most the byte cap)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    elapsed: float  # seconds from sending to the end of the body


class EgressClient:
    """One pooled aiohttp session per process for every provider call; see the module docstring.

    Create it once (`await client.start()` or `async with EgressClient(settings) as client`), share it, and
    `await client.close()` at shutdown. `limit` bounds connections in flight across all hosts; a request
    waiting for a pooled connection spends its own time budget while it waits.
    """

    def __init__(
        self,
        settings: Any,
        *,
        limit: int = DEFAULT_CONNECTION_LIMIT,
        limit_per_host: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = EgressPolicy.from_settings(settings)
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the pooled session (idempotent); must run on the event loop that will use the client."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.policy),
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                ttl_dns_cache=30,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # one org's cookies never reach another org's call
                trust_env=False,  # no proxy from the environment: the guard must see the real peer
                headers={"User-Agent": "llm-providers/0.1"},
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> EgressClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def started(self) -> bool:
        return self._session is not None and not self._session.closed

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float,
        max_body: int = MAX_BODY_BYTES,
    ) -> EgressResponse:
        """Send one request and read the whole answer within `timeout` seconds.

        Raises EndpointBlocked (refused before connecting) or TransportError (no usable answer, including a
        body over `max_body`). Redirects come back as ordinary 3xx answers, never followed.
        """
        parsed = self.policy.check_url(url)
        await self.start()
        assert self._session is not None
        host = parsed.host or "?"
        started = time.monotonic()
        try:
            async with self._session.request(
                method,
                parsed,
                headers=dict(headers or {}),
                json=json,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=max(timeout, 0.001)),
            ) as resp:
                length = resp.content_length
                if length is not None and length > max_body:
                    raise _too_large(host, max_body)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > max_body:
                        raise _too_large(host, max_body)
                return EgressResponse(resp.status, resp.headers, bytes(body), time.monotonic() - started)
        except (EndpointBlocked, TransportError):
            raise
        except Exception as exc:  # every aiohttp/OS failure becomes one of the transport codes
            blocked = _find_cause(exc, EndpointBlocked)
            if blocked is not None:
                raise blocked from None
            raise _transport_error(exc, host, parsed.port) from None


def _too_large(host: str, limit: int) -> TransportError:
    size = f"{limit / 1048576:g} MiB" if limit >= 1048576 else f"{limit / 1024:g} KiB"
    return TransportError("unexpected_response", f"The answer from {host} was larger than {size}; it is not read.")


def _find_cause(exc: BaseException, kind: type[BaseException]) -> Any:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _transport_error(exc: Exception, host: str, port: int | None) -> TransportError:
    """Map an aiohttp/OS exception to a transport code and a message that names only the host."""
    shown = f"[{host}]" if ":" in host else host
    where = f"{shown}:{port}" if port else shown
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)) or _find_cause(exc, ssl.SSLError) is not None:
        return TransportError("tls_error", f"The TLS handshake with {where} failed (certificate or protocol).")
    if isinstance(exc, asyncio.TimeoutError):
        return TransportError("timeout", f"{where} did not answer within the check's time limit.")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return TransportError("unreachable", f"The host name {host} could not be resolved.")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = "connection refused" if exc.os_error.errno == errno.ECONNREFUSED else "no connection"
        return TransportError("unreachable", f"Could not connect to {where} ({reason}).")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, ConnectionResetError)) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE)
    ):
        return TransportError("unreachable", f"{where} closed the connection before answering.", retryable=True)
    if isinstance(exc, aiohttp.ClientResponseError):
        return TransportError("unexpected_response", f"{where} sent an answer that is not valid HTTP.")
    if isinstance(exc, aiohttp.InvalidURL):
        return TransportError("unreachable", "The endpoint is not a URL that can be fetched.")
    return TransportError("unreachable", f"The request to {where} failed ({type(exc).__name__}).")
