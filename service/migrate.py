"""Apply the schema migrations shipped inside the installed `models` package (aerich)."""
from __future__ import annotations

from pathlib import Path

from aerich import Command

import models.migrations
from service.config import Settings
from service.db import database_url_for, tortoise_config

MIGRATIONS_LOCATION = str(Path(models.migrations.__file__).parent)


async def apply_migrations(settings: Settings) -> list[str]:
    """Bring the database up to the newest migration; returns the versions applied now (none if current)."""
    command = Command(
        tortoise_config=tortoise_config(database_url_for(settings)), app="models", location=MIGRATIONS_LOCATION
    )
    async with command:
        await command.init()
        return await command.upgrade(run_in_transaction=True)
