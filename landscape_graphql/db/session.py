"""Request-scoped database access: every statement of a request goes through here.

That makes it the place that counts what a query costs (statements, rows, milliseconds: the
`extensions.landscape` of every response), enforces the request deadline down in the database,
and turns driver faults into client errors. Each call checks out its own pool connection, so
two DataLoader batches running at once never share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import LandscapeError, QueryTimeout
from .engine import Landscape
from .errors import translate_db_error


class DbSession:
    def __init__(self, landscape: Landscape, *, timeout_s: float | None = None) -> None:
        self.landscape = landscape
        self.tables = landscape.tables
        self.epoch = landscape.epoch
        self.dialect = landscape.dialect
        self.statements = 0
        self.rows = 0
        self.db_seconds = 0.0
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return self._deadline - time.monotonic()

    async def all(self, statement: Executable) -> Sequence[Any]:
        """Run one SELECT on a connection of its own and return all its rows."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise QueryTimeout("The request ran out of time before its next query")
        started = time.perf_counter()
        try:
            async with self.landscape.engine.connect() as conn:
                # Counted once a connection is had: a statement never sent is not a cost.
                self.statements += 1
                rows = await self._execute(conn, statement, remaining)
        except LandscapeError:
            raise
        except Exception as exc:
            translated = translate_db_error(exc)
            if translated is exc:
                raise
            raise translated from exc
        finally:
            self.db_seconds += time.perf_counter() - started
        self.rows += len(rows)
        return rows

    async def _execute(self, conn: AsyncConnection, statement: Executable,
                       remaining: float | None) -> Sequence[Any]:
        if remaining is None:
            return (await conn.execute(statement)).all()
        task = asyncio.ensure_future(self._run(conn, statement))
        try:
            return await asyncio.wait_for(asyncio.shield(task), remaining)
        except TimeoutError:
            # Cancelling the await leaves SQLite's worker thread running the query: interrupt
            # it so the connection goes back healthy. asyncpg cancels the statement on the
            # server itself when its task is cancelled.
            if self.dialect == "sqlite":
                await self._interrupt_sqlite(conn)
            else:
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise QueryTimeout(
                "The query took longer than the request timeout and was cancelled") from None

    @staticmethod
    async def _run(conn: AsyncConnection, statement: Executable) -> Sequence[Any]:
        return (await conn.execute(statement)).all()

    @staticmethod
    async def _interrupt_sqlite(conn: AsyncConnection) -> None:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        sqlite_conn = getattr(driver, "_connection", None)
        if sqlite_conn is not None:
            sqlite_conn.interrupt()  # thread-safe by SQLite's contract

    def cost(self) -> dict[str, Any]:
        return {
            "sqlStatements": self.statements,
            "rowsRead": self.rows,
            "dbMilliseconds": round(self.db_seconds * 1000, 3),
        }
