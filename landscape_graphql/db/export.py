"""Every record of a run, table by table, in pages of constant size: the export's access order.

A run export must stream at the speed of its tables, so it never walks the token graph: each
record type is one table read in its storage order, with keyset pages.

- SQLite: `rowid` order (insertion order; ELSPETH's tables all have rowids). `rowid > ?`
  continues a page from the table b-tree itself, whatever index the run filter uses.
- PostgreSQL: primary-key order (`(pk...) > (...)` row comparison on the primary key's index).
  PostgreSQL has no stable physical order (ctid changes on VACUUM FULL), the primary key is
  the equivalent stable order, so the same database always exports in the same order.

Tables without a `run_id` column (epoch 2's token_parents, routing_events, batch_members, and
calls in both epochs) are scoped by a correlated lookup of their parent's run on its primary
key, so the table is still read in its own order. One page is at most one statement per
record type whatever its size: constant statements per page and rows held per page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.sql import Select

from ..errors import BadArgument
from .tables import LandscapeTables


def _run_index(table: Table) -> bool:
    """Whether rows of one run can be read in rowid order through an index: (run_id) alone
    (SQLite appends the rowid to every index), or run_id as the primary key."""
    if [c.name for c in table.primary_key.columns] == ["run_id"]:
        return True
    return any([c.name for c in index.columns] == ["run_id"] for index in table.indexes)


@dataclass(frozen=True, slots=True)
class RecordType:
    """One record type of an export: the table it is read from and how it is scoped to a run."""

    name: str
    table: Table

    def run_scope(self, tables: LandscapeTables, dialect: str = "") -> ColumnElement[Any]:
        t = self.table
        if "run_id" in t.c:
            if dialect == "sqlite" and not _run_index(t):
                # An index that starts with run_id but goes on (run_id, token_id, …) would make
                # SQLite sort the run's rows for every page; `+run_id` keeps it on the rowid.
                return literal_column(f'+"{t.name}".run_id')
            return t.c.run_id
        if t is tables.calls:
            ns, op = tables.node_states, tables.operations
            return func.coalesce(
                select(ns.c.run_id).where(ns.c.state_id == t.c.state_id).scalar_subquery(),
                select(op.c.run_id).where(op.c.operation_id == t.c.operation_id).scalar_subquery())
        parent, key = {
            "token_parents": (tables.tokens, "token_id"),
            "routing_events": (tables.node_states, "state_id"),
            "batch_members": (tables.batches, "batch_id"),
            "batch_outputs": (tables.batches, "batch_id"),
        }[t.name]
        return select(parent.c.run_id).where(parent.c[key] == t.c[key]).scalar_subquery()


_TYPES: dict[int, tuple[RecordType, ...]] = {}


def record_types(tables: LandscapeTables) -> tuple[RecordType, ...]:
    """The record types of an epoch, in export order, named as ELSPETH names them."""
    found = _TYPES.get(id(tables))
    if found is None:
        found = _TYPES[id(tables)] = _record_types(tables)
    return found


def _record_types(tables: LandscapeTables) -> tuple[RecordType, ...]:
    t = tables
    ordered: list[tuple[str, Table | None]] = [
        ("run", t.runs), ("node", t.nodes), ("edge", t.edges), ("operation", t.operations),
        ("call", t.calls), ("row", t.rows), ("token", t.tokens), ("token_parent", t.token_parents),
        ("token_outcome", t.token_outcomes), ("node_state", t.node_states),
        ("routing_event", t.routing_events), ("batch", t.batches), ("batch_member", t.batch_members),
        ("batch_output", t.batch_outputs), ("artifact", t.artifacts),
        ("validation_error", t.validation_errors), ("transform_error", t.transform_errors),
        ("preflight_result", t.preflight_results), ("checkpoint", t.checkpoints),
        ("sink_effect", t.sink_effects), ("sink_effect_member", t.sink_effect_members),
        ("coalesce_effect", t.coalesce_effects), ("coalesce_effect_member", t.coalesce_effect_members),
        ("coalesce_branch_loss", t.coalesce_branch_losses), ("scheduler_event", t.scheduler_events),
    ]
    return tuple(RecordType(name, table) for name, table in ordered if table is not None)


@dataclass(frozen=True, slots=True)
class ExportCursor:
    """Where a page ends: the record type's position and the last key read in it."""

    type_index: int
    key: tuple[Any, ...]

    def encode(self) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(["x", self.type_index, *self.key])).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ExportCursor:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise BadArgument("after", "is not a cursor of this connection") from None
        if (not isinstance(data, list) or len(data) < 3 or data[0] != "x" or not isinstance(data[1], int)
                or not all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in data[2:])):
            raise BadArgument("after", "is not a cursor of this connection")
        return cls(data[1], tuple(data[2:]))


def _order_key(table: Table, dialect: str) -> list[ColumnElement[Any]]:
    if dialect == "sqlite":
        return [literal_column(f'"{table.name}".rowid')]
    return list(table.primary_key.columns)


def _page_statement(rtype: RecordType, tables: LandscapeTables, dialect: str, continued: bool) -> Select[Any]:
    key = _order_key(rtype.table, dialect)
    stmt = select(*key, rtype.table).where(rtype.run_scope(tables, dialect) == bindparam("run_id"))
    if continued:
        after: list[Any] = [bindparam(f"after_{i}") for i in range(len(key))]
        stmt = stmt.where(key[0] > after[0] if len(key) == 1 else tuple_(*key) > tuple_(*after))
    return stmt.order_by(*key).limit(bindparam("limit"))


_SAFE = 2**53


@dataclass(frozen=True, slots=True)
class _Layout:
    """How a raw row of a record type's page statement becomes its values."""

    width: int  # order-key columns before the table's
    names: list[str]
    times: list[int]  # positions of timestamp columns (SQLite returns their text)
    flags: list[int]  # positions of boolean columns (SQLite returns 0/1)
    floats: list[int]  # positions of float columns
    keys: tuple[str, ...]  # record_type, then the names


_LAYOUTS: dict[tuple[int, str], _Layout] = {}


def _layout(rtype: RecordType, dialect: str) -> _Layout:
    found = _LAYOUTS.get((id(rtype.table), dialect))
    if found is None:
        found = _LAYOUTS[(id(rtype.table), dialect)] = _new_layout(rtype, dialect)
    return found


def _new_layout(rtype: RecordType, dialect: str) -> _Layout:
    columns = list(rtype.table.c)
    names = [str(c.name) for c in columns]
    return _Layout(len(_order_key(rtype.table, dialect)), names,
                   [i for i, c in enumerate(columns) if isinstance(c.type, DateTime)],
                   [i for i, c in enumerate(columns) if isinstance(c.type, Boolean)],
                   [i for i, c in enumerate(columns) if isinstance(c.type, Float)],
                   ("record_type", *names))


def _values(layout: _Layout, row: Sequence[Any]) -> dict[str, Any]:
    values = list(row[layout.width:])
    for i in layout.times:
        v = values[i]
        if type(v) is str:
            # SQLAlchemy's own reading of SQLite's text, at C speed
            values[i] = datetime.fromisoformat(v)
    for i in layout.flags:
        if values[i] is not None:
            values[i] = bool(values[i])
    return dict(zip(layout.names, values, strict=True))


def _iso_utc(value: Any) -> Any:
    if type(value) is str:
        # SQLite's naive UTC text, as SQLAlchemy writes it ("YYYY-MM-DD HH:MM:SS.ffffff"),
        # turned into what isoformat() of the parsed value gives, without parsing it.
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            head = value[:10] + "T" + value[11:19]
            return head + "+00:00" if value.endswith(".000000") else head + value[19:] + "+00:00"
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat() + "+00:00"
        return value.astimezone(UTC).isoformat()
    return value


def _iso_column(column: Sequence[Any]) -> list[Any]:
    # `_iso_utc` of each value, SQLite's usual text form done inline: a run has millions (in
    # SQLite itself, substr and concatenation cost more than this).
    return [(v[:10] + "T" + v[11:19] + ("+00:00" if v.endswith(".000000") else v[19:] + "+00:00"))
            if type(v) is str and len(v) == 26 and v[10] == " " and v[19] == "."
            else (None if v is None else _iso_utc(v)) for v in column]


def _integral(column: Sequence[Any]) -> list[Any]:
    # An integral float is the same JSON number as the integer, which RFC 8785 prints.
    return [int(v) if type(v) is float and v.is_integer() and -_SAFE < v < _SAFE else v for v in column]


@dataclass(frozen=True, slots=True)
class ExportSegment:
    """The rows one record type gives a page, as read (order-key columns first)."""

    record_type: str
    layout: _Layout
    rows: Sequence[Sequence[Any]]

    @property
    def keys(self) -> tuple[str, ...]:
        """The record's keys: record_type, then every stored column."""
        return self.layout.keys

    def stored(self) -> list[dict[str, Any]]:
        """Each record's column values as stored."""
        return [_values(self.layout, row) for row in self.rows]

    def json_columns(self) -> list[Sequence[Any]]:
        """The records as JSON values, column by column in `keys` order: times ISO 8601 UTC
        (SQLite's naive times are UTC), flags booleans, integral floats integers.

        Column by column, so the per-record work is C's (transposing, building dicts) and
        Python touches only the columns that need converting."""
        layout, n = self.layout, len(self.rows)
        if not n:
            return [[] for _ in layout.keys]
        columns: list[Sequence[Any]] = []
        columns += zip(*self.rows, strict=True)
        del columns[:layout.width]
        for i in layout.times:
            columns[i] = _iso_column(columns[i])
        for i in layout.flags:
            columns[i] = [None if v is None else bool(v) for v in columns[i]]
        for i in layout.floats:
            columns[i] = _integral(columns[i])
        return [[self.record_type] * n, *columns]


@dataclass(frozen=True, slots=True)
class ExportPage:
    segments: list[ExportSegment]
    end_cursor: ExportCursor | None
    has_next_page: bool

    def __len__(self) -> int:
        return sum(len(s.rows) for s in self.segments)

    @property
    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """(record type, column values as stored) of each record."""
        return [(s.record_type, values) for s in self.segments for values in s.stored()]


async def export_page(db: Any, run_id: str, after: ExportCursor | None, size: int) -> ExportPage:
    """The next `size` records of the run after `after`; `db` is a DbSession."""
    from ._statements import prepared
    tables: LandscapeTables = db.tables
    types = record_types(tables)
    index, key = (0, None) if after is None else (after.type_index, after.key)
    if not 0 <= index < len(types):
        raise BadArgument("after", "is not a cursor of this connection")
    segments: list[ExportSegment] = []
    count = 0
    last: ExportCursor | None = after
    while index < len(types):
        rtype = types[index]
        layout = _layout(rtype, db.dialect)
        want = size - count
        params: dict[str, Any] = {"run_id": run_id, "limit": want + 1}
        if key is not None:
            if len(key) != layout.width:
                raise BadArgument("after", "is not a cursor of this connection")
            params.update({f"after_{i}": v for i, v in enumerate(key)})
        names = ["run_id", "limit", *(f"after_{i}" for i in range(layout.width if key is not None else 0))]
        continued = key is not None

        def build(r: RecordType = rtype, c: bool = continued) -> Select[Any]:
            return _page_statement(r, tables, db.dialect, c)

        statement = prepared(db, ("export", rtype.name, continued), build, names)
        # One row more than the page needs tells whether another page follows.
        rows: Sequence[Any] = await db.fetch(statement, params)
        taken = rows[:want]
        if taken:
            segments.append(ExportSegment(rtype.name, layout, taken))
            count += len(taken)
            last = ExportCursor(index, tuple(taken[-1][:layout.width]))
        if len(rows) > want:
            return ExportPage(segments, last, True)
        index, key = index + 1, None
    return ExportPage(segments, last, False)


def json_value(value: Any) -> Any:
    """A stored value as JSON: times as ISO 8601 UTC (SQLite's naive times are UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat() + "+00:00"
        return value.astimezone(UTC).isoformat()
    return value
