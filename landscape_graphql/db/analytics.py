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
    NodeType,
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

async def run_counts(db: DbSession, run_ids: Sequence[str]) -> list[A.RunCounts]:
    """Counts of a run's records, its average state duration, its outcome group counts.

    Each table is read once, grouped by run, and joined to the runs: correlated subqueries
    would scan node_states (no run_id index in ELSPETH's schema) once per figure.
    """
    def build() -> Select[Any]:
        t = db.tables
        run = t.runs

        def grouped(name: str, table: Any, *figures: Any) -> Any:
            return (select(table.c.run_id.label("run_id"), *figures)
                    .where(in_keys(db.dialect, table.c.run_id)).group_by(table.c.run_id).subquery(name))

        ops, states, outcomes = t.operations, t.node_states, t.token_outcomes
        parts = {
            "rows": grouped("g_rows", t.rows, func.count().label("n")),
            "tokens": grouped("g_tokens", t.tokens, func.count().label("n")),
            "nodes": grouped("g_nodes", t.nodes, func.count().label("n")),
            "states": grouped("g_states", states, func.count().label("n"),
                              func.avg(states.c.duration_ms).label("avg"),
                              _count_where(states.c.attempt > 0).label("retried")),
            "ops": grouped("g_ops", ops, func.count().label("n"),
                           *(_count_where(ops.c.operation_type == kind).label(kind)
                             for kind in ("source_load", "sink_write", "runtime_preflight"))),
            "verr": grouped("g_verr", t.validation_errors, func.count().label("n")),
            "terr": grouped("g_terr", t.transform_errors, func.count().label("n")),
            "outcomes": grouped("g_outcomes", outcomes,
                                func.count(outcomes.c.fork_group_id.distinct()).label("forks"),
                                func.count(outcomes.c.join_group_id.distinct()).label("joins")),
        }
        joined: Any = run
        for part in parts.values():
            joined = joined.outerjoin(part, part.c.run_id == run.c.run_id)
        p = parts

        def n(column: Any) -> Any:
            return func.coalesce(column, 0)

        return (select(run.c.run_id, n(p["rows"].c.n), n(p["tokens"].c.n), n(p["nodes"].c.n), n(p["states"].c.n),
                       n(p["ops"].c.n), n(p["ops"].c.source_load), n(p["ops"].c.sink_write),
                       n(p["ops"].c.runtime_preflight), n(p["verr"].c.n), n(p["terr"].c.n), p["states"].c.avg,
                       n(p["states"].c.retried), n(p["outcomes"].c.forks), n(p["outcomes"].c.joins))
                .select_from(joined).where(in_keys(db.dialect, run.c.run_id)))

    rows = await fetch_by_keys(db, "analytics/run_counts", build, run_ids)
    return [A.RunCounts(run_id=r[0], rows=r[1], tokens=r[2], nodes=r[3], node_states=r[4], operations=r[5],
                        source_loads=r[6], sink_writes=r[7], runtime_preflights=r[8] if db.epoch >= 29 else None,
                        validation_errors=r[9], transform_errors=r[10],
                        avg_state_duration_ms=None if r[11] is None else float(r[11]),
                        retried_states=r[12], fork_groups=r[13], join_groups=r[14]) for r in rows]


def _outcome_count(db: DbSession, run_id: str, outcome: Any, path: Any, flag: Any, count: int,
                   record: str) -> A.OutcomeCount:
    """One group of outcome records (or of tokens by their outcome); stored view first."""
    if flag is None:  # tokens without any outcome record
        return A.OutcomeCount(run_id, None, None, None, None, None, count)
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

    rows = await fetch_by_keys(db, "analytics/outcome_records", build, run_ids)
    return [_outcome_count(db, r[0], r[1], r[2], r[3], r[4], f"token_outcomes[run {r[0]}]") for r in rows]


async def token_outcome_counts(db: DbSession, run_ids: Sequence[str]) -> list[A.OutcomeCount]:
    """Tokens by their current outcome: the terminal one, else the latest; none -> flag NULL.

    Only a buffered outcome is non-terminal (an integrity rule the record mapper enforces), so
    a token's current outcome is its terminal record, else buffered: the terminal records are
    grouped as they are, tokens with only buffered records are counted once, and tokens without
    any record apart (NOT EXISTS on the token_id index). No per-token ranking: on 117,000
    outcomes it cost seconds. A last part counts tokens with two terminal records (an error).
    """
    def build() -> Any:
        o, tok = db.tables.token_outcomes, db.tables.tokens
        flag = _flag(db)
        path = o.c.path if db.epoch >= 29 else null()
        keys = [o.c.run_id, o.c.outcome, *([o.c.path] if db.epoch >= 29 else []), flag]
        mine = in_keys(db.dialect, o.c.run_id)
        terminal = (select(o.c.run_id, o.c.outcome, path, flag, func.count(), literal(0))
                    .where(mine, flag == 1).group_by(*keys))
        other = o.alias("other_outcome")
        other_flag = other.c.completed if db.epoch >= 29 else other.c.is_terminal
        buffered_only = (select(o.c.run_id, o.c.outcome, path, flag, func.count(o.c.token_id.distinct()), literal(0))
                         .where(mine, flag != 1,
                                ~select(other.c.outcome_id).where(other.c.token_id == o.c.token_id,
                                                                  other_flag == 1).exists())
                         .group_by(*keys))
        without = (select(tok.c.run_id, null(), null(), null(), func.count(), literal(0))
                   .where(in_keys(db.dialect, tok.c.run_id),
                          ~select(other.c.outcome_id).where(other.c.token_id == tok.c.token_id).exists())
                   .group_by(tok.c.run_id))
        twice = (select(o.c.run_id, null(), null(), null(), literal(0),
                        func.count() - func.count(o.c.token_id.distinct()))
                 .where(mine, flag == 1).group_by(o.c.run_id))
        u = union_all(terminal, buffered_only, without, twice).subquery("groups")
        cols = list(u.c)
        return select(*cols).order_by(cols[0], cols[1], cols[2], cols[3])

    rows = await fetch_by_keys(db, "analytics/token_outcomes", build, run_ids)
    for r in rows:
        if r[5]:
            raise AuditIntegrityError(f"runs[{r[0]}]", "a token has at most one terminal outcome",
                                      f"{r[5]} more terminal outcomes than tokens having one")
    return [_outcome_count(db, r[0], r[1], r[2], r[3], r[4], f"token_outcomes[run {r[0]}]")
            for r in rows if r[4]]


async def sink_counts(db: DbSession, run_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    """(run, sink name, outcome records naming it)."""
    def build() -> Select[Any]:
        o = db.tables.token_outcomes
        return (select(o.c.run_id, o.c.sink_name, func.count())
                .where(in_keys(db.dialect, o.c.run_id), o.c.sink_name.is_not(None))
                .group_by(o.c.run_id, o.c.sink_name).order_by(o.c.run_id, o.c.sink_name))

    return [(r[0], r[1], r[2]) for r in await fetch_by_keys(db, "analytics/sinks", build, run_ids)]


# -- performance ----------------------------------------------------------------------------------

def _node_of(db: DbSession, run_id: str, node_id: str | None, plugin: str | None, node_type: str | None,
             record: str) -> tuple[str, NodeType]:
    if plugin is None or node_type is None:
        raise AuditIntegrityError(record, "every record names a node of its run",
                                  f"node {node_id!r} is not in run {run_id}")
    return plugin, enum_value(NodeType, node_type, db.epoch, f"nodes[{run_id}/{node_id}]", "node_type")


async def node_performance(db: DbSession, run_ids: Sequence[str]) -> list[A.NodeTimes]:
    """Per node with states: counts, duration statistics and percentiles, by total time desc."""
    def build() -> Select[Any]:
        s, n = db.tables.node_states, db.tables.nodes
        ranked = (select(s.c.run_id, s.c.node_id, s.c.status, s.c.attempt, s.c.duration_ms,
                         _cume(s.c.duration_ms, s.c.run_id, s.c.node_id).label("cume"))
                  .where(in_keys(db.dialect, s.c.run_id)).subquery("ranked"))
        d = ranked.c.duration_ms
        per_node = (select(
            ranked.c.run_id, ranked.c.node_id, func.count().label("executions"),
            _count_where(ranked.c.status == NodeStateStatus.FAILED.value).label("failures"),
            _count_where(ranked.c.attempt > 0).label("retries"),
            func.avg(d).label("avg"), func.min(d).label("min"), func.max(d).label("max"),
            func.coalesce(func.sum(d), 0.0).label("total"),
            *(_percentile(d, ranked.c.cume, p).label(f"p{p}") for p in PERCENTILES))
            .group_by(ranked.c.run_id, ranked.c.node_id).subquery("per_node"))
        return (select(per_node, n.c.plugin_name, n.c.node_type)
                .select_from(per_node.outerjoin(n, and_(n.c.run_id == per_node.c.run_id,
                                                        n.c.node_id == per_node.c.node_id)))
                .order_by(per_node.c.run_id, per_node.c.total.desc(), per_node.c.node_id))

    out = []
    for r in await fetch_by_keys(db, "analytics/performance", build, run_ids):
        plugin, node_type = _node_of(db, r[0], r[1], r[12], r[13], f"node_states[run {r[0]}, node {r[1]}]")
        out.append(A.NodeTimes(run_id=r[0], node_id=r[1], plugin=plugin, node_type=node_type,
                               executions=r[2], failures=r[3], retries=r[4], avg_ms=_f(r[5]),
                               min_ms=_f(r[6]), max_ms=_f(r[7]), total_ms=float(r[8]),
                               p50_ms=_f(r[9]), p95_ms=_f(r[10]), p99_ms=_f(r[11])))
    return out


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


# -- errors ---------------------------------------------------------------------------------------

async def error_buckets(db: DbSession, run_ids: Sequence[str]) -> list[A.ErrorBucket]:
    """Validation errors by (source node, schema mode) and transform errors by transform node."""
    def build() -> Any:
        v, te, n = db.tables.validation_errors, db.tables.transform_errors, db.tables.nodes
        validation = (select(literal("validation"), v.c.run_id, v.c.node_id, n.c.plugin_name,
                             v.c.schema_mode, func.count())
                      .select_from(v.outerjoin(n, and_(n.c.node_id == v.c.node_id, n.c.run_id == v.c.run_id)))
                      .where(in_keys(db.dialect, v.c.run_id))
                      .group_by(v.c.run_id, v.c.node_id, n.c.plugin_name, v.c.schema_mode))
        transform = (select(literal("transform"), te.c.run_id, te.c.transform_id, n.c.plugin_name,
                            null(), func.count())
                     .select_from(te.outerjoin(n, and_(n.c.node_id == te.c.transform_id,
                                                       n.c.run_id == te.c.run_id)))
                     .where(in_keys(db.dialect, te.c.run_id))
                     .group_by(te.c.run_id, te.c.transform_id, n.c.plugin_name))
        u = union_all(validation, transform).subquery("buckets")
        cols = list(u.c)
        return select(*cols).order_by(cols[1], cols[0], cols[2], cols[4])

    out = []
    for r in await fetch_by_keys(db, "analytics/error_buckets", build, run_ids):
        if r[0] == "transform" and r[3] is None:
            # ELSPETH 0.7.1 raises here too: a transform error must name a node of its run.
            raise AuditIntegrityError(f"transform_errors[run {r[1]}]", "a transform error names a node of its run",
                                      f"node {r[2]!r} not found")
        out.append(A.ErrorBucket(kind=r[0], run_id=r[1], node_id=r[2], plugin=r[3], schema_mode=r[4],
                                 count=r[5]))
    return out


async def _first_per_run(db: DbSession, name: str, table: Any, cls: type, time_col: str, id_col: str,
                         keys: Sequence[tuple[str, int, bool]], where: Any = None) -> list[Any]:
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
        rows = await db.fetch(statement, {"keys": key_set(db.dialect, run_ids), "n": n})
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
                                where=lambda t: t.c.status == NodeStateStatus.FAILED.value)


async def failing_nodes(db: DbSession, run_ids: Sequence[str]) -> list[A.FailingNode]:
    """Nodes with failed states, with their number, by node id."""
    def build() -> Select[Any]:
        s, n = db.tables.node_states, db.tables.nodes
        per_node = (select(s.c.run_id, s.c.node_id, func.count().label("failed"))
                    .where(in_keys(db.dialect, s.c.run_id), s.c.status == NodeStateStatus.FAILED.value)
                    .group_by(s.c.run_id, s.c.node_id).subquery("failing"))
        return (select(per_node, n.c.plugin_name, n.c.node_type)
                .select_from(per_node.outerjoin(n, and_(n.c.run_id == per_node.c.run_id,
                                                        n.c.node_id == per_node.c.node_id)))
                .order_by(per_node.c.run_id, per_node.c.node_id))

    out = []
    for r in await fetch_by_keys(db, "analytics/failing_nodes", build, run_ids):
        plugin, _ = _node_of(db, r[0], r[1], r[3], r[4], f"node_states[run {r[0]}, node {r[1]}]")
        out.append(A.FailingNode(run_id=r[0], node_id=r[1], plugin=plugin, failed_states=r[2]))
    return out


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
        n = db.tables.nodes
        return (select(per_node, n.c.plugin_name, n.c.node_type)
                .select_from(per_node.outerjoin(n, and_(n.c.run_id == per_node.c.run_id,
                                                        n.c.node_id == per_node.c.node_id)))
                .order_by(per_node.c.run_id, per_node.c.node_id))

    out = []
    for r in await fetch_by_keys(db, "analytics/llm_by_node", build, run_ids):
        plugin, _ = _node_of(db, r[0], r[1], r[7], r[8], f"calls[run {r[0]}, node {r[1]}]")
        out.append(A.NodeCalls(run_id=r[0], node_id=r[1], plugin=plugin, total=r[2], successful=r[3],
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
