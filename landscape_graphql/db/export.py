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
from sqlalchemy import ColumnElement, Table, func, literal_column, select, tuple_
from sqlalchemy.sql import Select

from ..errors import BadArgument
from .tables import LandscapeTables


@dataclass(frozen=True, slots=True)
class RecordType:
    """One record type of an export: the table it is read from and how it is scoped to a run."""

    name: str
    table: Table

    def run_scope(self, tables: LandscapeTables) -> ColumnElement[Any]:
        t = self.table
        if "run_id" in t.c:
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


def record_types(tables: LandscapeTables) -> tuple[RecordType, ...]:
    """The record types of an epoch, in export order, named as ELSPETH names them."""
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


@dataclass(frozen=True, slots=True)
class ExportPage:
    records: list[tuple[str, dict[str, Any]]]  # (record type, column values as stored)
    end_cursor: ExportCursor | None
    has_next_page: bool


def _order_key(table: Table, dialect: str) -> list[ColumnElement[Any]]:
    if dialect == "sqlite":
        return [literal_column(f'"{table.name}".rowid')]
    return list(table.primary_key.columns)


def _page_statement(rtype: RecordType, tables: LandscapeTables, dialect: str, run_id: str,
                    after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
    key = _order_key(rtype.table, dialect)
    stmt = select(*key, rtype.table).where(rtype.run_scope(tables) == run_id)
    if after is not None:
        if len(after) != len(key):
            raise BadArgument("after", "is not a cursor of this connection")
        stmt = stmt.where(key[0] > after[0] if len(key) == 1 else tuple_(*key) > tuple_(*after))
    return stmt.order_by(*key).limit(limit)


async def export_page(db: Any, run_id: str, after: ExportCursor | None, size: int) -> ExportPage:
    """The next `size` records of the run after `after`; `db` is a DbSession."""
    tables: LandscapeTables = db.tables
    types = record_types(tables)
    index, key = (0, None) if after is None else (after.type_index, after.key)
    if not 0 <= index < len(types):
        raise BadArgument("after", "is not a cursor of this connection")
    records: list[tuple[str, dict[str, Any]]] = []
    last: ExportCursor | None = after
    while index < len(types):
        rtype = types[index]
        want = size - len(records)
        # One row more than the page needs tells whether another page follows.
        rows: Sequence[Any] = await db.all(
            _page_statement(rtype, tables, db.dialect, run_id, key, want + 1))
        width = len(_order_key(rtype.table, db.dialect))
        names = [str(column.name) for column in rtype.table.c]
        for row in rows[:want]:
            records.append((rtype.name, dict(zip(names, row[width:], strict=True))))
            last = ExportCursor(index, tuple(row[:width]))
        if len(rows) > want:
            return ExportPage(records, last, True)
        index, key = index + 1, None
    return ExportPage(records, last, False)


def json_value(value: Any) -> Any:
    """A stored value as JSON: times as ISO 8601 UTC (SQLite's naive times are UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return value


def json_record(record_type: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {"record_type": record_type}
    for name, value in values.items():
        out[name] = json_value(value)
    return out


def count_statement(rtype: RecordType, tables: LandscapeTables, run_id: str) -> Select[Any]:
    return select(func.count()).select_from(rtype.table).where(rtype.run_scope(tables) == run_id)
