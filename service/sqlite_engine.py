"""Tortoise's SQLite engine with write transactions that take the write lock when they begin.

The embedded default runs the API, a worker and the scheduler as separate processes on one SQLite file (WAL
mode). Tortoise begins transactions with a plain (deferred) `BEGIN`: one that reads and then writes fails at
once with "database is locked" when another process wrote in between, since SQLite cannot wait that
conflict out (seen: a 500 on the first POST /llm-providers while the worker recorded its heartbeat).
`BEGIN IMMEDIATE` takes the write lock up front, so a conflicting transaction waits (the driver's 5 s busy
timeout) instead of failing. Transactions are short here; serialising them costs nothing a user notices.
"""
from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (NestedTransactionContext, SqliteClient, SqliteTransactionContext,
                                             SqliteTransactionWrapper)
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(ImmediateTransactionWrapper(self))

    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateTransactionContext(SqliteTransactionContext):
    """Gives the connection back when the transaction cannot begin (the write lock stayed taken past the
    busy timeout); Tortoise's context keeps it, and every later query of the process would wait forever."""

    async def __aenter__(self) -> TransactionalDBClient:
        try:
            return await super().__aenter__()
        except BaseException:
            token = getattr(self, "token", None)
            if token is not None:
                get_connections().reset(token)
            self._trxlock.release()
            raise


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return ImmediateTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient


def get_client_class(db_info: dict) -> type[SqliteClient]:
    return ImmediateSqliteClient
