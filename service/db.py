"""The database: Tortoise configuration, start and stop for one process."""
from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise, connections

from models import MODEL_MODULES
from service.config import Settings


def tortoise_config(database_url: str) -> dict:
    return {
        "connections": {"default": database_url},
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
