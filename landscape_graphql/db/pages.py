"""Keyset pagination of every list that grows with a run.

A page is "rows after this sort key", never "rows after offset N": a pipeline appending while
someone pages through its run can neither make a record repeat nor make one be skipped. Sort
keys end with a unique column, so they are total orders. Cursors are opaque to clients but
name their connection, so one connection's cursor is refused by another.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, true
from sqlalchemy.sql.elements import KeyedColumnElement

from ..errors import BadArgument
from . import records as R
from .enums import (
    PATH_TO_ROW,
    ROW_TO_TERMINAL,
    CallStatus,
    CallType,
    NodeStateStatus,
    RowOutcome,
    RunStatus,
    TerminalPath,
    TerminalResult,
)
from .session import DbSession

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count_statement: Select[Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SortKey:
    column: KeyedColumnElement[Any]
    descending: bool = False


def encode_cursor(connection: str, values: Sequence[Any]) -> str:
    payload = [connection, *({"$dt": v.isoformat()} if isinstance(v, datetime) else v for v in values)]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(connection: str, cursor: str, argument: str, width: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadArgument(argument, "is not a cursor returned by this API") from None
    if not isinstance(payload, list) or len(payload) != width + 1 or payload[0] != connection:
        raise BadArgument(argument, f"is not a cursor of the {connection} connection")
    values: list[Any] = []
    for v in payload[1:]:
        if isinstance(v, dict) and set(v) == {"$dt"} and isinstance(v["$dt"], str):
            try:
                values.append(datetime.fromisoformat(v["$dt"]))
            except ValueError:
                raise BadArgument(argument, "is not a cursor returned by this API") from None
        elif v is None or isinstance(v, str | int | float):
            values.append(v)
        else:
            raise BadArgument(argument, "is not a cursor returned by this API")
    return values


def _after(keys: Sequence[SortKey], values: Sequence[Any], reverse: bool) -> ColumnElement[bool]:
    """Rows strictly after `values` in the sort order (before it when `reverse`)."""
    clauses = []
    for i, key in enumerate(keys):
        forward = key.descending == reverse
        step = key.column > values[i] if forward else key.column < values[i]
        equal = [keys[j].column == values[j] for j in range(i)]
        clauses.append(and_(*equal, step))
    return or_(*clauses)


async def keyset_page(
    db: DbSession,
    connection: str,
    statement: Select[Any],
    keys: Sequence[SortKey],
    request: PageRequest,
    size: int,
    mapper: Callable[[Any], T],
) -> Page[T]:
    """One page of `statement` in `keys` order; `size` is the validated page size."""
    if request.first is not None and request.last is not None:
        raise BadArgument("last", "cannot be combined with first")
    backward = request.last is not None or (request.before is not None and request.first is None)
    count_statement = select(func.count()).select_from(statement.order_by(None).subquery())
    stmt = statement
    if request.after is not None:
        stmt = stmt.where(_after(keys, decode_cursor(connection, request.after, "after", len(keys)), False))
    if request.before is not None:
        stmt = stmt.where(_after(keys, decode_cursor(connection, request.before, "before", len(keys)), True))
    order = [(k.column.desc() if k.descending != backward else k.column.asc()) for k in keys]
    rows = list(await db.all(stmt.order_by(*order).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    items = [mapper(r) for r in rows]
    cursors = [encode_cursor(connection, [getattr(r, k.column.key) for k in keys]) for r in rows]
    return Page(
        items=items, cursors=cursors,
        has_next_page=more if not backward else request.before is not None,
        has_previous_page=more if backward else request.after is not None,
        count_statement=count_statement,
    )


async def count(db: DbSession, page: Page[Any]) -> int:
    assert page.count_statement is not None
    return int((await db.all(page.count_statement))[0][0])


# -- connections -------------------------------------------------------------------------


async def runs_page(db: DbSession, request: PageRequest, size: int, *,
                    statuses: Sequence[RunStatus] | None = None,
                    started_after: datetime | None = None,
                    started_before: datetime | None = None,
                    allowed_runs: frozenset[str] | None = None) -> Page[R.RunRecord]:
    t = db.tables.runs
    stmt = select(t)
    if allowed_runs is not None:
        # A scoped caller's pages and counts only ever see its own runs.
        stmt = stmt.where(t.c.run_id.in_(sorted(allowed_runs)))
    if statuses:
        stmt = stmt.where(t.c.status.in_([s.value for s in statuses]))
    if started_after is not None:
        stmt = stmt.where(t.c.started_at >= started_after)
    if started_before is not None:
        stmt = stmt.where(t.c.started_at < started_before)
    keys = [SortKey(t.c.started_at, descending=True), SortKey(t.c.run_id, descending=True)]
    return await keyset_page(db, "runs", stmt, keys, request, size,
                             lambda r: R.run_from_row(r, db.epoch))


async def rows_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                    index_from: int | None = None, index_to: int | None = None) -> Page[R.RowRecord]:
    t = db.tables.rows
    # epoch 29 orders by ingest_sequence (row_index repeats across sources); epoch 2 by row_index.
    order_col = t.c.ingest_sequence if db.epoch >= 29 else t.c.row_index
    stmt = select(t).where(t.c.run_id == run_id)
    if index_from is not None:
        stmt = stmt.where(order_col >= index_from)
    if index_to is not None:
        stmt = stmt.where(order_col <= index_to)
    return await keyset_page(db, "rows", stmt, [SortKey(order_col), SortKey(t.c.row_id)], request,
                             size, lambda r: R.row_from_row(r, db.epoch))


@dataclass(frozen=True, slots=True)
class TokenFilter:
    row_outcomes: Sequence[RowOutcome] = ()
    results: Sequence[TerminalResult] = ()
    paths: Sequence[TerminalPath] = ()
    sink_name: str | None = None
    branch_name: str | None = None
    row_id: str | None = None


def _outcome_matches(db: DbSession, flt: TokenFilter) -> ColumnElement[bool] | None:
    """A condition on `token_outcomes` for the filter's outcome parts, in the stored epoch's terms."""
    o, te = db.tables.token_outcomes, db.tables.transform_errors
    conds: list[ColumnElement[bool]] = []
    if db.epoch >= 29:
        if flt.row_outcomes:
            paths = [p.value for p, row in PATH_TO_ROW.items() if row in flt.row_outcomes]
            conds.append(o.c.path.in_(paths) if paths else false())
        if flt.results:
            conds.append(o.c.outcome.in_([r.value for r in flt.results]))
        if flt.paths:
            conds.append(o.c.path.in_([p.value for p in flt.paths]))
    else:
        if flt.row_outcomes:
            conds.append(o.c.outcome.in_([r.value for r in flt.row_outcomes]))
        on_error = exists().where(te.c.token_id == o.c.token_id, te.c.destination == o.c.sink_name)
        any_error = exists().where(te.c.token_id == o.c.token_id)
        wanted = set(flt.paths)
        results = set(flt.results)
        if wanted or results:
            # Each epoch-2 outcome stands for a known (result, path), except ROUTED (decided by
            # the token's transform errors) and DIVERTED (by its sink); mirror records.py.
            options: list[ColumnElement[bool]] = []
            for row, mapped in ROW_TO_TERMINAL.items():
                if mapped is not None:
                    result, path = mapped
                    if (not wanted or path in wanted) and (not results or result in results):
                        options.append(o.c.outcome == row.value)
            routed = o.c.outcome == RowOutcome.ROUTED.value
            if (not wanted or TerminalPath.GATE_ROUTED in wanted) and (
                    not results or TerminalResult.SUCCESS in results):
                options.append(and_(routed, ~any_error))
            if (not wanted or TerminalPath.ON_ERROR_ROUTED in wanted) and (
                    not results or TerminalResult.FAILURE in results):
                options.append(and_(routed, on_error))
            diverted = o.c.outcome == RowOutcome.DIVERTED.value
            if (not wanted or TerminalPath.SINK_DISCARDED in wanted) and (
                    not results or TerminalResult.FAILURE in results):
                options.append(and_(diverted, o.c.sink_name == "__discard__"))
            if (not wanted or TerminalPath.SINK_FALLBACK_TO_FAILSINK in wanted) and (
                    not results or TerminalResult.TRANSIENT in results):
                options.append(and_(diverted, o.c.sink_name != "__discard__"))
            conds.append(or_(*options) if options else false())
    if flt.sink_name is not None:
        conds.append(o.c.sink_name == flt.sink_name)
    return and_(*conds) if conds else None


async def tokens_page(db: DbSession, run_id: str, request: PageRequest, size: int,
                      flt: TokenFilter) -> Page[R.TokenRecord]:
    t, o = db.tables.tokens, db.tables.token_outcomes
    stmt = select(t).where(t.c.run_id == run_id)
    if flt.branch_name is not None:
        stmt = stmt.where(t.c.branch_name == flt.branch_name)
    if flt.row_id is not None:
        stmt = stmt.where(t.c.row_id == flt.row_id)
    cond = _outcome_matches(db, flt)
    if cond is not None:
        terminal_col = o.c.completed if db.epoch >= 29 else o.c.is_terminal
        other = o.alias("o_terminal")
        other_terminal = other.c.completed if db.epoch >= 29 else other.c.is_terminal
        # Filter on the token's current outcome: its terminal one, or (none yet) any buffered.
        current = or_(terminal_col == 1, ~exists().where(other.c.token_id == o.c.token_id,
                                                         other_terminal == 1))
        stmt = stmt.where(exists().where(o.c.token_id == t.c.token_id, current, cond))
    return await keyset_page(db, "tokens", stmt, [SortKey(t.c.token_id)], request, size,
                             lambda r: R.token_from_row(r, db.epoch))


async def node_states_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                           node_id: str | None = None,
                           statuses: Sequence[NodeStateStatus] = ()) -> Page[R.NodeStateRecord]:
    s = db.tables.node_states
    stmt = select(s).where(s.c.run_id == run_id)
    if node_id is not None:
        stmt = stmt.where(s.c.node_id == node_id)
    if statuses:
        stmt = stmt.where(s.c.status.in_([x.value for x in statuses]))
    return await keyset_page(db, "nodeStates", stmt, [SortKey(s.c.state_id)], request, size,
                             lambda r: R.node_state_from_row(r, db.epoch))


async def calls_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                     call_types: Sequence[CallType] = (),
                     statuses: Sequence[CallStatus] = ()) -> Page[R.CallRecord]:
    c, s, op = db.tables.calls, db.tables.node_states, db.tables.operations
    # calls carry no run_id: a call belongs to a run through its state or its operation.
    in_run = or_(
        exists().where(s.c.state_id == c.c.state_id, s.c.run_id == run_id),
        exists().where(op.c.operation_id == c.c.operation_id, op.c.run_id == run_id),
    )
    stmt = select(c).where(in_run)
    if call_types:
        stmt = stmt.where(c.c.call_type.in_([x.value for x in call_types]))
    if statuses:
        stmt = stmt.where(c.c.status.in_([x.value for x in statuses]))
    return await keyset_page(db, "calls", stmt, [SortKey(c.c.call_id)], request, size,
                             lambda r: R.call_from_row(r, db.epoch))


async def validation_errors_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                                 node_id: str | None = None) -> Page[R.ValidationErrorRecord]:
    v = db.tables.validation_errors
    stmt = select(v).where(v.c.run_id == run_id, true() if node_id is None else v.c.node_id == node_id)
    return await keyset_page(db, "validationErrors", stmt, [SortKey(v.c.error_id)], request, size,
                             lambda r: R.validation_error_from_row(r, db.epoch))


async def transform_errors_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                                node_id: str | None = None) -> Page[R.TransformErrorRecord]:
    e = db.tables.transform_errors
    stmt = select(e).where(e.c.run_id == run_id,
                           true() if node_id is None else e.c.transform_id == node_id)
    return await keyset_page(db, "transformErrors", stmt, [SortKey(e.c.error_id)], request, size,
                             lambda r: R.transform_error_from_row(r, db.epoch))


async def operations_page(db: DbSession, run_id: str, request: PageRequest,
                          size: int) -> Page[R.OperationRecord]:
    t = db.tables.operations
    stmt = select(t).where(t.c.run_id == run_id)
    return await keyset_page(db, "operations", stmt, [SortKey(t.c.operation_id)], request, size,
                             lambda r: R.operation_from_row(r, db.epoch))


async def batches_page(db: DbSession, run_id: str, request: PageRequest,
                       size: int) -> Page[R.BatchRecord]:
    t = db.tables.batches
    stmt = select(t).where(t.c.run_id == run_id)
    return await keyset_page(db, "batches", stmt, [SortKey(t.c.batch_id)], request, size,
                             lambda r: R.batch_from_row(r, db.epoch))


async def artifacts_page(db: DbSession, run_id: str, request: PageRequest,
                         size: int) -> Page[R.ArtifactRecord]:
    t = db.tables.artifacts
    stmt = select(t).where(t.c.run_id == run_id)
    return await keyset_page(db, "artifacts", stmt, [SortKey(t.c.artifact_id)], request, size,
                             lambda r: R.artifact_from_row(r, db.epoch))
