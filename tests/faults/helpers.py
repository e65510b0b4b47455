"""Small helpers shared by the fault tests: what a user does (create, poll) and what they watch."""
from __future__ import annotations

import asyncio
import contextlib
import time

from tests.conftest import good_key, openai_body

FINISHED = ("succeeded", "failed")


async def create(api, key: str | None = None, org: str = "acme") -> dict:
    status, record, _ = await api.call("POST", "/llm-providers", json=openai_body(api_key=key or good_key()), org=org)
    assert status == 201, (status, record)
    return record


async def poll_job(api, job_id: str, timeout: float, org: str = "acme") -> dict:
    """The job as GET /jobs/{id} shows it once finished; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        status, job, _ = await api.call("GET", f"/jobs/{job_id}", role="member", org=org)
        if status == 200 and job["status"] in FINISHED:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {timeout}s: {job}")


async def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Await `predicate()` (sync or async) until truthy; returns its value, fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached after {timeout}s")


class ActiveWatch:
    """Samples the org's active provider as a user sees it (GET /llm-providers) every `every` seconds.

    `seen` holds each distinct answer in order; errors (the API may answer 503 during an outage) are kept
    apart, so a test can assert that the active provider was never anything but the expected ones."""

    def __init__(self, api, org: str = "acme", every: float = 0.1) -> None:
        self.api, self.org, self.every = api, org, every
        self.seen: list[str | None] = []
        self.samples = 0
        self.errors: list[int] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            try:
                status, body, _ = await self.api.call("GET", "/llm-providers", role="member", org=self.org)
            except Exception:  # noqa: BLE001 - the watch itself must not end the test
                status, body = -1, None
            if status == 200:
                self.samples += 1
                active = body["active_provider_id"]
                if not self.seen or self.seen[-1] != active:
                    self.seen.append(active)
            else:
                self.errors.append(status)
            await asyncio.sleep(self.every)

    async def settle(self, samples: int = 2, timeout: float = 10) -> None:
        """Wait for `samples` more successful samples (what a user sees after the event just awaited)."""
        target = self.samples + samples
        await wait_until(lambda: self.samples >= target, timeout, what="active-provider samples")

    async def __aenter__(self) -> ActiveWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def no_traceback(body) -> bool:
    """An error body a user may see: no stack trace, no driver name, no SQL."""
    text = str(body)
    lowered = text.lower()
    return ("Traceback" not in text and 'File "' not in text
            and not any(word in lowered for word in ("asyncpg", "tortoise", "redis.", "select ", "insert into")))
