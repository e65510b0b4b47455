"""The embedded default runs several processes on one SQLite file: a transaction of one must not fail
because another wrote while it ran."""
from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import datetime, timezone

import pytest
from tortoise.transactions import in_transaction

from models.ops import Heartbeat
from models.providers import ProviderRecord
from service.db import close_database, open_database


@pytest.fixture
async def sqlite_file(make_settings, database_url):
    await open_database(make_settings(database_url=database_url))
    yield database_url.removeprefix("sqlite://").split("?", 1)[0]
    await close_database()


def _other_process_writes(path: str) -> str:
    """What a second process (the worker recording its heartbeat, say) sees when it writes now."""
    other = sqlite3.connect(path, timeout=0.3, isolation_level=None)
    try:
        other.execute("INSERT INTO heartbeats (component, detail, seen_at) VALUES (?, ?, ?)",
                      (f"other-{uuid.uuid4().hex[:6]}", "x", datetime.now(timezone.utc).isoformat(" ")))
        return "wrote"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_transaction_that_reads_then_writes_survives_another_process_writing(sqlite_file):
    async with in_transaction():
        assert await ProviderRecord.filter(org="acme").count() == 0
        # The other writer waits for this transaction (and gives up after its own timeout) instead of
        # slipping a write in between, which would make this transaction's write fail at once.
        assert await asyncio.to_thread(_other_process_writes, sqlite_file) == "database is locked"
        await Heartbeat.create(component="api-test", detail="me", seen_at=datetime.now(timezone.utc))
    assert await Heartbeat.filter(component="api-test").exists()
    assert await asyncio.to_thread(_other_process_writes, sqlite_file) == "wrote"  # the lock is released


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_write_lock_held_past_the_busy_timeout_is_a_clear_503_that_changes_nothing(api_factory, settings,
                                                                                         database_url):
    from tests.conftest import openai_body

    api = await api_factory(settings)
    holder = sqlite3.connect(database_url.removeprefix("sqlite://").split("?", 1)[0], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a very long write
    try:
        status, body, headers = await api.call("POST", "/llm-providers", json=openai_body())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503 and body["error"]["code"] == "database_busy" and headers["Retry-After"] == "1", body
    assert (await api.call("GET", "/llm-providers"))[1]["items"] == []
