"""Request-scoped database access: every statement of a request goes through here.

That makes it the place that counts what a query costs (statements, rows, milliseconds: the
`extensions.landscape` of every response), enforces the request deadline down in the database,
and turns driver faults into client errors. Each statement runs on a pool connection of its
own, so two DataLoader batches running at once never share one.

Two ways in: `all()` runs a SQLAlchemy statement and returns its Rows; `fetch()` runs a
`Prepared` statement, compiled once per Landscape, straight on the driver and returns its raw
rows (tuples). `fetch()` is the hot path: building, cache-keying and compiling a Core statement
costs more than running a small indexed SELECT, and SQLAlchemy's per-row processing
(notably parsing SQLite's text timestamps) more than the mapping to records.

A request may `hold()` the connection it checks out and give it back with `release()` when it
ends (the fast executor does); that saves the pool's checkout and check-in per statement
(no thread hop: check-in runs no rollback, see `pool_reset_on_return` in engine.py). Without
`hold()` each statement checks its connection out and back in, as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from ..errors import DatabaseUnavailable, QueryTimeout
from .engine import Landscape, translate_db_error

# Connections one holding request keeps. One: a request that held one connection and waited for
# the pool for another could deadlock with others doing the same once the pool is drained (32
# concurrent requests, 8 connections). Its concurrent statements take turns on it; prepared
# statements run on the loop's thread anyway, so they never overlap.
MAX_HELD_CONNECTIONS = 1

# How long a statement may hold the event loop's thread before it moves to aiosqlite's, where
# it runs again from the start. Well above any indexed lookup or page because a move is not
# free: besides the rerun, awaiting the thread lets other loaders dispatch in between, so a
# request's statement count would depend on the machine's load (at 25 ms, eight statements of
# the test suite moved on a quiet machine). Only a real scan gets here.
INLINE_BUDGET_S = 1.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled once for a dialect: its SQL and where each parameter goes."""

    sql: str
    names: tuple[str, ...]  # positional parameter names, in order
    fixed: Mapping[str, Any]  # values bound when the statement was built, processed
    processors: Mapping[str, Any]  # the dialect's bind processing, by name

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        fixed, processors = self.fixed, self.processors
        out = []
        for name in self.names:
            if name in values:
                value = values[name]
                process = processors.get(name)
                out.append(value if process is None else process(value))
            else:
                out.append(fixed[name])
        return tuple(out)


def prepare(statement: ClauseElement, dialect: Dialect, dynamic: Sequence[str]) -> Prepared:
    """Compile `statement`; `dynamic` names the bind parameters given at each run.

    Expanding parameters (`IN` over a list bound as a Python list) are refused: their SQL
    depends on the list, which is what one compilation per statement avoids.
    """
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("a prepared statement cannot have expanding parameters")
    names = tuple(compiled.positiontup or ())
    processors: dict[str, Any] = dict(compiled._bind_processors)
    fixed: dict[str, Any] = {}
    for name in names:
        if name not in dynamic:
            value = compiled.binds[name].effective_value
            process = processors.get(name)
            fixed[name] = value if process is None else process(value)
    missing = set(dynamic) - set(names)
    if missing:
        raise ValueError(f"the statement has no parameter {sorted(missing)}")
    return Prepared(sql=compiled.string, names=names, fixed=fixed,
                    processors={n: p for n, p in processors.items() if n in dynamic})


class StatementTracer(Protocol):
    """Something that wraps each statement, e.g. in a tracing span (see tracing.py)."""

    def statement(self, backend: str) -> AbstractContextManager[Any]: ...


class DbSession:
    def __init__(self, landscape: Landscape, *, timeout_s: float | None = None,
                 tracer: StatementTracer | None = None,
                 allowed_runs: frozenset[str] | None = None) -> None:
        self.landscape = landscape
        # The caller's runs (None: all). Lookups by id apply it in their SQL (`_statements.
        # fetch_scoped`), so what another run holds is never read, counted or timed.
        self.allowed_runs = allowed_runs
        self._tracer = tracer
        self.tables = landscape.tables
        self.epoch = landscape.epoch
        self.dialect = landscape.dialect
        self.statements = 0
        self.rows = 0
        self.db_seconds = 0.0
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._holding = False
        self._held: list[AsyncConnection] = []
        self._idle: list[AsyncConnection] = []
        self._idle_event: asyncio.Event | None = None
        self._opening = 0  # checkouts under way for held connections

    def remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return self._deadline - time.monotonic()

    # -- connections -------------------------------------------------------------------------

    def hold(self) -> None:
        """Keep checked-out connections for later statements until `release()`."""
        self._holding = True

    async def release(self) -> None:
        """Give the held connections back to the pool; later statements check out their own.

        A connection still running a statement (work the request left behind) goes back when
        that statement ends."""
        self._holding = False
        idle, self._idle = self._idle, []
        for conn in idle:
            self._held.remove(conn)
            with contextlib.suppress(Exception):
                await conn.close()

    async def _checkout(self) -> AsyncConnection:
        while self._holding:
            if self._idle:
                return self._idle.pop()
            # Counted before the checkout is awaited, so concurrent statements cannot all start one.
            if len(self._held) + self._opening < MAX_HELD_CONNECTIONS:
                self._opening += 1
                try:
                    conn = await self.landscape.engine.connect().start()
                finally:
                    self._opening -= 1
                    if self._idle_event is not None:
                        self._idle_event.set()
                if self._holding:
                    self._held.append(conn)
                return conn
            if self._idle_event is None:
                self._idle_event = asyncio.Event()
            self._idle_event.clear()
            await self._idle_event.wait()
        return await self.landscape.engine.connect().start()

    async def _checkin(self, conn: AsyncConnection, healthy: bool) -> None:
        if conn in self._held:
            if healthy and self._holding:
                self._idle.append(conn)
                if self._idle_event is not None:
                    self._idle_event.set()
                return
            self._held.remove(conn)
            if self._idle_event is not None:
                self._idle_event.set()  # a holder waiting for a connection may check one out
        await conn.close()

    # -- statements ----------------------------------------------------------------------------

    async def all(self, statement: Executable) -> Sequence[Any]:
        """Run one SELECT on a connection of its own and return all its rows."""
        return await self._run(self._execute, statement)

    async def fetch(self, prepared: Prepared, values: Mapping[str, Any]) -> Sequence[Any]:
        """Run a prepared SELECT with `values` for its dynamic parameters; return its raw rows."""
        return await self._run(self._execute_prepared, prepared, prepared.parameters(values))

    async def fetch_heavy(self, prepared: Prepared, values: Mapping[str, Any]) -> Sequence[Any]:
        """`fetch` for a statement that scans a whole run: never on the event loop's thread
        (not even for the inline budget), and only `HEAVY_STATEMENTS` at a time.

        A request waiting for its turn gives back the connection it holds first: ten waiting
        requests each holding one would otherwise drain the pool for everyone else."""
        if self._holding:
            await self.release()
        async with self.landscape.heavy:
            return await self._run(self._execute_off_loop, prepared, prepared.parameters(values))

    async def _run(self, execute: Any, *args: Any) -> Sequence[Any]:
        if self._tracer is None:
            return await self._run_untraced(execute, *args)
        with self._tracer.statement(self.landscape.backend) as span:
            rows = await self._run_untraced(execute, *args)
            span.set_attribute("db.response.returned_rows", len(rows))
            return rows

    async def _run_untraced(self, execute: Any, *args: Any) -> Sequence[Any]:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise QueryTimeout("The request ran out of time before its next query")
        started = time.perf_counter()
        try:
            conn = await self._checkout()
            healthy = False
            try:
                # Counted once a connection is had: a statement never sent is not a cost.
                self.statements += 1
                rows: Sequence[Any] = await execute(conn, *args, remaining)
                healthy = True
            finally:
                await self._checkin(conn, healthy)
        except Exception as exc:
            translated = translate_db_error(exc)  # a LandscapeError is itself
            if isinstance(translated, DatabaseUnavailable):
                # /readyz must not vouch for the database on an earlier answer (_readiness.py).
                self.landscape.activity.failed_at = time.monotonic()
            if translated is exc:
                raise
            raise translated from exc
        finally:
            self.db_seconds += time.perf_counter() - started
        self.rows += len(rows)
        self.landscape.activity.answered_at = time.monotonic()
        return rows

    async def _execute(self, conn: AsyncConnection, statement: Executable,
                       remaining: float | None) -> Sequence[Any]:
        return await self._within(conn, lambda: conn.execute(statement), remaining)

    async def _execute_prepared(self, conn: AsyncConnection, prepared: Prepared,
                                parameters: tuple[Any, ...], remaining: float | None) -> Sequence[Any]:
        if self.landscape.backend != "sqlite":
            # PostgreSQL through SQLAlchemy's driver adapter (with its cancellation on timeout);
            # SQLCipher on aiosqlite's thread, whose wrapper translates the driver's errors.
            return await self._execute_driver_sql(conn, prepared.sql, parameters, remaining)
        sync = conn.sync_connection
        # The checked-out connection's driver, reached without a greenlet round trip.
        driver: Any = (sync.connection.driver_connection if sync is not None
                       else (await conn.get_raw_connection()).driver_connection)
        sqlite_conn = getattr(driver, "_connection", None) or getattr(driver, "_conn", None)
        if sqlite_conn is None:  # pragma: no cover - aiosqlite always has one
            return await self._execute_driver_sql(conn, prepared.sql, parameters, remaining)
        rows = self._try_inline(conn, sqlite_conn, prepared.sql, parameters, remaining)
        if rows is None:
            # Slow, or a writer holds a lock: finish on aiosqlite's thread, where waiting for
            # the lock (up to the busy timeout) or scanning leaves the event loop free. With
            # the time the inline attempt used taken off: the deadline is the request's.
            remaining = self.remaining()
            if remaining is not None and remaining <= 0:
                raise QueryTimeout()
            return await self._execute_driver_sql(conn, prepared.sql, parameters, remaining)
        return rows

    async def _execute_off_loop(self, conn: AsyncConnection, prepared: Prepared,
                                parameters: tuple[Any, ...], remaining: float | None) -> Sequence[Any]:
        return await self._execute_driver_sql(conn, prepared.sql, parameters, remaining)

    def _try_inline(self, conn: AsyncConnection, sqlite_conn: Any, sql: str,
                    parameters: tuple[Any, ...], remaining: float | None) -> list[Any] | None:
        """Run on the event loop's thread if it is quick; None if it was not and was abandoned.

        A prepared statement is usually an indexed lookup or a page: tens of microseconds of
        SQLite, against ~75 µs for each hop to aiosqlite's thread and back, and the rows'
        Python objects hold the GIL in either thread anyway. But the loop must never wait
        for SQLite for long: /livez and every other request share it. So the attempt gets
        `INLINE_BUDGET_S` (1 s, far above any lookup or page, for the reasons given there; the
        progress handler interrupts it) and no busy wait (a locked database fails at once), and
        the caller reruns what was abandoned on the thread. Nothing was
        returned or counted by then, so a rerun costs time, never a wrong answer or count.
        """
        budget = INLINE_BUDGET_S if remaining is None else min(INLINE_BUDGET_S, remaining)
        deadline = time.monotonic() + budget
        sqlite_conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        sqlite_conn.execute("PRAGMA busy_timeout = 0")
        try:
            rows: list[Any] = sqlite_conn.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "interrupted" in message or "locked" in message or "busy" in message:
                return None
            raise
        finally:
            sqlite_conn.set_progress_handler(None, 0)
            sqlite_conn.execute(f"PRAGMA busy_timeout = {self.landscape.busy_timeout_ms:d}")
        sync_conn = conn.sync_connection
        dispatch = sync_conn.dispatch if sync_conn is not None else None
        if dispatch is not None:
            # Statement listeners (logging, the tests' counters) see the statement that
            # answered, once, as if it had gone through SQLAlchemy.
            if dispatch.before_cursor_execute:
                dispatch.before_cursor_execute(sync_conn, None, sql, parameters, None, False)
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(sync_conn, None, sql, parameters, None, False)
        return rows

    async def _execute_driver_sql(self, conn: AsyncConnection, sql: str, parameters: tuple[Any, ...],
                                  remaining: float | None) -> Sequence[Any]:
        return await self._within(conn, lambda: conn.exec_driver_sql(sql, parameters), remaining)

    async def _within(self, conn: AsyncConnection, start: Callable[[], Awaitable[Result[Any]]],
                      remaining: float | None) -> Sequence[Any]:
        """Run the statement `start` sends on `conn`; past `remaining` seconds, stop it there."""
        async def run() -> Sequence[Any]:
            return (await start()).all()

        if remaining is None:
            return await run()
        task = asyncio.ensure_future(run())
        try:
            return await asyncio.wait_for(asyncio.shield(task), remaining)
        except TimeoutError:
            await self._cancel(conn, task)
            raise QueryTimeout() from None

    async def _cancel(self, conn: AsyncConnection, task: asyncio.Future[Any]) -> None:
        """Stop the statement `task` runs so its connection goes back healthy.

        Cancelling the await leaves SQLite's worker thread running the query: interrupt it
        (`sqlite3_interrupt` is thread-safe by SQLite's contract). asyncpg cancels the
        statement on the server itself when its task is cancelled; its `reset()` would only
        refuse while an operation is in progress.
        """
        if self.dialect == "sqlite":
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            sqlite_conn = getattr(driver, "_connection", None) or getattr(driver, "_conn", None)
            if sqlite_conn is not None:
                sqlite_conn.interrupt()
        else:
            task.cancel()
        with contextlib.suppress(BaseException):
            await task

    def cost(self) -> dict[str, Any]:
        return {
            "sqlStatements": self.statements,
            "rowsRead": self.rows,
            "dbMilliseconds": round(self.db_seconds * 1000, 3),
        }
