"""Hostile HTTP against the production server (`api.http_server.ApiRunner` with its limits): oversized and
malformed bodies, deep nesting, invalid UTF-8, NUL characters, huge or too many headers, garbage, and
slow-loris clients. Each gets a fast 4xx in the API's error shape, or is cut off, and never a 5xx; while
slow clients hang, everyone else is still answered."""
from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time

import pytest

from api.app import MAX_BODY_BYTES
from api.http_server import HEADER_TIMEOUT
from api.schemas import BODY_READ_TIMEOUT
from models.providers import ProviderRecord
from tests.conftest import openai_body

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


async def _no_jobs(job_id: str) -> None:
    pass


@pytest.fixture
async def api(production_api, settings):
    closed = "http://127.0.0.1:9"  # nothing here may reach a provider, nor resolve a provider's name
    local = settings.model_copy(update={"egress_allow": "", "openai_base_url": closed + "/v1",
                                        "anthropic_base_url": closed, "gemini_base_url": closed})
    return await production_api(local, enqueue=_no_jobs)


async def raw_request(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict | None, bytes]:
    """Send raw bytes, read the answer until the server closes; (status, JSON body or None, raw)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return status, parsed, raw


def _post(path: str, body: bytes, token: str, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode() + extra + b"\r\n" + body


def _assert_error_shape(body, code: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    assert "Traceback" not in json.dumps(body)
    if code:
        assert body["error"]["code"] == code, body


async def test_bodies_too_large_malformed_nested_or_not_utf8(api):
    token = api.token("admin", "hostile")
    big = json.dumps({**openai_body(), "name": "x" * (MAX_BODY_BYTES + 1)}).encode()
    cases = [
        ("too large", big, 413, "body_too_large"),
        ("deep arrays", b"[" * 30000 + b"]" * 30000, 400, "malformed_json"),
        ("deep objects", b'{"a":' * 10000 + b"1" + b"}" * 10000, 400, "malformed_json"),
        ("nested within limits", json.dumps({**openai_body(), "name": [[[[[[["x"]]]]]]]}).encode(), 422, None),
        ("not utf-8", b'{"kind": "openai", "name": "\xff\xfe"}', 400, "malformed_json"),
        ("overlong utf-8", b'{"name": "\xc0\xaf"}', 400, "malformed_json"),
        ("unpaired surrogate", json.dumps({**openai_body(), "name": "a\ud800b"}).encode("utf-8", "surrogatepass"),
         400, "malformed_json"),
        ("escaped unpaired surrogate", json.dumps({**openai_body(), "name": "a\\ud800b"}).replace("\\\\", "\\")
         .encode(), 400, "malformed_json"),
        ("NUL in the key", json.dumps({**openai_body(), "api_key": "sk-abc\u0000def"}).encode(), 422, None),
        ("NUL in the endpoint", json.dumps({"kind": "openai_compatible", "name": "n", "model": "m", "api_key": "k",
                                            "endpoint": "http://127.0.0.1\u0000:9/v1"}).encode(), 422, None),
        ("huge number", json.dumps(openai_body()).encode()[:-1] + b', "x": ' + b"9" * 5000 + b"}", 400,
         "malformed_json"),
        ("NaN", b'{"kind": NaN}', 422, None),
        ("not an object", b'"just a string"', 422, None),
        ("empty", b"", 400, "malformed_json"),
    ]
    for label, body, expected, code in cases:
        started = time.monotonic()
        status, answer, raw = await raw_request(api.port, _post("/llm-providers", body, token))
        assert status == expected, (label, raw[:300])
        _assert_error_shape(answer, code)
        assert time.monotonic() - started < 5, label
    for label, field, raw_body in (("NUL", "api_key", {**openai_body(), "api_key": "sk-a\u0000b"}),):
        status, err, _ = await api.call("POST", "/llm-providers", org="hostile", json=raw_body)
        assert status == 422 and err["error"]["fields"] == {field: "must not contain NUL characters"}, (label, err)
    # Chunked, so no length is announced: still cut at the cap.
    status, err, _ = await api.call("POST", "/llm-providers", org="hostile",
                                    data=_chunks(big), headers={"Content-Type": "application/json"})
    assert status == 413
    _assert_error_shape(err, "body_too_large")
    assert await ProviderRecord.all().count() == 0


async def _chunks(data: bytes):
    for i in range(0, len(data), 8192):
        yield data[i:i + 8192]


async def test_query_strings_and_paths_with_nul_or_bad_encoding(api):
    cases = [
        ("GET", "/internal/active-provider?org=a%00b&feature=triage", "service", 422),
        ("GET", "/ops/alerts?org=%00", "ops", 422),
        ("GET", "/llm-providers/audit?limit=%00", "admin", 422),
        ("GET", "/internal/active-provider?org=%ff%fe&feature=triage", "service", 200),
        ("GET", "/ops/alerts?org=%ed%a0%80", "ops", 200),
        ("GET", "/llm-providers/%00", "admin", 404),
        ("GET", "/llm-providers/%ff%fe", "admin", 404),
        ("GET", "/jobs/%00", "member", 404),
        ("GET", "/llm-providers/" + "9" * 5000, "admin", 404),
    ]
    for method, path, role, expected in cases:
        status, body, _ = await api.call(method, path, role=role, org="hostile")
        assert status == expected, (path, status, body)
        if expected >= 400:
            _assert_error_shape(body)


async def test_headers_too_large_or_too_many_or_garbage_get_json_errors_and_are_not_echoed(api, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "sk-header-canary-" + "Q" * 9000
    cases = [
        ("huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
         "headers_too_large"),
        ("huge bearer token", b"GET /llm-providers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret.encode()
         + b"\r\n\r\n", 431, "headers_too_large"),
        ("huge header name", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X" * 9000 + b": 1\r\n\r\n", 431,
         "headers_too_large"),
        ("too many headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
         + b"".join(b"X-H%d: 1\r\n" % i for i in range(300)) + b"\r\n", 431, "headers_too_large"),
        ("long URL", b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        ("TLS on the HTTP port", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64, 400, "bad_request"),
        ("not HTTP", b"HELLO THERE\r\n\r\n", 400, "bad_request"),
        ("bad content length", b"POST /llm-providers HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400,
         "bad_request"),
        ("bad byte in path", b"GET /llm-providers/\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("header injection", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rInjected: b\r\n\r\n", 400,
         "bad_request"),
    ]
    for label, data, expected, code in cases:
        status, body, raw = await raw_request(api.port, data)
        assert status == expected, (label, raw[:300])
        _assert_error_shape(body, code)
        assert b"aaaa" not in raw and b"QQQQ" not in raw and b"XXXX" not in raw, label
    assert "QQQQ" not in caplog.text and "sk-header-canary" not in caplog.text
    # Non-UTF-8 bytes in a header value are only a header: the request is answered normally.
    status, body, _ = await raw_request(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\r\n"
                                                  b"Connection: close\r\n\r\n")
    assert status == 200 and body == {"status": "ok"}
    status, body, _ = await raw_request(api.port, b"GET /llm-providers HTTP/1.1\r\nHost: x\r\n"
                                                  b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n")
    assert status == 401
    _assert_error_shape(body, "unauthorized")


class SlowClient:
    """Sends `data` one byte at a time, `interval` seconds apart, and notes when the server cuts it off."""

    def __init__(self, port: int, data: bytes, interval: float) -> None:
        self.port, self.data, self.interval = port, data, interval
        self.sent = 0
        self.answer = b""
        self.cut_after: float | None = None

    async def run(self, limit: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        started = time.monotonic()
        closed = asyncio.ensure_future(reader.read())
        try:
            for byte in self.data:
                if closed.done() or time.monotonic() - started > limit:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                self.sent += 1
                await asyncio.wait([closed], timeout=self.interval)
            self.answer = await asyncio.wait_for(closed, max(0.1, limit - (time.monotonic() - started)))
            self.cut_after = time.monotonic() - started
        except (ConnectionError, asyncio.TimeoutError):
            self.cut_after = time.monotonic() - started if closed.done() else None
        finally:
            closed.cancel()
            writer.close()


async def _timed_get(api, path="/llm-providers") -> float:
    started = time.monotonic()
    status, _, _ = await asyncio.wait_for(api.call("GET", path, org="hostile"), 10)
    assert status == 200
    return time.monotonic() - started


async def test_slow_loris_clients_are_cut_off_and_others_are_still_served(api):
    """Slow headers are cut HEADER_TIMEOUT s after their first byte, slow bodies get 408 after
    BODY_READ_TIMEOUT s; meanwhile normal requests are answered about as fast as without them."""
    token = api.token("admin", "hostile")
    unloaded = [await _timed_get(api) for _ in range(20)]
    head = b"GET /llm-providers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() + b"\r\n" * 2
    body = json.dumps(openai_body()).encode()
    limit = max(HEADER_TIMEOUT, BODY_READ_TIMEOUT) + 8
    slow_heads = [SlowClient(api.port, head, 0.25) for _ in range(40)]
    tasks = [asyncio.ensure_future(c.run(limit)) for c in slow_heads]
    # These send their head at once, then the body a byte at a time.
    body_tasks = [asyncio.ensure_future(_slow_body(api.port, token, body)) for _ in range(20)]
    await asyncio.sleep(1.0)
    loaded = []
    while not all(t.done() for t in tasks):
        loaded.append(await _timed_get(api))
        await asyncio.sleep(0.05)
        if len(loaded) > 2000:
            break
    await asyncio.gather(*tasks)
    bodies = await asyncio.gather(*body_tasks)

    for client in slow_heads:
        assert client.cut_after is not None, "a slow-header client was never cut off"
        assert HEADER_TIMEOUT - 0.5 <= client.cut_after <= HEADER_TIMEOUT + 3, client.cut_after
        assert client.sent < len(head), "the head should not have been completed"
        assert client.answer == b""  # cut, not answered
    for status, answer, elapsed in bodies:
        assert status == 408, (status, answer)
        _assert_error_shape(answer, "request_timeout")
        assert BODY_READ_TIMEOUT - 0.5 <= elapsed <= BODY_READ_TIMEOUT + 4, elapsed
    assert len(loaded) >= 20
    base = statistics.median(unloaded)
    print(f"\nslow loris: {len(slow_heads)} slow heads cut after "
          f"{min(c.cut_after for c in slow_heads):.1f}-{max(c.cut_after for c in slow_heads):.1f} s, "
          f"{len(bodies)} slow bodies 408 after {min(b[2] for b in bodies):.1f}-{max(b[2] for b in bodies):.1f} s; "
          f"GET /llm-providers median {base * 1000:.1f} ms unloaded, {statistics.median(loaded) * 1000:.1f} ms "
          f"(max {max(loaded) * 1000:.0f} ms) over {len(loaded)} calls while they hung")
    assert statistics.median(loaded) <= 20 * base + 0.2, (statistics.median(loaded), base)
    assert max(loaded) < 5
    assert await ProviderRecord.all().count() == 0


async def _slow_body(port: int, token: str, body: bytes) -> tuple[int, dict | None, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write((f"POST /llm-providers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode())
    await writer.drain()
    answer = asyncio.ensure_future(reader.read())
    try:
        for byte in body:
            if answer.done():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([answer], timeout=0.25)
        raw = await asyncio.wait_for(answer, 20)
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    return status, parsed, elapsed
