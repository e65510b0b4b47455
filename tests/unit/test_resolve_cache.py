"""The resolve cache's promises, on the real `ActiveProviderCache` and `EventListener` handler wiring:
an eviction is never undone by a load that started before it, concurrent misses share one database read,
and nothing is trusted for long while the listener is not subscribed."""
from __future__ import annotations

import asyncio

from pydantic import SecretStr

from service import resolve
from service.events import PROVIDERS_CHANGED, EventListener
from service.resolve import ALL_ORGS, ActiveEntry, ActiveProviderCache


def entry(provider_id: str) -> ActiveEntry:
    return ActiveEntry(provider_id=provider_id, kind="openai", model="m", base_url="https://api.openai.com/v1",
                       api_version=None, api_key=SecretStr("sk-secret-value"), health={})


async def test_a_load_that_raced_an_eviction_is_not_kept():
    cache = ActiveProviderCache()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_load():  # reads the database before the change commits...
        started.set()
        await release.wait()
        return entry("old")

    load = asyncio.create_task(cache.load("acme", slow_load))
    await started.wait()
    cache.invalidate("acme")  # ...and the change's eviction arrives while it is under way
    release.set()
    assert (await load).provider_id == "old"  # the request already in flight may see the old state
    assert cache.get("acme") == (False, None)  # but it is not cached: the next request reads again

    async def fresh():
        return None

    assert await cache.load("acme", fresh) is None and cache.get("acme") == (True, None)
    cache.invalidate(ALL_ORGS)
    assert cache.get("acme") == (False, None)


async def test_concurrent_misses_share_one_read_and_a_later_request_does_not_join_an_older_one():
    cache = ActiveProviderCache()
    reads = []
    release = asyncio.Event()

    async def load():
        reads.append(1)
        number = len(reads)
        await release.wait()
        return entry(f"read-{number}")

    first = [asyncio.create_task(cache.load("acme", load)) for _ in range(20)]
    await asyncio.sleep(0)
    cache.invalidate("acme")  # a change: requests from now on must not get the read that started before it
    later = asyncio.create_task(cache.load("acme", load))
    await asyncio.sleep(0)
    release.set()
    assert {e.provider_id for e in await asyncio.gather(*first)} == {"read-1"}
    assert (await later).provider_id == "read-2" and len(reads) == 2


async def test_a_cancelled_caller_does_not_cancel_the_read_for_the_others():
    cache = ActiveProviderCache()
    release = asyncio.Event()

    async def load():
        await release.wait()
        return entry("shared")

    leader = asyncio.create_task(cache.load("acme", load))
    follower = asyncio.create_task(cache.load("acme", load))
    await asyncio.sleep(0)
    leader.cancel()
    release.set()
    assert (await follower).provider_id == "shared"


def test_entries_are_trusted_long_only_while_subscribed(monkeypatch):
    listener = EventListener(redis=None)
    cache = ActiveProviderCache(listener)
    now = [1000.0]
    monkeypatch.setattr(resolve.time, "monotonic", lambda: now[0])
    cache.put("acme", entry("p1"), cache.stamp("acme"))

    listener.connected = True
    now[0] += 5
    assert cache.get("acme")[0] is True  # subscribed: evictions arrive as events
    listener.connected = False  # Redis lost: events may be missed from now on
    assert cache.get("acme") == (False, None)

    listener.connected = True
    cache.put("acme", entry("p1"), cache.stamp("acme"))
    for handler in listener._handlers[PROVIDERS_CHANGED]:  # what a "providers changed" message runs
        handler("acme")
    assert cache.get("acme") == (False, None)


def test_the_key_stays_out_of_reprs():
    assert "sk-secret-value" not in repr(entry("p1")) and "sk-secret-value" not in str(entry("p1"))
