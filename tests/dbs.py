"""Fresh databases for tests: every test gets its own, created from a migrated template and dropped after."""
from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg

from service.config import Settings
from service.migrate import apply_migrations

PG_ADMIN_DSN = os.environ.get("LLMP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL_TEMPLATE = os.environ.get("LLMP_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/{db}")


def _migrate(url: str, data_dir: Path) -> None:
    settings = Settings(_env_file=None, env="test", data_dir=data_dir, database_url=url,
                        )
    asyncio.run(apply_migrations(settings))


class PostgresDatabases:
    """A template database migrated once per test session; each test copies it (fast) and drops its copy."""

    def __init__(self, scratch: Path) -> None:
        self.template = f"llmp_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.scratch = scratch

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def prepare(self) -> None:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.template}"'))
        _migrate(PG_URL_TEMPLATE.format(db=self.template), self.scratch)

    async def create(self) -> tuple[str, str]:
        name = f"llmp_t_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name, PG_URL_TEMPLATE.format(db=name)

    async def drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def teardown(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))


class SqliteDatabases:
    def __init__(self, scratch: Path) -> None:
        self.template = scratch / "template.sqlite3"
        self.scratch = scratch

    def prepare(self) -> None:
        _migrate(f"sqlite://{self.template}", self.scratch)

    async def create(self) -> tuple[str, str]:
        path = self.scratch / f"t_{uuid.uuid4().hex[:12]}.sqlite3"
        shutil.copyfile(self.template, path)
        return str(path), f"sqlite://{path}"

    async def drop(self, name: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)

    def teardown(self) -> None:
        self.template.unlink(missing_ok=True)
