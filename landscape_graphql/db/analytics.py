"""Run analytics as SQL aggregates, each one statement for a whole set of runs.

ELSPETH's MCP server answers these per run with a dozen statements each; here every function
takes the run ids of a loader batch and groups by run, so `runs(first: 50)` costs what
`runs(first: 1)` costs. Rows come back as the aggregate records of `analytics_records.py`.

Percentiles (one definition, used for node durations and call latencies): the **nearest-rank**
method. Of the n non-null values of a group sorted ascending, the p-th percentile is the value
at rank ceil(p/100 * n): the smallest value v with (number of values <= v) / n >= p/100. That
share is the `cume_dist()` window, which SQLite and PostgreSQL define alike, so both give the
same value (an element of the data, never an interpolation). A `count() OVER (PARTITION BY …)`
would also give n, but SQLite evaluates that whole-partition window ~4x slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    select,
    union_all,
)

from ..errors import AuditIntegrityError
from . import analytics_records as A
from . import records as R
from ._keys import in_keys, key_set
from ._rowmap import enum_value
from ._statements import fetch_by_keys, prepared, record_columns
from .enums import (
    PATH_TO_ROW,
    ROW_TO_TERMINAL,
    CallStatus,
    CallType,
    NodeStateStatus,
    RowOutcome,
    TerminalPath,
    TerminalResult,
)
from .session import DbSession

PERCENTILES = (50, 95, 99)


def _flag(db: DbSession) -> Any:
    """token_outcomes' terminal flag: is_terminal (epoch 2) or completed (epoch 29)."""
    o = db.tables.token_outcomes
    return o.c.completed if db.epoch >= 29 else o.c.is_terminal


def _count_where(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _cume(value: Any, *partition: Any) -> Any:
    """The share of the group's non-null values <= this one (cume_dist over them; nulls apart)."""
    return func.cume_dist().over(partition_by=(*partition, value.is_(None)), order_by=value)


def _percentile(value: Any, cume: Any, p: int) -> Any:
    """Nearest-rank percentile over a `_cume` column (see the module doc): the smallest value
    whose cumulative share reaches p %. The slack absorbs the float division r/n (distinct
    shares differ by at least 1/n, far more than 1e-9)."""
    return func.min(case((cume * 100 >= p - 1e-9, value)))


# -- counts ---------------------------------------------------------------------------------------

async def _fetch_whole_runs(db: DbSession, key: str, build: Any, run_ids: Sequence[str]) -> Sequence[Any]:
    """A statement that scans whole runs (ELSPETH's schema indexes no run_id of node_states, and
    a run's outcomes are most of their table): off the event loop and only
    `engine.HEAVY_STATEMENTS` at a time for the whole server, as Run.dag's edge counts."""
    return await db.fetch_heavy(prepared(db, key, build), {"keys": key_set(db.dialect, run_ids)})


def _buffered(db: DbSession, table: Any) -> ColumnElement[bool]:
    """The one non-terminal outcome: `buffered` (epoch 2), NULL/`buffered` (epoch 29)."""
    outcome: ColumnElement[Any] = table.c.outcome
    if db.epoch >= 29:
        path: ColumnElement[Any] = table.c.path
        return and_(outcome.is_(None), path == TerminalPath.BUFFERED.value)
    return outcome == RowOutcome.BUFFERED.value


async def run_counts(db: DbSession, run_ids: Sequence[str]) -> list[A.RunCounts]:
    """Counts of a run's records and what resolving its tokens' outcomes needs.

    Each table is read once, grouped by run, and joined to the runs: correlated subqueries
    would scan a table once per figure. node_states is not read here: its figures come from
    the per-node aggregate (`node_stats`), so a query asking for both scans it once.
    """
    def build() -> Select[Any]:
        t = db.tables
        run = t.runs

        def grouped(name: str, table: Any, *figures: Any) -> Any:
            return (select(table.c.run_id.label("run_id"), *figures)
                    .where(in_keys(db.dialect, table.c.run_id)).group_by(table.c.run_id).subquery(name))

        ops, outcomes = t.operations, t.token_outcomes
        terminal = _flag(db) == 1
        other = outcomes.alias("other_outcome")
        other_terminal = (other.c.completed if db.epoch >= 29 else other.c.is_terminal) == 1
        # Only the few non-terminal records probe the token_id index for a terminal sibling.
        buffered_only = and_(~terminal, ~select(other.c.outcome_id).where(
            other.c.token_id == outcomes.c.token_id, other_terminal).exists())

        def distinct(name: str, column: Any, *where: Any, extra_of: bool = False) -> Any:
            """Distinct values per run (or, `extra_of`, how many repeats) by GROUP BY, which
            SQLite sorts; count(DISTINCT) builds a b-tree that spills past its page cache
            (30 s instead of 2 s for 1.2 million outcomes)."""
            values = (select(outcomes.c.run_id, column, func.count().label("c"))
                      .where(in_keys(db.dialect, outcomes.c.run_id), *where)
                      .group_by(outcomes.c.run_id, column).subquery(f"{name}_values"))
            figure = func.sum(values.c.c - 1) if extra_of else func.count()
            return (select(values.c.run_id.label("run_id"), figure.label("n"))
                    .group_by(values.c.run_id).subquery(name))

        parts = {
            "rows": grouped("g_rows", t.rows, func.count().label("n")),
            "tokens": grouped("g_tokens", t.tokens, func.count().label("n")),
            "nodes": grouped("g_nodes", t.nodes, func.count().label("n")),
            "ops": grouped("g_ops", ops, func.count().label("n"),
                           *(_count_where(ops.c.operation_type == kind).label(kind)
                             for kind in ("source_load", "sink_write", "runtime_preflight"))),
            "verr": grouped("g_verr", t.validation_errors, func.count().label("n")),
            "terr": grouped("g_terr", t.transform_errors, func.count().label("n")),
            "outcomes": grouped(
                "g_outcomes", outcomes,
                _count_where(terminal).label("terminal_records"),
                func.count(case((buffered_only, outcomes.c.token_id)).distinct()).label("buffered_only"),
                _count_where(and_(~terminal, ~_buffered(db, outcomes))).label("open_not_buffered")),
            "forks": distinct("g_forks", outcomes.c.fork_group_id, outcomes.c.fork_group_id.is_not(None)),
            "joins": distinct("g_joins", outcomes.c.join_group_id, outcomes.c.join_group_id.is_not(None)),
            "twice": distinct("g_twice", outcomes.c.token_id, terminal, extra_of=True),
        }
        joined: Any = run
        for part in parts.values():
            joined = joined.outerjoin(part, part.c.run_id == run.c.run_id)
        p = parts

        def n(column: Any) -> Any:
            return func.coalesce(column, 0)

        o = p["outcomes"].c
        return (select(run.c.run_id, n(p["rows"].c.n), n(p["tokens"].c.n), n(p["nodes"].c.n),
                       n(p["ops"].c.n), n(p["ops"].c.source_load), n(p["ops"].c.sink_write),
                       n(p["ops"].c.runtime_preflight), n(p["verr"].c.n), n(p["terr"].c.n),
                       n(p["forks"].c.n), n(p["joins"].c.n), n(o.terminal_records),
                       n(o.terminal_records) - n(p["twice"].c.n), n(o.buffered_only), n(o.open_not_buffered))
                .select_from(joined).where(in_keys(db.dialect, run.c.run_id)))

    rows = await _fetch_whole_runs(db, "analytics/run_counts", build, run_ids)
    return [A.RunCounts(run_id=r[0], rows=r[1], tokens=r[2], nodes=r[3], operations=r[4],
                        source_loads=r[5], sink_writes=r[6], runtime_preflights=r[7] if db.epoch >= 29 else None,
                        validation_errors=r[8], transform_errors=r[9], fork_groups=r[10], join_groups=r[11],
                        terminal_records=r[12], terminal_tokens=r[13], buffered_only_tokens=r[14],
                        open_not_buffered=r[15]) for r in rows]


def no_outcome_group(run_id: str, count: int) -> A.OutcomeCount:
    """The group of tokens without any outcome record."""
    return A.OutcomeCount(run_id, None, None, None, None, None, count)


def _outcome_count(db: DbSession, run_id: str, outcome: Any, path: Any, flag: Any, count: int,
                   record: str) -> A.OutcomeCount:
    """One group of outcome records (or of tokens by their outcome); stored view first."""
    terminal = bool(flag)
    if db.epoch >= 29:
        result = None if outcome is None else enum_value(TerminalResult, outcome, db.epoch, record, "outcome")
        tpath = enum_value(TerminalPath, path, db.epoch, record, "path")
        return A.OutcomeCount(run_id, "RESULT_PATH", terminal, PATH_TO_ROW.get(tpath), result, tpath, count)
    row_outcome = enum_value(RowOutcome, outcome, db.epoch, record, "outcome")
    # The other view only where it does not depend on the token (ROUTED and DIVERTED do).
    mapped = ROW_TO_TERMINAL.get(row_outcome)
    return A.OutcomeCount(run_id, "ROW_OUTCOME", terminal, row_outcome,
                          mapped[0] if mapped else None, mapped[1] if mapped else None, count)


async def outcome_record_counts(db: DbSession, run_ids: Sequence[str]) -> list[A.OutcomeCount]:
    """Outcome **records** by stored value, as ELSPETH counts them (a buffered-then-consumed
    token counts twice)."""
    def build() -> Select[Any]:
        o = db.tables.token_outcomes
        flag = _flag(db)
        # PostgreSQL refuses a constant in GROUP BY / ORDER BY: epoch 2 has no path to group by.
        keys = [o.c.run_id, o.c.outcome, *([o.c.path] if db.epoch >= 29 else []), flag]
        path = o.c.path if db.epoch >= 29 else null()
        return (select(o.c.run_id, o.c.outcome, path, flag, func.count())
                .where(in_keys(db.dialect, o.c.run_id))
                .group_by(*keys).order_by(*keys))

    rows = await _fetch_whole_runs(db, "analytics/outcome_records", build, run_ids)
    return [_outcome_count(db, r[0], r[1], r[2], r[3], r[4], f"token_outcomes[run {r[0]}]") for r in rows]


def buffered_group(db: DbSession, run_id: str, count: int) -> A.OutcomeCount:
    """The group of `count` tokens whose only outcome records are non-terminal (buffered)."""
    if db.epoch >= 29:
        return _outcome_count(db, run_id, None, TerminalPath.BUFFERED.value, 0, count, f"runs[{run_id}]")
    return _outcome_count(db, run_id, RowOutcome.BUFFERED.value, None, 0, count, f"runs[{run_id}]")


async def sink_counts(db: DbSession, run_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    """(run, sink name, outcome records naming it)."""
    def build() -> Select[Any]:
        o = db.tables.token_outcomes
        return (select(o.c.run_id, o.c.sink_name, func.count())
                .where(in_keys(db.dialect, o.c.run_id), o.c.sink_name.is_not(None))
                .group_by(o.c.run_id, o.c.sink_name).order_by(o.c.run_id, o.c.sink_name))

    return [(r[0], r[1], r[2]) for r in await _fetch_whole_runs(db, "analytics/sinks", build, run_ids)]


# -- performance ----------------------------------------------------------------------------------

def _with_node(db: DbSession, grouped: Any, run_id: Any, node_id: Any) -> Select[Any]:
    """The grouped rows with the whole record of their node (NULLs when there is none).

    The `node` field of a figure reads this record: a separate node lookup would run when
    the figure arrives, and whole-run figures arrive at times that depend on the load, which
    would make a query's statement count depend on timing."""
    n = db.tables.nodes
    return (select(grouped, *record_columns(n, R.NodeRecord))
            .select_from(grouped.outerjoin(n, and_(n.c.run_id == run_id, n.c.node_id == node_id))))


def _node_record(db: DbSession, columns: Sequence[Any]) -> R.NodeRecord | None:
    if columns[0] is None:
        return None
    node: R.NodeRecord = R.record_mapper(R.NodeRecord, db.epoch)(columns)
    return node


def _node_of(run_id: str, node_id: str | None, node: R.NodeRecord | None, record: str) -> R.NodeRecord:
    if node is None:
        raise AuditIntegrityError(record, "every record names a node of its run",
                                  f"node {node_id!r} is not in run {run_id}")
    return node


async def node_stats(db: DbSession, run_ids: Sequence[str]) -> list[A.NodeStats]:
    """Per node with states: counts and duration statistics, by total time desc then node id.

    One plain aggregate over the run's states (no window): performance without percentiles,
    the summary's state count and average, retries and the failing nodes all read it.
    """
    def build() -> Select[Any]:
        s = db.tables.node_states
        d = s.c.duration_ms
        per_node = (select(
            s.c.run_id, s.c.node_id, func.count().label("executions"),
            _count_where(s.c.status == NodeStateStatus.FAILED.value).label("failures"),
            _count_where(s.c.attempt > 0).label("retries"), func.count(d).label("timed"),
            func.avg(d).label("avg"), func.min(d).label("min"), func.max(d).label("max"),
            func.coalesce(func.sum(d), 0.0).label("total"))
            .where(in_keys(db.dialect, s.c.run_id))
            .group_by(s.c.run_id, s.c.node_id).subquery("per_node"))
        return (_with_node(db, per_node, per_node.c.run_id, per_node.c.node_id)
                .order_by(per_node.c.run_id, per_node.c.total.desc(), per_node.c.node_id))

    out = []
    for r in await _fetch_whole_runs(db, "analytics/node_stats", build, run_ids):
        node = _node_of(r[0], r[1], _node_record(db, r[10:]), f"node_states[run {r[0]}, node {r[1]}]")
        out.append(A.NodeStats(run_id=r[0], node_id=r[1], node=node, executions=r[2], failures=r[3],
                               retries=r[4], timed=r[5], avg_ms=_f(r[6]), min_ms=_f(r[7]), max_ms=_f(r[8]),
                               total_ms=float(r[9])))
    return out


async def node_percentiles(db: DbSession, run_ids: Sequence[str]) -> list[A.NodePercentiles]:
    """Nearest-rank p50/p95/p99 of each node's state durations, by node id.

    The one window of the analytics (a sort of all the run's states); read only when a
    percentile is selected.
    """
    def build() -> Select[Any]:
        s = db.tables.node_states
        ranked = (select(s.c.run_id, s.c.node_id, s.c.duration_ms,
                         _cume(s.c.duration_ms, s.c.run_id, s.c.node_id).label("cume"))
                  .where(in_keys(db.dialect, s.c.run_id)).subquery("ranked"))
        d = ranked.c.duration_ms
        return (select(ranked.c.run_id, ranked.c.node_id,
                       *(_percentile(d, ranked.c.cume, p).label(f"p{p}") for p in PERCENTILES))
                .group_by(ranked.c.run_id, ranked.c.node_id).order_by(ranked.c.run_id, ranked.c.node_id))

    return [A.NodePercentiles(run_id=r[0], node_id=r[1], p50_ms=_f(r[2]), p95_ms=_f(r[3]), p99_ms=_f(r[4]))
            for r in await _fetch_whole_runs(db, "analytics/node_percentiles", build, run_ids)]


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


# -- errors ---------------------------------------------------------------------------------------

async def error_buckets(db: DbSession, run_ids: Sequence[str]) -> list[A.ErrorBucket]:
    """Validation errors by (source node, schema mode) and transform errors by transform node."""
    def build() -> Any:
        v, te = db.tables.validation_errors, db.tables.transform_errors
        validation = (select(literal("validation").label("kind"), v.c.run_id, v.c.node_id, v.c.schema_mode,
                             func.count().label("n"))
                      .where(in_keys(db.dialect, v.c.run_id))
                      .group_by(v.c.run_id, v.c.node_id, v.c.schema_mode))
        transform = (select(literal("transform"), te.c.run_id, te.c.transform_id, null(), func.count())
                     .where(in_keys(db.dialect, te.c.run_id))
                     .group_by(te.c.run_id, te.c.transform_id))
        u = union_all(validation, transform).subquery("buckets")
        return (_with_node(db, u, u.c.run_id, u.c.node_id)
                .order_by(u.c.run_id, u.c.kind, u.c.node_id, u.c.schema_mode))

    out = []
    for r in await fetch_by_keys(db, "analytics/error_buckets", build, run_ids):
        node = _node_record(db, r[5:])
        if r[0] == "transform" and node is None:
            # ELSPETH 0.7.1 raises here too: a transform error must name a node of its run.
            raise AuditIntegrityError(f"transform_errors[run {r[1]}]", "a transform error names a node of its run",
                                      f"node {r[2]!r} not found")
        out.append(A.ErrorBucket(kind=r[0], run_id=r[1], node_id=r[2], node=node, schema_mode=r[3], count=r[4]))
    return out


async def _first_per_run(db: DbSession, name: str, table: Any, cls: type, time_col: str, id_col: str,
                         keys: Sequence[tuple[str, int, bool]], where: Any = None,
                         heavy: bool = False) -> list[Any]:
    """The first n records of each run by (time, id), ascending or (latest first) descending.

    Keys are (run id, n, latest_first); one statement per distinct (n, direction) in the batch.
    """
    out: list[Any] = []
    groups: dict[tuple[int, bool], list[str]] = {}
    for run_id, n, latest in keys:
        groups.setdefault((n, latest), []).append(run_id)
    for (n, latest), run_ids in sorted(groups.items()):
        def build(latest: bool = latest) -> Select[Any]:
            t = getattr(db.tables, table)
            order = (t.c[time_col].desc(), t.c[id_col].desc()) if latest else (t.c[time_col], t.c[id_col])
            rank = func.row_number().over(partition_by=t.c.run_id, order_by=order)
            inner = (select(*record_columns(t, cls), rank.label("rank"))
                     .where(in_keys(db.dialect, t.c.run_id), *(() if where is None else (where(t),)))
                     .subquery("firsts"))
            cols = [c for c in inner.c if c.name != "rank"]
            return (select(*cols).where(inner.c.rank <= bindparam("n", type_=Integer))
                    .order_by(inner.c.run_id, inner.c.rank))

        statement = prepared(db, (name, latest), build, ("keys", "n"))
        fetch = db.fetch_heavy if heavy else db.fetch
        rows = await fetch(statement, {"keys": key_set(db.dialect, run_ids), "n": n})
        map_row: Any = R.record_mapper(cls, db.epoch)
        out.extend(((rec.run_id, n, latest), rec) for rec in map(map_row, rows))
    return out


async def validation_error_samples(db: DbSession, keys: Sequence[tuple[str, int, bool]]) -> list[Any]:
    return await _first_per_run(db, "analytics/validation_samples", "validation_errors",
                                R.ValidationErrorRecord, "created_at", "error_id", keys)


async def transform_error_samples(db: DbSession, keys: Sequence[tuple[str, int, bool]]) -> list[Any]:
    return await _first_per_run(db, "analytics/transform_samples", "transform_errors",
                                R.TransformErrorRecord, "created_at", "error_id", keys)


async def failed_state_samples(db: DbSession, keys: Sequence[tuple[str, int, bool]]) -> list[Any]:
    return await _first_per_run(db, "analytics/failed_states", "node_states", R.NodeStateRecord,
                                "started_at", "state_id", keys,
                                where=lambda t: t.c.status == NodeStateStatus.FAILED.value, heavy=True)


# -- calls ----------------------------------------------------------------------------------------

def _run_calls(db: DbSession) -> Any:
    """Every call of the keyed runs with its run and node, through its state or its operation."""
    c, s, o = db.tables.calls, db.tables.node_states, db.tables.operations
    cols = (c.c.call_type, c.c.status, c.c.latency_ms, c.c.response_ref, c.c.response_hash)
    by_state = (select(s.c.run_id, s.c.node_id, *cols).select_from(c.join(s, s.c.state_id == c.c.state_id))
                .where(in_keys(db.dialect, s.c.run_id)))
    by_operation = (select(o.c.run_id, o.c.node_id, *cols)
                    .select_from(c.join(o, o.c.operation_id == c.c.operation_id))
                    .where(in_keys(db.dialect, o.c.run_id)))
    return union_all(by_state, by_operation).subquery("run_calls")


async def call_type_counts(db: DbSession, run_ids: Sequence[str]) -> list[tuple[str, CallType, int]]:
    def build() -> Select[Any]:
        rc = _run_calls(db)
        return (select(rc.c.run_id, rc.c.call_type, func.count()).group_by(rc.c.run_id, rc.c.call_type)
                .order_by(rc.c.run_id, rc.c.call_type))

    return [(r[0], enum_value(CallType, r[1], db.epoch, f"calls[run {r[0]}]", "call_type"), r[2])
            for r in await fetch_by_keys(db, "analytics/call_types", build, run_ids)]


async def llm_calls_by_node(db: DbSession, run_ids: Sequence[str]) -> list[A.NodeCalls]:
    """`llm` calls per node: counts by status and latency statistics (nearest-rank p95)."""
    def build() -> Select[Any]:
        rc = _run_calls(db)
        llm = rc.c.call_type == CallType.LLM.value
        ranked = (select(rc.c.run_id, rc.c.node_id, rc.c.status, rc.c.latency_ms,
                         _cume(rc.c.latency_ms, rc.c.run_id, rc.c.node_id).label("cume"))
                  .where(llm).subquery("ranked"))
        lat = ranked.c.latency_ms
        per_node = (select(ranked.c.run_id, ranked.c.node_id, func.count().label("total"),
                           _count_where(ranked.c.status == CallStatus.SUCCESS.value).label("ok"),
                           func.avg(lat).label("avg"), func.coalesce(func.sum(lat), 0.0).label("sum"),
                           _percentile(lat, ranked.c.cume, 95).label("p95"))
                    .group_by(ranked.c.run_id, ranked.c.node_id).subquery("per_node"))
        return (_with_node(db, per_node, per_node.c.run_id, per_node.c.node_id)
                .order_by(per_node.c.run_id, per_node.c.node_id))

    out = []
    for r in await fetch_by_keys(db, "analytics/llm_by_node", build, run_ids):
        node = _node_of(r[0], r[1], _node_record(db, r[7:]), f"calls[run {r[0]}, node {r[1]}]")
        out.append(A.NodeCalls(run_id=r[0], node_id=r[1], node=node, total=r[2], successful=r[3],
                               failed=r[2] - r[3], avg_latency_ms=_f(r[4]), total_latency_ms=float(r[5]),
                               p95_latency_ms=_f(r[6])))
    return out


async def llm_responses(db: DbSession, run_ids: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """(run, response_ref, response_hash) of every `llm` call, for token usage."""
    def build() -> Select[Any]:
        rc = _run_calls(db)
        return (select(rc.c.run_id, rc.c.response_ref, rc.c.response_hash)
                .where(rc.c.call_type == CallType.LLM.value)
                .order_by(rc.c.run_id, rc.c.response_hash))

    return [(r[0], r[1], r[2]) for r in await fetch_by_keys(db, "analytics/llm_responses", build, run_ids)]
