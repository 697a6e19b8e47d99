"""Opening a Landscape read-only, whatever its backend.

An audit database is a legal record: every connection this module makes is read-only at the
database level (SQLite `mode=ro` + `PRAGMA query_only`; PostgreSQL
`default_transaction_read_only`), so no bug higher up can write to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from ..errors import (
    DatabaseBusy,
    DatabaseUnavailable,
    LandscapeError,
    QueryTimeout,
    UnsupportedDatabase,
    WrongKey,
)
from ..extras import MissingExtra, require
from .epoch import ELSPETH_VERSIONS, EpochInfo, detect_epoch
from .tables import LandscapeTables, tables_for


@dataclass(frozen=True, slots=True)
class EngineOptions:
    pool_size: int = 8
    # How long a request waits for a free connection before DATABASE_BUSY.
    pool_timeout_s: float = 5.0
    # How long SQLite waits on a writer's lock before DATABASE_BUSY.
    busy_timeout_s: float = 2.0
    # Name of the environment variable holding a SQLCipher key (ELSPETH's default).
    key_env: str = "ELSPETH_AUDIT_KEY"
    sqlcipher: bool = False
    # PostgreSQL's statement_timeout for the server's sessions: a backstop to the request
    # deadline's client-side cancel (a lost cancel request must not leave a statement running).
    statement_timeout_s: float | None = None


@dataclass(slots=True)
class Activity:
    answered_at: float | None = None  # time.monotonic() of the last statement that answered
    failed_at: float | None = None  # ... and of the last that found the database unavailable


# Connections of the pool (8) that whole-run statements may hold at once.
HEAVY_STATEMENTS = 2


class _FileWatch:
    """Which file a SQLite Landscape's pooled connections have open.

    An open connection keeps reading a file that was deleted or replaced (it holds the old
    inode), which would answer from a database that is no longer there. Each request checks the
    path first: gone is DATABASE_UNAVAILABLE; replaced drops the pool so new connections open
    the new file, after checking it is still a Landscape of the same epoch.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.identity = _identity(path) if path is not None else None
        self.lock = asyncio.Lock()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


@dataclass(frozen=True, slots=True)
class Landscape:
    """One opened Landscape: the engine, its epoch and the table models to read it with."""

    engine: AsyncEngine
    epoch_info: EpochInfo
    tables: LandscapeTables
    backend: str  # "sqlite" | "sqlcipher" | "postgresql"
    location: str  # a display form, never containing a password or key
    watch: _FileWatch = field(default_factory=lambda: _FileWatch(None))
    busy_timeout_ms: int = 2000  # how long a SQLite reader waits for a writer's lock
    # Statements that scan a whole run (a DAG's edge counts) take turns on this share of the
    # pool, so however many requests ask for them, the rest of the pool serves everyone else.
    heavy: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(HEAVY_STATEMENTS))
    # When a statement last answered: /readyz's evidence while the pool is busy.
    activity: Activity = field(default_factory=lambda: Activity())

    async def check_file(self) -> None:
        """Raise DATABASE_UNAVAILABLE if the file is gone; follow it if it was replaced."""
        watch = self.watch
        if watch.path is None:
            return
        current = _identity(watch.path)
        if current is None:
            raise DatabaseUnavailable("The database file is no longer there")
        if current == watch.identity:
            return
        async with watch.lock:
            if _identity(watch.path) == watch.identity:
                return
            await self.engine.dispose()
            try:
                async with self.engine.connect() as conn:
                    info = await detect_epoch(conn)
            except LandscapeError:
                raise
            except Exception as exc:
                raise DatabaseUnavailable("The replaced database file cannot be read") from exc
            if info.epoch != self.epoch:
                raise DatabaseUnavailable(
                    f"The database file was replaced by one of schema epoch {info.epoch}; "
                    f"this server reads epoch {self.epoch}: restart it")
            watch.identity = _identity(watch.path)

    @property
    def epoch(self) -> int:
        return self.epoch_info.epoch

    @property
    def elspeth_version(self) -> str | None:
        return ELSPETH_VERSIONS.get(self.epoch)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()


def _is_url(target: str) -> bool:
    return "://" in target


def _sqlite_engine(path: Path, options: EngineOptions) -> AsyncEngine:
    if not path.exists():
        raise UnsupportedDatabase(f"No database file at {path}")
    if not path.is_file():
        raise UnsupportedDatabase(f"{path} is not a file")
    # mode=ro: SQLite itself refuses writes; the path is URI-quoted so '?' or '#' in a file
    # name cannot smuggle in URI parameters.
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    engine = create_async_engine(
        "sqlite+aiosqlite://",
        async_creator=_aiosqlite_creator(uri, options.busy_timeout_s),
        poolclass=AsyncAdaptedQueuePool,
        pool_size=options.pool_size,
        max_overflow=0,
        pool_timeout=options.pool_timeout_s,
        # No rollback when a connection goes back: these read-only connections never open a
        # transaction (SELECTs only, sqlite3 begins none for them), and each rollback is a hop
        # to aiosqlite's thread, which lets other loaders dispatch in between and so made a
        # request's statement count depend on timing.
        pool_reset_on_return=None,
    )
    return engine


# How much lower than the event loop's the CPU priority of aiosqlite's threads is (Linux, where a
# thread has a priority of its own). Small statements run on the loop's thread (`DbSession.
# _try_inline`); what runs on aiosqlite's is a whole-run scan or a statement past the inline
# budget, and one such scan per core kept the loop waiting for a core: /readyz and small requests
# waited up to ~0.15 s at a time under ten Run.dag requests (BENCHMARKS.md, "Hardening"). Nicer,
# a scan takes the CPU the loop leaves. With the kernel's autogroups (a server started in its
# own session) this shifts CPU only among the server's own threads, not against other processes.
OFF_LOOP_NICENESS = 10


def yield_cpu_to_the_loop() -> None:
    """Lower the calling thread's CPU priority by OFF_LOOP_NICENESS (Linux; elsewhere nothing:
    setpriority there would lower the whole process)."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + OFF_LOOP_NICENESS))


class _OffLoopConnection(sqlite3.Connection):
    """A sqlite3 connection that lowers the priority of the thread opening it: aiosqlite opens
    each connection on the worker thread that then runs that connection's statements."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        yield_cpu_to_the_loop()


def _aiosqlite_creator(uri: str, busy_timeout_s: float) -> Callable[[], Any]:
    import aiosqlite

    async def create() -> aiosqlite.Connection:
        conn = await aiosqlite.connect(uri, uri=True, timeout=busy_timeout_s,
                                       check_same_thread=False, factory=_OffLoopConnection)
        await conn.execute("PRAGMA query_only = ON")
        return conn

    return create


def _sqlcipher_engine(path: Path, options: EngineOptions) -> AsyncEngine:
    key = os.environ.get(options.key_env)
    if not key:
        raise UnsupportedDatabase(
            f"{path.name} is opened as SQLCipher but the environment variable "
            f"{options.key_env} is not set")
    if not path.is_file():
        raise UnsupportedDatabase(f"No database file at {path}")
    _require("sqlcipher")
    from ._sqlcipher import WrongKeyError, connect_sqlcipher

    async def create() -> Any:
        try:
            return await connect_sqlcipher(str(path.resolve()), key, readonly=True)
        except WrongKeyError:
            # never chained: the driver's exception must not carry the key anywhere
            raise WrongKey(f"The key in {options.key_env} does not open {path.name}") from None

    return create_async_engine(
        "sqlite+aiosqlite://", async_creator=create, poolclass=AsyncAdaptedQueuePool, pool_size=options.pool_size,
        max_overflow=0, pool_timeout=options.pool_timeout_s)


def _postgres_engine(target: str, options: EngineOptions) -> tuple[AsyncEngine, str]:
    try:
        url = make_url(target)
    except ArgumentError as exc:
        raise UnsupportedDatabase("The database URL cannot be parsed") from exc
    if url.get_backend_name() != "postgresql":
        raise UnsupportedDatabase(
            f"Unsupported database URL scheme {url.drivername!r}: give a SQLite file path "
            "or a postgresql:// URL")
    _require("postgres")
    url = url.set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        url,
        pool_size=options.pool_size,
        max_overflow=0,
        pool_timeout=options.pool_timeout_s,
        pool_pre_ping=True,
        # Read-only at the server: even a role that may write cannot through us.
        connect_args={"server_settings": {
            "default_transaction_read_only": "on",
            "application_name": "landscape-graphql",
            **({} if options.statement_timeout_s is None
               else {"statement_timeout": f"{max(1, round(options.statement_timeout_s * 1000))}ms"}),
        }},
    )
    return engine, url.render_as_string(hide_password=True)


def _require(extra: str) -> None:
    try:
        require(extra)
    except MissingExtra as exc:
        raise UnsupportedDatabase(str(exc)) from None


def _install_sqlite_guards(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _guard(dbapi_conn: Any, _record: Any) -> None:
        # Belt and braces for connections not made by our creator (and SQLCipher's).
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()


async def open_landscape(target: str, options: EngineOptions | None = None) -> Landscape:
    """Open a Landscape read-only and detect its epoch; raise a `LandscapeError` if we cannot."""
    options = options or EngineOptions()
    if _is_url(target) and not target.startswith("sqlite"):
        engine, location = _postgres_engine(target, options)
        backend = "postgresql"
    else:
        path = Path(target.removeprefix("sqlite:///")) if target.startswith("sqlite") else Path(target)
        engine = _sqlcipher_engine(path, options) if options.sqlcipher else _sqlite_engine(path, options)
        _install_sqlite_guards(engine)
        location = str(path)
        backend = "sqlcipher" if options.sqlcipher else "sqlite"
    try:
        async with engine.connect() as conn:
            info = await detect_epoch(conn)
    except LandscapeError:
        await engine.dispose()
        raise
    except Exception as exc:
        await engine.dispose()
        original = getattr(exc, "orig", None) or exc
        if isinstance(original, sqlite3.DatabaseError) and "not a database" in str(original):
            raise UnsupportedDatabase(
                f"{Path(location).name} is not a SQLite database (or it is encrypted: "
                "pass --sqlcipher with the key in the environment)") from None
        translated = translate_db_error(exc)
        if translated is not exc:
            raise translated from None
        raise
    watched = None if backend == "postgresql" else Path(location).resolve()
    return Landscape(engine=engine, epoch_info=info, tables=tables_for(info.epoch, absent=info.absent_tables),
                     backend=backend, location=location, watch=_FileWatch(watched),
                     busy_timeout_ms=round(options.busy_timeout_s * 1000))


# Driver messages can carry SQL text and server paths, so none of them is passed on: each known
# fault becomes a fixed sentence with a code, and anything else stays an internal error.
def translate_db_error(exc: BaseException) -> BaseException:
    """The client-facing error for a database fault, or `exc` itself when it is not one."""
    if isinstance(exc, LandscapeError):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseBusy("All database connections are in use; try again shortly")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return QueryTimeout()
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailable("The database connection was lost; try again")
    message = str(original).lower()
    if isinstance(original, sqlite3.OperationalError | sqlite3.DatabaseError):
        if "locked" in message or "busy" in message:
            return DatabaseBusy("The database is locked by a writer; try again shortly")
        if "interrupted" in message:
            return QueryTimeout()
        if "malformed" in message or "not a database" in message:
            return DatabaseUnavailable("The database file is corrupt or not a SQLite database")
        if "unable to open" in message or "disk i/o" in message or "no such table" in message:
            return DatabaseUnavailable("The database file cannot be read")
        return exc
    name = type(original).__name__
    # SQLAlchemy's asyncpg adapter wraps the driver's exception (its class is then "Error"):
    # the driver's own is its cause. 57014 is query_canceled (a cancel or statement_timeout).
    driver = original.__cause__ if name == "Error" and original.__cause__ is not None else original
    if type(driver).__name__ == "QueryCanceledError" or getattr(driver, "sqlstate", None) == "57014":
        return QueryTimeout()
    if name in {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionRefusedError",
                "InterfaceError", "ConnectionFailureError", "AdminShutdownError",
                "InternalClientError", "TooManyConnectionsError"} or isinstance(original, OSError):
        return DatabaseUnavailable("The database server cannot be reached")
    return exc
