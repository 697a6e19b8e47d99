"""Copy an SQLite Landscape (epoch 2 or 29) into an empty PostgreSQL database.

This is how the project gets PostgreSQL Landscapes of every fixture without ELSPETH: the
tables come from our own models (`tables_for(epoch).metadata`), the rows from the SQLite file,
converted to what ELSPETH itself writes on PostgreSQL: naive-UTC timestamp text becomes
`timestamp with time zone`, 0/1 in Boolean columns becomes a real boolean. Tables ELSPETH has
but we do not model are left out. Everything happens in one transaction, so a failed load
leaves the target as it was.

The epoch marker follows ELSPETH: epoch 29 keeps its `elspeth_schema_identity` row (a
modelled table, copied like the others); epoch 2 has no marker on PostgreSQL, and none is
invented, since a reader must recognise such a database by its columns.

    python -m landscape_graphql.db.pgload SQLITE_PATH POSTGRES_URL
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    Boolean,
    DateTime,
    DefaultClause,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql.elements import TextClause

from ..extras import MissingExtra, require
from .tables import EPOCH_29, OPTIONAL_TABLES, SUPPORTED_EPOCHS, tables_for

__all__ = ["LoadError", "LoadReport", "TableLoad", "WidenedColumn", "load_sqlite_into_postgres", "main", "sqlite_epoch"]

Converter = Callable[[Any], Any]


class LoadError(Exception):
    """The SQLite file cannot be loaded as it is (wrong epoch, unexpected value, bad URL...)."""


@dataclass(frozen=True, slots=True)
class TableLoad:
    name: str
    rows: int


@dataclass(frozen=True, slots=True)
class WidenedColumn:
    """A VARCHAR(n) column created without its limit because the source holds longer text."""

    table: str
    column: str
    declared_length: int
    longest: int


@dataclass(frozen=True, slots=True)
class LoadReport:
    epoch: int
    tables: tuple[TableLoad, ...]
    # Tables of the SQLite file that have no model here and so were not copied.
    skipped_tables: tuple[str, ...]
    widened_columns: tuple[WidenedColumn, ...]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def _open_sqlite(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise LoadError(f"No SQLite file at {path}")
    # mode=ro: the source is an audit record and is never written. The path is URI-quoted so
    # that '?' or '#' in a file name cannot add URI parameters.
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LoadError(f"{path.name} is not a readable SQLite database: {exc}") from exc
    return conn


def _epoch_of(conn: sqlite3.Connection, name: str) -> int:
    epoch = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if epoch not in SUPPORTED_EPOCHS:
        raise LoadError(
            f"{name} has PRAGMA user_version {epoch}; supported Landscape epochs are "
            f"{', '.join(map(str, SUPPORTED_EPOCHS))}")
    if epoch == EPOCH_29:
        try:
            rows = conn.execute("SELECT application_id, store_kind, schema_epoch "
                                "FROM elspeth_schema_identity").fetchall()
        except sqlite3.OperationalError as exc:
            raise LoadError(f"{name} says epoch 29 but has no elspeth_schema_identity table") from exc
        if rows != [("elspeth", "landscape", EPOCH_29)]:
            raise LoadError(f"{name}: elspeth_schema_identity does not say (elspeth, landscape, 29): {rows}")
    return epoch


def sqlite_epoch(path: str | os.PathLike[str]) -> int:
    """The Landscape epoch of an SQLite file (its `PRAGMA user_version`), checked."""
    conn = _open_sqlite(Path(path))
    try:
        return _epoch_of(conn, Path(path).name)
    finally:
        conn.close()


def _to_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO timestamp: {value!r}") from None
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    # ELSPETH writes naive UTC to SQLite; an explicit offset (never seen) is honoured.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_bool(value: Any) -> bool:
    # SQLite has no boolean: SQLAlchemy and ELSPETH store 0/1. Anything else is corrupt data,
    # and guessing (e.g. 'false' -> True) would falsify the copy.
    if value is True or value is False:
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a 0/1 boolean: {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"not an integer: {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"not a number: {value!r}")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL; refuse rather than silently truncate.
            raise ValueError("text contains a NUL character, which PostgreSQL cannot store")
        return value
    raise ValueError(f"not text: {value!r}")


def _converter(column_type: Any) -> Converter:
    # Order matters: Text is a String, Boolean is not an Integer in SQLAlchemy.
    if isinstance(column_type, DateTime):
        return _to_timestamp
    if isinstance(column_type, Boolean):
        return _to_bool
    if isinstance(column_type, Integer):
        return _to_int
    if isinstance(column_type, Float):
        return _to_float
    if isinstance(column_type, String | Text):
        return _to_str
    raise LoadError(f"no conversion for column type {column_type!r}")


def _overlong(conn: sqlite3.Connection, table: Table) -> list[WidenedColumn]:
    found: list[WidenedColumn] = []
    for column in table.columns:
        limit = getattr(column.type, "length", None)
        if isinstance(column.type, String) and limit:
            # length() counts characters, as PostgreSQL's varchar(n) does.
            longest = conn.execute(
                f'SELECT max(length("{column.name}")) FROM "{table.name}" '
                f"WHERE typeof(\"{column.name}\") = 'text'").fetchone()[0]
            if longest is not None and longest > limit:
                found.append(WidenedColumn(table.name, column.name, limit, int(longest)))
    return found


def _postgres_metadata(tables: Sequence[Table], widen: list[WidenedColumn]) -> MetaData:
    """A copy of the models that PostgreSQL accepts with this source's data in it.

    Two differences from SQLite must be bridged, and the shared models are not touched:
    a Boolean server default written `text("0")` (SQLite takes it; PostgreSQL refuses an
    integer default for a boolean) becomes `false()`/`true()`; and a VARCHAR(n) whose data is
    longer than n (SQLite never enforces n, and ELSPETH's own data exceeds some of its
    declared lengths) loses its limit, as listed in `widen`, rather than being truncated.
    """
    copy = MetaData()
    for table in tables:
        table.to_metadata(copy)
    for table in copy.tables.values():
        for column in table.columns:
            default = column.server_default
            if isinstance(column.type, Boolean) and default is not None:
                arg = getattr(default, "arg", None)
                if isinstance(arg, TextClause) and arg.text.strip() in ("0", "1"):
                    DefaultClause(false() if arg.text.strip() == "0" else true())._set_parent(column)
    for w in widen:
        copy.tables[w.table].c[w.column].type = String()
    return copy


def _check_columns(conn: sqlite3.Connection, table: Table) -> None:
    present = {str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table.name}")')}
    if not present:
        raise LoadError(f"the SQLite file has no table {table.name}")
    missing = [c.name for c in table.columns if c.name not in present]
    if missing:
        raise LoadError(f"{table.name} lacks the column(s) {', '.join(missing)} of its epoch's model")


_BATCH = 2000


def _rows(conn: sqlite3.Connection, table: Table) -> Iterator[tuple[Any, ...]]:
    """The table's rows converted to PostgreSQL values, streamed in batches (never all in memory)."""
    names = [c.name for c in table.columns]
    converters = [_converter(c.type) for c in table.columns]
    select = "SELECT rowid, " + ", ".join(f'"{n}"' for n in names) + f' FROM "{table.name}"'
    try:
        cursor = conn.execute(select)
    except sqlite3.OperationalError:
        # WITHOUT ROWID tables have no rowid; it only serves error messages.
        cursor = conn.execute("SELECT NULL, " + select.removeprefix("SELECT rowid, "))
    while batch := cursor.fetchmany(_BATCH):
        for rowid, *values in batch:
            try:
                yield tuple(None if v is None else conv(v) for conv, v in zip(converters, values, strict=True))
            except ValueError as exc:
                bad = next(n for n, conv, v in zip(names, converters, values, strict=True)
                           if v is not None and _fails(conv, v))
                raise LoadError(f"{table.name}.{bad} (rowid {rowid}): {exc}") from None


def _fails(conv: Converter, value: Any) -> bool:
    try:
        conv(value)
    except ValueError:
        return True
    return False


def _postgres_url(target: str) -> URL:
    try:
        url = make_url(target)
    except ArgumentError:
        raise LoadError("the PostgreSQL URL cannot be parsed") from None
    if url.get_backend_name() != "postgresql":
        raise LoadError(f"not a PostgreSQL URL (scheme {url.drivername!r})")
    try:
        require("postgres")
    except MissingExtra as exc:
        raise LoadError(str(exc)) from None
    return url.set(drivername="postgresql+asyncpg")


async def load_sqlite_into_postgres(sqlite_path: str | os.PathLike[str], postgres_url: str, *,
                                    widen_overlong: bool = True) -> LoadReport:
    """Create the epoch's tables in an empty PostgreSQL database and copy every modelled table.

    `postgres_url` may be `postgresql://…` or `postgresql+asyncpg://…`. Rows are streamed, so a
    large Landscape does not have to fit in memory. Text longer than its column's declared
    VARCHAR(n) is kept whole by creating that column without the limit (see
    `LoadReport.widened_columns`), or refused with `widen_overlong=False`. Raises `LoadError`
    for a source that does not fit its epoch's models; database errors (e.g. the tables
    already exist) propagate from the driver. On any error nothing is committed.
    """
    started = time.perf_counter()
    path = Path(sqlite_path)
    url = _postgres_url(postgres_url)
    source = _open_sqlite(path)
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    try:
        epoch = _epoch_of(source, path.name)
        present = {str(r[0]) for r in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        models = tables_for(epoch, ddl=True)
        skipped = tuple(sorted(present - set(models.metadata.tables)))
        # An optional table the source lacks is not created in the target either: the copy
        # reads as its source does (no source contracts), not as a Landscape with an empty table.
        absent = OPTIONAL_TABLES - present
        tables = [t for t in models.metadata.sorted_tables if t.name not in absent]
        for table in tables:
            _check_columns(source, table)
        widened = [w for table in tables for w in _overlong(source, table)]
        if widened and not widen_overlong:
            raise LoadError("text longer than its column's declared length: " + ", ".join(
                f"{w.table}.{w.column} ({w.longest} > {w.declared_length})" for w in widened))
        metadata = _postgres_metadata(tables, widened)

        loads: list[TableLoad] = []
        # One transaction: a bad value met halfway (LoadError from the row stream) or a driver
        # error rolls back the tables already created and filled.
        async with engine.begin() as conn:
            # checkfirst=False: existing tables must fail the load, not be appended to.
            await conn.run_sync(metadata.create_all, checkfirst=False)
            raw = (await conn.get_raw_connection()).driver_connection
            if raw is None:
                raise LoadError("the asyncpg connection behind the engine is gone")
            for table in metadata.sorted_tables:
                # COPY is an order of magnitude faster than INSERTs, and it runs inside
                # SQLAlchemy's transaction on the same asyncpg connection. Reading SQLite
                # blocks the event loop between batches; a loader has nothing else to do.
                status = await raw.copy_records_to_table(
                    table.name, records=_rows(source, table), columns=[c.name for c in table.columns])
                loads.append(TableLoad(table.name, int(str(status).rsplit(" ", 1)[-1])))
        async with engine.connect() as conn:
            # Fresh statistics, or the planner guesses badly on the just-filled tables.
            await conn.exec_driver_sql("ANALYZE")
    finally:
        source.close()
        await engine.dispose()
    return LoadReport(epoch=epoch, tables=tuple(loads), skipped_tables=skipped,
                      widened_columns=tuple(widened), seconds=time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m landscape_graphql.db.pgload",
        description="Copy an SQLite ELSPETH Landscape (epoch 2 or 29) into an empty PostgreSQL database.")
    parser.add_argument("sqlite_path", help="the SQLite Landscape file (opened read-only)")
    parser.add_argument("postgres_url", help="postgresql://USER:PASSWORD@HOST:PORT/DBNAME of an empty database")
    args = parser.parse_args(argv)
    try:
        report = asyncio.run(load_sqlite_into_postgres(args.sqlite_path, args.postgres_url))
    except LoadError as exc:
        print(f"pgload: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Driver errors: print the class and message but never the URL (it holds a password).
        print(f"pgload: load failed, nothing was committed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    target = _postgres_url(args.postgres_url).render_as_string(hide_password=True)
    print(f"Loaded epoch {report.epoch} Landscape {args.sqlite_path} into {target}: "
          f"{report.rows} rows in {len(report.tables)} tables, {report.seconds:.2f}s")
    for load in report.tables:
        print(f"  {load.name}: {load.rows}")
    for w in report.widened_columns:
        print(f"  widened {w.table}.{w.column}: VARCHAR({w.declared_length}) holds text of "
              f"{w.longest} characters in the source, so it was created without a limit")
    if report.skipped_tables:
        print(f"  not modelled, not copied: {', '.join(report.skipped_tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
