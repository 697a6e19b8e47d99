"""Keyset pagination of every list that grows with a run.

A page is "rows after this sort key", never "rows after offset N": a pipeline appending while
someone pages through its run can neither make a record repeat nor make one be skipped. Sort
keys end with a unique column, so they are total orders. Cursors are opaque to clients but
name their connection, so one connection's cursor is refused by another.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from ..errors import BadArgument
from . import records as R
from ._statements import prepared, record_columns
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
from .session import DbSession, Prepared

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


class Cursors(Sequence[str]):
    """A page's cursors, each encoded when first read.

    An export asks only for the page's end cursor; encoding all 500 would be a third of a
    millisecond per page for nothing.
    """

    __slots__ = ("_connection", "_encoded", "_values")

    def __init__(self, connection: str, values: list[list[Any]]) -> None:
        self._connection = connection
        self._values = values
        self._encoded: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._values)))]
        if index < 0:
            index += len(self._values)
        if not 0 <= index < len(self._values):
            raise IndexError(index)
        found = self._encoded.get(index)
        if found is None:
            found = self._encoded[index] = encode_cursor(self._connection, self._values[index])
        return found

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self._values)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __hash__(self) -> int:  # pragma: no cover - pages are not hashed
        raise TypeError("unhashable type: 'Cursors'")

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: Sequence[str]
    has_next_page: bool
    has_previous_page: bool
    count_statement: Select[Any] | None = field(default=None, repr=False)
    # The prepared path's count: the statement and its values (see `_prepared_page`).
    count_prepared: tuple[Prepared, dict[str, Any]] | None = field(default=None, repr=False)


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
    if page.count_prepared is not None:
        statement, values = page.count_prepared
        return int((await db.fetch(statement, values))[0][0])
    assert page.count_statement is not None
    return int((await db.all(page.count_statement))[0][0])


# -- the prepared path -------------------------------------------------------------------
#
# The connections a client pages through a whole run with are compiled once per shape (which
# filters, which direction, which cursors) and run with their values as parameters: building
# and compiling the Core statement each page would cost more than the page's SQL. Filters that
# bind lists (statuses, outcome views) keep the general `keyset_page` above.

async def _prepared_page(
    db: DbSession,
    connection: str,
    cls: type[T],
    base: Callable[[], tuple[Select[Any], Sequence[SortKey]]],
    filters: dict[str, Any],
    request: PageRequest,
    size: int,
) -> Page[T]:
    """`keyset_page` for a `base` statement selecting `records.COLUMNS[cls]` whose filters are
    bind parameters named by `filters` (only those present), run prepared."""
    if request.first is not None and request.last is not None:
        raise BadArgument("last", "cannot be combined with first")
    backward = request.last is not None or (request.before is not None and request.first is None)
    _, keys = base()
    width = len(keys)
    values: dict[str, Any] = dict(filters)
    if request.after is not None:
        values.update({f"after{i}": v for i, v in enumerate(
            decode_cursor(connection, request.after, "after", width))})
    if request.before is not None:
        values.update({f"before{i}": v for i, v in enumerate(
            decode_cursor(connection, request.before, "before", width))})
    shape = (connection, tuple(sorted(filters)), backward, request.after is not None,
             request.before is not None)

    def build() -> Select[Any]:
        stmt, keys = base()
        if request.after is not None:
            stmt = stmt.where(_after(keys, [bindparam(f"after{i}") for i in range(width)], False))
        if request.before is not None:
            stmt = stmt.where(_after(keys, [bindparam(f"before{i}") for i in range(width)], True))
        order = [(k.column.desc() if k.descending != backward else k.column.asc()) for k in keys]
        return stmt.order_by(*order).limit(bindparam("limit", type_=Integer))

    values["limit"] = size + 1
    statement = prepared(db, ("page", *shape), build, list(values))
    rows = list(await db.fetch(statement, values))
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    map_row = R.record_mapper(cls, db.epoch)
    items = [map_row(r) for r in rows]
    positions = [R.COLUMNS[cls].index(k.column.key) for k in keys]
    cursors = Cursors(connection, [[r[i] for i in positions] for r in rows])

    def build_count() -> Select[Any]:
        return select(func.count()).select_from(base()[0].order_by(None).subquery())

    count_prepared = prepared(db, ("count", connection, tuple(sorted(filters))), build_count,
                              list(filters))
    return Page(
        items=items, cursors=cursors,
        has_next_page=more if not backward else request.before is not None,
        has_previous_page=more if backward else request.after is not None,
        count_prepared=(count_prepared, dict(filters)),
    )


# -- connections -------------------------------------------------------------------------


async def runs_page(db: DbSession, request: PageRequest, size: int, *,
                    statuses: Sequence[RunStatus] | None = None,
                    started_after: datetime | None = None,
                    started_before: datetime | None = None,
                    allowed_runs: frozenset[str] | None = None) -> Page[R.RunRecord]:
    t = db.tables.runs
    stmt = select(*record_columns(t, R.RunRecord))
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
                             lambda r: R.record_from_tuple(R.RunRecord, r, db.epoch))


async def rows_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                    index_from: int | None = None, index_to: int | None = None) -> Page[R.RowRecord]:
    filters: dict[str, Any] = {"run_id": run_id}
    if index_from is not None:
        filters["index_from"] = index_from
    if index_to is not None:
        filters["index_to"] = index_to

    def base() -> tuple[Select[Any], list[SortKey]]:
        t = db.tables.rows
        # epoch 29 orders by ingest_sequence (row_index repeats across sources); epoch 2 by row_index.
        order_col = t.c.ingest_sequence if db.epoch >= 29 else t.c.row_index
        stmt = select(*record_columns(t, R.RowRecord)).where(t.c.run_id == bindparam("run_id"))
        if index_from is not None:
            stmt = stmt.where(order_col >= bindparam("index_from"))
        if index_to is not None:
            stmt = stmt.where(order_col <= bindparam("index_to"))
        return stmt, [SortKey(order_col), SortKey(t.c.row_id)]

    return await _prepared_page(db, "rows", R.RowRecord, base, filters, request, size)


@dataclass(frozen=True, slots=True)
class TokenFilter:
    row_outcomes: Sequence[RowOutcome] = ()
    results: Sequence[TerminalResult] = ()
    paths: Sequence[TerminalPath] = ()
    sink_name: str | None = None
    branch_name: str | None = None
    row_id: str | None = None
    node_id: str | None = None
    edge_id: str | None = None


def _route_matches(db: DbSession, flt: TokenFilter, token_id: Any) -> list[ColumnElement[bool]]:
    """Conditions for the filter's place in the pipeline: a node the token has a state at; an
    edge it crossed (a gate route: the token's routing events on it; any other edge: the token
    has states at both of its ends)."""
    s, re_, e = db.tables.node_states, db.tables.routing_events, db.tables.edges
    conds: list[ColumnElement[bool]] = []
    if flt.node_id is not None:
        conds.append(exists().where(s.c.token_id == token_id, s.c.node_id == flt.node_id))
    if flt.edge_id is not None:
        routed = exists().where(s.c.token_id == token_id, re_.c.state_id == s.c.state_id,
                                re_.c.edge_id == flt.edge_id)
        at_from, at_to = s.alias("at_from"), s.alias("at_to")
        both_ends = exists().where(e.c.edge_id == flt.edge_id,
                                   ~exists().where(re_.c.edge_id == e.c.edge_id),
                                   at_from.c.token_id == token_id, at_from.c.node_id == e.c.from_node_id,
                                   at_to.c.token_id == token_id, at_to.c.node_id == e.c.to_node_id)
        conds.append(or_(routed, both_ends))
    return conds


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
    cond = _outcome_matches(db, flt)
    route = _route_matches(db, flt, t.c.token_id)
    if cond is None and not route:
        filters: dict[str, Any] = {"run_id": run_id}
        if flt.branch_name is not None:
            filters["branch_name"] = flt.branch_name
        if flt.row_id is not None:
            filters["row_id"] = flt.row_id

        def base() -> tuple[Select[Any], list[SortKey]]:
            stmt = select(*record_columns(t, R.TokenRecord)).where(t.c.run_id == bindparam("run_id"))
            if flt.branch_name is not None:
                stmt = stmt.where(t.c.branch_name == bindparam("branch_name"))
            if flt.row_id is not None:
                stmt = stmt.where(t.c.row_id == bindparam("row_id"))
            return stmt, [SortKey(t.c.token_id)]

        return await _prepared_page(db, "tokens", R.TokenRecord, base, filters, request, size)
    stmt = select(*record_columns(t, R.TokenRecord)).where(t.c.run_id == run_id)
    if flt.branch_name is not None:
        stmt = stmt.where(t.c.branch_name == flt.branch_name)
    if flt.row_id is not None:
        stmt = stmt.where(t.c.row_id == flt.row_id)
    for c in route:
        stmt = stmt.where(c)
    if cond is None:
        return await keyset_page(db, "tokens", stmt, [SortKey(t.c.token_id)], request, size,
                                 lambda r: R.record_from_tuple(R.TokenRecord, r, db.epoch))
    terminal_col = o.c.completed if db.epoch >= 29 else o.c.is_terminal
    other = o.alias("o_terminal")
    other_terminal = other.c.completed if db.epoch >= 29 else other.c.is_terminal
    # Filter on the token's current outcome: its terminal one, or (none yet) any buffered.
    current = or_(terminal_col == 1, ~exists().where(other.c.token_id == o.c.token_id,
                                                     other_terminal == 1))
    stmt = stmt.where(exists().where(o.c.token_id == t.c.token_id, current, cond))
    return await keyset_page(db, "tokens", stmt, [SortKey(t.c.token_id)], request, size,
                             lambda r: R.record_from_tuple(R.TokenRecord, r, db.epoch))


async def node_states_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                           node_id: str | None = None,
                           statuses: Sequence[NodeStateStatus] = (),
                           retries: bool | None = None) -> Page[R.NodeStateRecord]:
    s = db.tables.node_states
    if statuses or retries is not None:
        stmt = select(*record_columns(s, R.NodeStateRecord)).where(s.c.run_id == run_id)
        if node_id is not None:
            stmt = stmt.where(s.c.node_id == node_id)
        if statuses:
            stmt = stmt.where(s.c.status.in_([x.value for x in statuses]))
        if retries is not None:
            # A retry is a later attempt of the same token at the same node, whatever number the
            # epoch gives its first attempt (0 in epoch 29).
            earlier = s.alias("earlier")
            retried = exists().where(earlier.c.token_id == s.c.token_id, earlier.c.node_id == s.c.node_id,
                                     earlier.c.attempt < s.c.attempt)
            stmt = stmt.where(retried if retries else ~retried)
        return await keyset_page(db, "nodeStates", stmt, [SortKey(s.c.state_id)], request, size,
                                 lambda r: R.record_from_tuple(R.NodeStateRecord, r, db.epoch))
    filters: dict[str, Any] = {"run_id": run_id}
    if node_id is not None:
        filters["node_id"] = node_id

    def base() -> tuple[Select[Any], list[SortKey]]:
        stmt = select(*record_columns(s, R.NodeStateRecord)).where(s.c.run_id == bindparam("run_id"))
        if node_id is not None:
            stmt = stmt.where(s.c.node_id == bindparam("node_id"))
        return stmt, [SortKey(s.c.state_id)]

    return await _prepared_page(db, "nodeStates", R.NodeStateRecord, base, filters, request, size)


def _calls_in_run(db: DbSession, run_id: Any) -> ColumnElement[bool]:
    c, s, op = db.tables.calls, db.tables.node_states, db.tables.operations
    # calls carry no run_id: a call belongs to a run through its state or its operation.
    return or_(
        exists().where(s.c.state_id == c.c.state_id, s.c.run_id == run_id),
        exists().where(op.c.operation_id == c.c.operation_id, op.c.run_id == run_id),
    )


async def calls_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                     call_types: Sequence[CallType] = (),
                     statuses: Sequence[CallStatus] = ()) -> Page[R.CallRecord]:
    c = db.tables.calls
    if call_types or statuses:
        stmt = select(*record_columns(c, R.CallRecord)).where(_calls_in_run(db, run_id))
        if call_types:
            stmt = stmt.where(c.c.call_type.in_([x.value for x in call_types]))
        if statuses:
            stmt = stmt.where(c.c.status.in_([x.value for x in statuses]))
        return await keyset_page(db, "calls", stmt, [SortKey(c.c.call_id)], request, size,
                                 lambda r: R.record_from_tuple(R.CallRecord, r, db.epoch))

    def base() -> tuple[Select[Any], list[SortKey]]:
        stmt = select(*record_columns(c, R.CallRecord)).where(_calls_in_run(db, bindparam("run_id")))
        return stmt, [SortKey(c.c.call_id)]

    return await _prepared_page(db, "calls", R.CallRecord, base, {"run_id": run_id}, request, size)


async def validation_errors_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                                 node_id: str | None = None) -> Page[R.ValidationErrorRecord]:
    filters: dict[str, Any] = {"run_id": run_id}
    if node_id is not None:
        filters["node_id"] = node_id

    def base() -> tuple[Select[Any], list[SortKey]]:
        v = db.tables.validation_errors
        stmt = select(*record_columns(v, R.ValidationErrorRecord)).where(v.c.run_id == bindparam("run_id"))
        if node_id is not None:
            stmt = stmt.where(v.c.node_id == bindparam("node_id"))
        return stmt, [SortKey(v.c.error_id)]

    return await _prepared_page(db, "validationErrors", R.ValidationErrorRecord, base, filters,
                                request, size)


async def transform_errors_page(db: DbSession, run_id: str, request: PageRequest, size: int, *,
                                node_id: str | None = None) -> Page[R.TransformErrorRecord]:
    filters: dict[str, Any] = {"run_id": run_id}
    if node_id is not None:
        filters["node_id"] = node_id

    def base() -> tuple[Select[Any], list[SortKey]]:
        e = db.tables.transform_errors
        stmt = select(*record_columns(e, R.TransformErrorRecord)).where(e.c.run_id == bindparam("run_id"))
        if node_id is not None:
            stmt = stmt.where(e.c.transform_id == bindparam("node_id"))
        return stmt, [SortKey(e.c.error_id)]

    return await _prepared_page(db, "transformErrors", R.TransformErrorRecord, base, filters,
                                request, size)


def _of_run(db: DbSession, table_name: str, cls: type,
            key: str) -> Callable[[], tuple[Select[Any], list[SortKey]]]:
    def base() -> tuple[Select[Any], list[SortKey]]:
        t = getattr(db.tables, table_name)
        return select(*record_columns(t, cls)).where(t.c.run_id == bindparam("run_id")), [SortKey(t.c[key])]
    return base


async def operations_page(db: DbSession, run_id: str, request: PageRequest,
                          size: int) -> Page[R.OperationRecord]:
    return await _prepared_page(db, "operations", R.OperationRecord,
                                _of_run(db, "operations", R.OperationRecord, "operation_id"),
                                {"run_id": run_id}, request, size)


async def batches_page(db: DbSession, run_id: str, request: PageRequest,
                       size: int) -> Page[R.BatchRecord]:
    return await _prepared_page(db, "batches", R.BatchRecord,
                                _of_run(db, "batches", R.BatchRecord, "batch_id"),
                                {"run_id": run_id}, request, size)


async def artifacts_page(db: DbSession, run_id: str, request: PageRequest,
                         size: int) -> Page[R.ArtifactRecord]:
    return await _prepared_page(db, "artifacts", R.ArtifactRecord,
                                _of_run(db, "artifacts", R.ArtifactRecord, "artifact_id"),
                                {"run_id": run_id}, request, size)
