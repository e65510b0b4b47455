"""Fake provider servers: one aiohttp app on 127.0.0.1 serving all five kinds' real wire formats.

Prefixes: /openai/v1, /anthropic, /gemini, /azure, /compat (OpenAI-compatible; /compat/v1 is the API, the
bare /compat answers 404 as such servers do), /vllm/v1 and /ollama/v1 (their flavours).

Behaviour is chosen per request, so one server serves many cases at once:

| key                         | answer (in the flavour's own format)                                      |
|-----------------------------|---------------------------------------------------------------------------|
| missing                     | the provider's "no key" error (Ollama: accepted)                          |
| not starting with `fake-`   | the provider's wrong-key error (Gemini: 400 API_KEY_INVALID; vLLM: 401)   |
| `fake-ok-...`, `fake-x-...` | success                                                                   |
| `fake-slow<ms>-...`         | success after <ms> milliseconds                                           |
| `fake-denied-...`           | permission error (OpenAI: 401 missing scopes; Gemini: 403 SERVICE_DISABLED)|
| `fake-region-...`           | OpenAI 403 unsupported_country_region_territory; Gemini 400 location      |
| `fake-ratelimit-...`        | 429 rate limit, Retry-After 20                                            |
| `fake-flaky429-...`         | first request 429 with Retry-After 1, then success                        |
| `fake-quota-...`            | OpenAI 429 insufficient_quota; Anthropic 400 credit balance; Gemini 429   |
|                             | zero daily quota; compat 402                                              |
| `fake-overloaded-...`       | Anthropic 529 overloaded_error; others 503                                |
| `fake-error500-...`         | 500; `fake-flaky500-...`: first request 500, then success                 |
| `fake-flaky529-...`         | Anthropic: first request 529, then success                                |
| `fake-badrequest-...`       | 400 invalid request                                                       |
| `fake-echo-...`             | 400 whose message contains the key (raw and masked)                       |
| `fake-hang-...`             | never answers                                                             |
| `fake-huge-...`             | 200 with a 2 MiB body; `fake-hugechunked-...`: 3 MiB chunked, no length   |
| `fake-html-...`             | 200 text/html page                                                        |
| `fake-redirect-...`         | 302 to http://169.254.169.254/latest/meta-data/                           |
| `fake-redirectlocal-...`    | 307 to the same path on this server                                       |
| `fake-reset-...`            | connection closed without an answer; `fake-flakyreset-...`: first only    |

Chat completions (OpenAI, Azure, OpenAI-compatible) that offer `tools` answer with a call of the first tool.
Models: names starting with `missing` do not exist (Azure: no such deployment). OpenAI/Azure models starting
o1/o3/o4/gpt-5 are reasoning models (refuse max_tokens; a small max_completion_tokens ends with
finish_reason "length" and no text, or with the 400 "output limit was reached" for names containing
`strict`). Azure accepts only the api-versions in flavours.AZURE_VERSIONS (others: 404 Resource not found).
Gemini models containing "pro" answer a small maxOutputTokens with MAX_TOKENS and no text.

`FakeProviders.delay` adds latency to every answer ("answers in 200 ms"). `FakeProviders.behave(key,
behaviour)` makes requests carrying `key` answer as `fake-<behaviour>-...` would (a provider that starts
failing); `behave(key, None)` restores the key's own behaviour (it recovers). Every request is logged in
`.log` (method, path, query, headers, json, monotonic time `at`) before it is answered.
Standalone: `python -m tests.fakes.server --port N [--delay S]`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import ssl
import time
from collections import Counter
from typing import Any

from aiohttp import web

from tests.fakes.flavours import HANDLERS, Ask

_KEY_HEADERS = {"anthropic": "x-api-key", "gemini": "x-goog-api-key", "azure": "api-key"}
_SLOW = re.compile(r"^slow(\d+)$")


class FakeProviders:
    """The running fake: addresses, the request log and the latency knob."""

    def __init__(self, delay: float = 0.0, record: bool = True) -> None:
        self.delay = delay
        self.record = record  # benchmarks turn the log off so memory stays flat
        self.log: list[dict[str, Any]] = []
        self.overrides: dict[str, str] = {}  # key -> behaviour, see behave()
        self._seen: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.scheme = "http"
        self.host = "127.0.0.1"
        self.port = 0

    # -- addresses --------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def base_url(self, kind: str) -> str:
        """The base to configure for `kind` (a catalog kind or a flavour): native kinds as the settings take
        them, endpoint kinds as a record's endpoint (ending in "/")."""
        bases = {
            "openai": "/openai/v1",
            "anthropic": "/anthropic",
            "gemini": "/gemini",
            "azure_openai": "/azure/",
            "azure": "/azure/",
            "openai_compatible": "/compat/v1/",
            "compat": "/compat/v1/",
            "compat_bare": "/compat/",
            "vllm": "/vllm/v1/",
            "ollama": "/ollama/v1/",
            "ollama_bare": "/ollama/",
        }
        return self.root + bases[kind]

    def native_settings(self) -> dict[str, str]:
        """Settings overrides pointing the native kinds at this fake."""
        return {
            "openai_base_url": self.base_url("openai"),
            "anthropic_base_url": self.base_url("anthropic"),
            "gemini_base_url": self.base_url("gemini"),
        }

    # -- log --------------------------------------------------------------------------------------
    def requests(self, flavour: str | None = None, key: str | None = None) -> list[dict[str, Any]]:
        """Logged requests, optionally only one flavour's or only those carrying `key` in any header."""
        return [
            r for r in self.log
            if (flavour is None or r["flavour"] == flavour) and (key is None or key in json.dumps(r["headers"]))
        ]

    def behave(self, key: str, behaviour: str | None) -> None:
        """Answer requests carrying `key` with `behaviour` (e.g. "error500", "hang"); None: as the key says."""
        if behaviour is None:
            self.overrides.pop(key, None)
        else:
            self.overrides[key] = behaviour

    def clear(self) -> None:
        self.log.clear()
        self._seen.clear()

    # -- server -----------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        # handler_cancellation: a hanging answer ends when the client gives up, so shutdown is quick.
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        self.host = host
        self.port = self._runner.addresses[0][1]
        self.scheme = "https" if ssl_context else "http"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        flavour, _, path = request.path.lstrip("/").partition("/")
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.record:
            self.log.append({"flavour": flavour, "method": request.method, "path": request.path,
                             "query": request.query_string, "url": str(request.url), "headers": headers,
                             "json": payload, "at": time.monotonic()})
        if flavour not in HANDLERS:
            return web.Response(status=404, text="404 page not found")
        key = _read_key(flavour, headers, request.query.get("key"))
        behaviour = key[5:].split("-", 1)[0] if key and key.startswith("fake-") else ""
        behaviour = self.overrides.get(key or "", behaviour)
        self._seen[key or ""] += 1
        ask = Ask(flavour, request.method, path, dict(request.query), headers, payload, key, behaviour,
                  first=self._seen[key or ""] == 1)
        delay = self.delay + (int(m.group(1)) / 1000 if (m := _SLOW.match(behaviour)) else 0.0)
        if delay:
            await asyncio.sleep(delay)
        transport = await self._transport_behaviour(request, ask)
        if transport is not None:
            return transport
        return HANDLERS[flavour](ask)

    async def _transport_behaviour(self, request: web.Request, ask: Ask) -> web.StreamResponse | None:
        kind = ask.behaviour
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind == "reset" or (kind == "flakyreset" and ask.first):
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on a dead connection
        if kind == "huge":
            return web.json_response({"choices": [], "padding": "x" * (2 * 1024 * 1024)})
        if kind == "hugechunked":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                for _ in range(48):
                    await response.write(b"x" * 65536)
            except (ConnectionError, RuntimeError):
                pass
            return response
        if kind == "html":
            return web.Response(text="<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works!</body></html>",
                                content_type="text/html")
        if kind == "redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if kind == "redirectlocal":
            raise web.HTTPTemporaryRedirect(str(request.url))
        return None


def _read_key(flavour: str, headers: dict[str, str], query_key: str | None) -> str | None:
    name = _KEY_HEADERS.get(flavour)
    if name:
        return headers.get(name) or (query_key if flavour == "gemini" else None)
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


async def start_fake_providers(
    *, delay: float = 0.0, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> FakeProviders:
    """Start the fakes on a real port (0: any free one) and return them; `await fakes.close()` when done."""
    fakes = FakeProviders(delay=delay)
    await fakes.start(host, port, ssl_context)
    return fakes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake LLM provider APIs (all five kinds) for tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args(argv)
    fakes = FakeProviders(delay=args.delay, record=False)
    print(f"fake providers on http://{args.host}:{args.port} (delay {args.delay:g} s)", flush=True)
    web.run_app(fakes.make_app(), host=args.host, port=args.port, access_log=None, print=None,
                handler_cancellation=True, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
