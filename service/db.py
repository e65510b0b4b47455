"""The database: Tortoise configuration, start and stop for one process."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import asyncpg.exceptions as _pg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url

from models import MODEL_MODULES
from service.config import Settings

# What asyncpg raises while PostgreSQL is stopping, stopped or starting, which Tortoise passes through
# untranslated: connections refused or cut (08xxx), "shutting down"/"starting up"/admin shutdown (57xxx), out
# of connections (53xxx), and the client-side errors of a connection that broke mid-operation. A refused
# connect is an OSError; callers treat these alike as "the database is unavailable right now".
DATABASE_UNAVAILABLE = (_pg.PostgresConnectionError, _pg.OperatorInterventionError, _pg.InsufficientResourcesError,
                        _pg.InterfaceError, _pg.InternalClientError)


class LeanConnection(asyncpg.Connection):
    """An asyncpg connection returned to the pool without asyncpg's reset query (advisory unlock, CLOSE ALL,
    UNLISTEN, RESET ALL): one round trip per query saved. The service never takes advisory locks, LISTENs,
    keeps cursors or sets session variables; open transactions are still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


def connection_config(database_url: str, pool_size: int = 10) -> str | dict:
    """Tortoise's connection entry: PostgreSQL gets the lean connection class and a pool of `pool_size`;
    SQLite the engine whose transactions take the write lock when they begin (service/sqlite_engine.py)."""
    if database_url.startswith("sqlite://"):
        config = expand_db_url(database_url)
        config["engine"] = "service.sqlite_engine"
        return config
    if not database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        return database_url
    config = expand_db_url(database_url)
    config["credentials"].setdefault("connection_class", LeanConnection)
    config["credentials"].setdefault("maxsize", pool_size)
    return config


def tortoise_config(database_url: str, pool_size: int = 10) -> dict:
    return {
        "connections": {"default": connection_config(database_url, pool_size)},
        "apps": {"models": {"models": MODEL_MODULES, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def database_url_for(settings: Settings) -> str:
    url = settings.effective_database_url
    if url.startswith("sqlite://"):
        # The SQLite driver cannot create folders (and tortoise then hangs on the next query).
        path = url.removeprefix("sqlite://").split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


async def open_database(settings: Settings) -> None:
    """Initialise Tortoise for this process (one event loop); every task of the process shares it."""
    # The global fallback lets request handlers and worker tasks, which run in contexts other than
    # the one that called init, reach the same connections.
    await Tortoise.init(config=tortoise_config(database_url_for(settings)), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def ping_database() -> None:
    """Raise if the database does not answer a trivial query."""
    await connections.get("default").execute_query("SELECT 1")


def is_postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


def is_database_busy(exc: BaseException) -> bool:
    """SQLite's answer when another process held the write lock for longer than the busy timeout (5 s)."""
    from tortoise.exceptions import OperationalError, TransactionManagementError

    return isinstance(exc, (OperationalError, TransactionManagementError, sqlite3.OperationalError)) \
        and "database is locked" in str(exc)
