"""Every lookup by a set of keys: one statement per call, whatever the number of keys.

Each function takes the request's `DbSession` and a key list and returns `(key, record)` pairs
(or records carrying their key); the loaders group them. Ordering that ELSPETH defines (states
by step and attempt, parents by ordinal, members by ordinal) is done here in SQL.

Each statement is compiled once per (epoch, dialect) and run prepared with the key set as its
one parameter (`_statements.py`, `_keys.py`); records are selected as `records.COLUMNS` lays
them out and mapped by position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.sql import ClauseElement

from ..errors import AuditIntegrityError
from . import records as R
from ._keys import in_keys, in_pairs, in_runs, key_set, pair_names, pair_set
from ._statements import fetch_by_keys, fetch_scoped, prepared, record_columns
from .session import DbSession

T = TypeVar("T")

def _outcome_columns(db: DbSession) -> list[Any]:
    o = db.tables.token_outcomes
    flag = o.c.completed if db.epoch >= 29 else o.c.is_terminal
    by_name = {"terminal_flag": flag.label("terminal_flag")}
    return [by_name.get(name) if name in by_name else (o.c[name] if name in o.c else null().label(name))
            for name in R.OUTCOME_COLUMNS]


def _records(cls: type[T], rows: Sequence[Any], epoch: int, offset: int = 0) -> list[T]:
    map_row = R.record_mapper(cls, epoch)
    if offset:
        return [map_row(r[offset:]) for r in rows]
    return [map_row(r) for r in rows]


def _group_concat(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.string_agg(column, literal("\x1f"))
    return func.group_concat(column, literal("\x1f"))


async def _by_key(db: DbSession, cls: type[T], table_name: str, key: str, keys: Sequence[str],
                  order: Sequence[str] = ()) -> list[T]:
    """Records of one table whose `key` is in `keys`, in `order`."""
    def build() -> Select[Any]:
        t = getattr(db.tables, table_name)
        stmt = select(*record_columns(t, cls)).where(in_keys(db.dialect, t.c[key]))
        return stmt.order_by(*(t.c[c] for c in order)) if order else stmt

    name = f"{table_name}/{key}/{','.join(order)}"
    return _records(cls, await fetch_by_keys(db, name, build, keys), db.epoch)


async def _by_id_in_scope(db: DbSession, cls: type[T], table_name: str, key: str,
                          keys: Sequence[str]) -> list[T]:
    """Records of a table with a `run_id`, by id; a scoped caller's only from its runs."""
    def build(scoped: bool) -> Select[Any]:
        t = getattr(db.tables, table_name)
        stmt = select(*record_columns(t, cls)).where(in_keys(db.dialect, t.c[key]))
        return stmt.where(in_runs(db.dialect, t.c.run_id)) if scoped else stmt

    return _records(cls, await fetch_scoped(db, f"{table_name}/{key}/", build, keys), db.epoch)


async def runs_by_id(db: DbSession, ids: Sequence[str]) -> list[R.RunRecord]:
    return await _by_id_in_scope(db, R.RunRecord, "runs", "run_id", ids)


async def nodes_by_key(db: DbSession, keys: Sequence[tuple[str, str]]) -> list[R.NodeRecord]:
    """Nodes are keyed per run: (run_id, node_id)."""
    scoped = db.allowed_runs is not None

    def build() -> Select[Any]:
        t = db.tables.nodes
        stmt = select(*record_columns(t, R.NodeRecord)).where(in_pairs(db.dialect, t.c.run_id, t.c.node_id))
        return stmt.where(in_runs(db.dialect, t.c.run_id)) if scoped else stmt

    values = pair_set(db.dialect, keys)
    names = pair_names(db.dialect)
    if db.allowed_runs is not None:
        values["runs"] = key_set(db.dialect, sorted(db.allowed_runs))
        names = (*names, "runs")
    statement = prepared(db, ("nodes/key", scoped), build, names)
    return _records(R.NodeRecord, await db.fetch(statement, values), db.epoch)


async def nodes_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.NodeRecord]:
    return await _by_key(db, R.NodeRecord, "nodes", "run_id", run_ids,
                         ("run_id", "sequence_in_pipeline", "registered_at", "node_id"))


async def edges_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.EdgeRecord]:
    return await _by_key(db, R.EdgeRecord, "edges", "run_id", run_ids, ("run_id", "created_at", "edge_id"))


async def edges_by_id(db: DbSession, ids: Sequence[str]) -> list[R.EdgeRecord]:
    return await _by_id_in_scope(db, R.EdgeRecord, "edges", "edge_id", ids)


async def rows_by_id(db: DbSession, ids: Sequence[str]) -> list[R.RowRecord]:
    return await _by_id_in_scope(db, R.RowRecord, "rows", "row_id", ids)


async def tokens_by_id(db: DbSession, ids: Sequence[str]) -> list[R.TokenRecord]:
    return await _by_id_in_scope(db, R.TokenRecord, "tokens", "token_id", ids)


async def tokens_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[R.TokenRecord]:
    return await _by_key(db, R.TokenRecord, "tokens", "row_id", row_ids, ("row_id", "created_at", "token_id"))


async def parents_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.ParentLink]:
    def build() -> Select[Any]:
        tp, tok = db.tables.token_parents, db.tables.tokens
        # The outer join keeps a dangling parent reference visible (parent None) so it is
        # reported instead of silently missing.
        return (select(tp.c.token_id, tp.c.parent_token_id, tp.c.ordinal, *record_columns(tok, R.TokenRecord))
                .select_from(tp.outerjoin(tok, tok.c.token_id == tp.c.parent_token_id))
                .where(in_keys(db.dialect, tp.c.token_id))
                .order_by(tp.c.token_id, tp.c.ordinal))

    rows = await fetch_by_keys(db, "parents_of_tokens", build, token_ids)
    found = [r for r in rows if r[3] is not None]
    parents = iter(R.tokens_from_tuples(found, db.epoch, 3))
    return [R.ParentLink(r[0], r[1], r[2], None if r[3] is None else next(parents)) for r in rows]


async def children_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, int, R.TokenRecord]]:
    """(parent_token_id, ordinal, child) for each child of the given tokens."""
    def build() -> Select[Any]:
        tp, tok = db.tables.token_parents, db.tables.tokens
        return (select(tp.c.parent_token_id, tp.c.ordinal, *record_columns(tok, R.TokenRecord))
                .select_from(tp.outerjoin(tok, tok.c.token_id == tp.c.token_id))
                .where(in_keys(db.dialect, tp.c.parent_token_id))
                .order_by(tp.c.parent_token_id, tok.c.created_at, tp.c.token_id))

    rows = await fetch_by_keys(db, "children_of_tokens", build, token_ids)
    token = R.record_mapper(R.TokenRecord, db.epoch)
    out = []
    for r in rows:
        if r[2] is None:
            raise AuditIntegrityError(f"token_parents[parent {r[0]}]",
                                      "every child in token_parents must exist in tokens")
        out.append((r[0], r[1], token(r[2:])))
    return out


async def outcomes_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.OutcomeRecord]:
    def build() -> Select[Any]:
        o = db.tables.token_outcomes
        columns = _outcome_columns(db)
        if db.epoch < 29:
            te = db.tables.transform_errors
            # Epoch 2's `routed` is a gate route or an on_error route; the token's transform
            # error destinations are the evidence, fetched in the same statement.
            columns.append(select(_group_concat(te.c.destination, db.dialect))
                           .where(te.c.token_id == o.c.token_id).scalar_subquery()
                           .label("error_destinations"))
        return (select(*columns).where(in_keys(db.dialect, o.c.token_id))
                .order_by(o.c.token_id, o.c.recorded_at, o.c.outcome_id))

    rows = await fetch_by_keys(db, "outcomes_of_tokens", build, token_ids)
    if db.epoch >= 29:
        return [R.outcome_from_tuple(r, db.epoch) for r in rows]
    return [R.outcome_from_tuple(r, db.epoch, r[-1]) for r in rows]


async def node_states_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.NodeStateRecord]:
    return await _by_key(db, R.NodeStateRecord, "node_states", "token_id", token_ids,
                         ("token_id", "step_index", "attempt"))


async def node_states_by_id(db: DbSession, ids: Sequence[str]) -> list[R.NodeStateRecord]:
    return await _by_id_in_scope(db, R.NodeStateRecord, "node_states", "state_id", ids)


async def calls_by_id(db: DbSession, ids: Sequence[str]) -> list[R.CallRecord]:
    """Calls by id; a scoped caller's only those whose state or operation is in its runs."""
    def build(scoped: bool) -> Select[Any]:
        c = db.tables.calls
        stmt = select(*record_columns(c, R.CallRecord)).where(in_keys(db.dialect, c.c.call_id))
        if not scoped:
            return stmt
        s, op = db.tables.node_states, db.tables.operations
        return stmt.where(or_(
            exists().where(s.c.state_id == c.c.state_id, in_runs(db.dialect, s.c.run_id)),
            exists().where(op.c.operation_id == c.c.operation_id, in_runs(db.dialect, op.c.run_id))))

    return _records(R.CallRecord, await fetch_scoped(db, "calls/call_id/", build, ids), db.epoch)


async def calls_of_states(db: DbSession, state_ids: Sequence[str]) -> list[R.CallRecord]:
    return await _by_key(db, R.CallRecord, "calls", "state_id", state_ids, ("state_id", "call_index"))


async def calls_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.CallRecord]]:
    """All calls of each token's node states, in state then call order."""
    def build() -> Select[Any]:
        c, s = db.tables.calls, db.tables.node_states
        return (select(s.c.token_id, *record_columns(c, R.CallRecord))
                .select_from(c.join(s, s.c.state_id == c.c.state_id))
                .where(in_keys(db.dialect, s.c.token_id))
                .order_by(s.c.token_id, s.c.step_index, s.c.attempt, c.c.call_index))

    rows = await fetch_by_keys(db, "calls_of_tokens", build, token_ids)
    call = R.record_mapper(R.CallRecord, db.epoch)
    return [(r[0], call(r[1:])) for r in rows]


async def calls_of_operations(db: DbSession, operation_ids: Sequence[str]) -> list[R.CallRecord]:
    return await _by_key(db, R.CallRecord, "calls", "operation_id", operation_ids,
                         ("operation_id", "call_index"))


async def routing_events_of_states(db: DbSession, state_ids: Sequence[str]) -> list[R.RoutingEventRecord]:
    return await _by_key(db, R.RoutingEventRecord, "routing_events", "state_id", state_ids,
                         ("state_id", "routing_group_id", "ordinal"))


async def routing_events_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.RoutingEventRecord]]:
    def build() -> Select[Any]:
        e, s = db.tables.routing_events, db.tables.node_states
        return (select(s.c.token_id, *record_columns(e, R.RoutingEventRecord))
                .select_from(e.join(s, s.c.state_id == e.c.state_id))
                .where(in_keys(db.dialect, s.c.token_id))
                .order_by(s.c.token_id, s.c.step_index, s.c.attempt, e.c.ordinal))

    rows = await fetch_by_keys(db, "routing_events_of_tokens", build, token_ids)
    mapper = R.record_mapper(R.RoutingEventRecord, db.epoch)
    return [(r[0], mapper(r[1:])) for r in rows]


async def operations_by_id(db: DbSession, ids: Sequence[str]) -> list[R.OperationRecord]:
    return await _by_id_in_scope(db, R.OperationRecord, "operations", "operation_id", ids)


async def operations_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.OperationRecord]:
    return await _by_key(db, R.OperationRecord, "operations", "run_id", run_ids,
                         ("run_id", "started_at", "operation_id"))


async def batches_by_id(db: DbSession, ids: Sequence[str]) -> list[R.BatchRecord]:
    return await _by_id_in_scope(db, R.BatchRecord, "batches", "batch_id", ids)


async def batch_members_of_batches(db: DbSession, batch_ids: Sequence[str]) -> list[R.BatchMemberRecord]:
    def build() -> Select[Any]:
        m = db.tables.batch_members
        return (select(m.c.batch_id, m.c.token_id, m.c.ordinal).where(in_keys(db.dialect, m.c.batch_id))
                .order_by(m.c.batch_id, m.c.ordinal))

    rows = await fetch_by_keys(db, "batch_members_of_batches", build, batch_ids)
    return [R.BatchMemberRecord(r[0], r[1], r[2]) for r in rows]


async def batches_of_member_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, int, R.BatchRecord]]:
    """(member token id, ordinal, batch) for every batch a token was a member of."""
    def build() -> Select[Any]:
        m, b = db.tables.batch_members, db.tables.batches
        return (select(m.c.token_id, m.c.ordinal, *record_columns(b, R.BatchRecord))
                .select_from(m.join(b, b.c.batch_id == m.c.batch_id))
                .where(in_keys(db.dialect, m.c.token_id))
                .order_by(m.c.token_id, b.c.created_at, b.c.batch_id))

    rows = await fetch_by_keys(db, "batches_of_member_tokens", build, token_ids)
    mapper = R.record_mapper(R.BatchRecord, db.epoch)
    return [(r[0], r[1], mapper(r[2:])) for r in rows]


async def outputs_of_batches(db: DbSession, batch_ids: Sequence[str]) -> list[tuple[str, R.TokenRecord]]:
    """(batch id, output token): the tokens an aggregation flush produced.

    `batch_outputs` is never written, and token_parents links an output to ONE member only
    (epoch 2: the triggering or first member; epoch 29: the first). A consumed member has no
    other children, so the children of a batch's members are exactly its outputs.
    """
    def build() -> Select[Any]:
        m, tp, tok = db.tables.batch_members, db.tables.token_parents, db.tables.tokens
        return (select(m.c.batch_id, *record_columns(tok, R.TokenRecord))
                .select_from(m.join(tp, tp.c.parent_token_id == m.c.token_id)
                             .join(tok, tok.c.token_id == tp.c.token_id))
                .where(in_keys(db.dialect, m.c.batch_id))
                .where(tok.c.expand_group_id.is_not(None))
                .order_by(m.c.batch_id, tok.c.created_at, tok.c.token_id))

    rows = await fetch_by_keys(db, "outputs_of_batches", build, batch_ids)
    tokens = R.tokens_from_tuples(rows, db.epoch, 1)
    return [(r[0], t) for r, t in zip(rows, tokens, strict=True)]


async def producing_batches_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.BatchRecord]]:
    """(output token id, batch) for tokens an aggregation flush produced."""
    def build() -> Select[Any]:
        tp, m, b, tok = (db.tables.token_parents, db.tables.batch_members, db.tables.batches,
                         db.tables.tokens)
        stmt = (select(tp.c.token_id, *record_columns(b, R.BatchRecord))
                .select_from(tp.join(tok, tok.c.token_id == tp.c.token_id)
                             .join(m, m.c.token_id == tp.c.parent_token_id)
                             .join(b, b.c.batch_id == m.c.batch_id))
                .where(in_keys(db.dialect, tp.c.token_id))
                .where(tok.c.expand_group_id.is_not(None)))
        if db.epoch >= 29:
            # epoch 29 records the link itself; require it to agree with the parent's batch.
            stmt = stmt.where(b.c.expansion_group_id == tok.c.expand_group_id)
        return stmt.order_by(tp.c.token_id, b.c.created_at)

    rows = await fetch_by_keys(db, "producing_batches_of_tokens", build, token_ids)
    mapper = R.record_mapper(R.BatchRecord, db.epoch)
    return [(r[0], mapper(r[1:])) for r in rows]


def _validation_errors_sqlite(db: DbSession) -> ClauseElement:
    """SQLite: the rows' validation errors, visiting each error once.

    Matching inside a join from `rows` would compare every asked row with every error of the
    run (validation_errors has no index on row_id or row_hash), 50 ms for 1,000 rows of a
    25,000-row run. The asked rows are materialized, and each error looks its rows up there
    (CROSS JOIN makes SQLite keep that order). The two match kinds are disjoint (row_id set or
    not), so their UNION ALL is exactly the one join on their disjunction.
    """
    v = db.tables.validation_errors
    columns = ", ".join(f"v.{c}" if c in v.c else f"NULL AS {c}" for c in R.COLUMNS[R.ValidationErrorRecord])
    hash_match = "v.row_hash = k.source_data_hash AND v.run_id = k.run_id"
    parts = []
    if db.epoch >= 29:
        parts.append(f"SELECT k.row_id AS owner_row_id, 1 AS by_id, {columns} "
                     "FROM validation_errors AS v CROSS JOIN k ON v.row_id = k.row_id")
        hash_match = "v.row_id IS NULL AND " + hash_match
    parts.append(f"SELECT k.row_id AS owner_row_id, 0 AS by_id, {columns} "
                 f"FROM validation_errors AS v CROSS JOIN k ON {hash_match}")
    # MATERIALIZED (SQLite 3.35+) keeps the planner from folding k back into the joins.
    materialized = "MATERIALIZED " if sqlite3.sqlite_version_info >= (3, 35) else ""
    sql = (f"WITH k AS {materialized}(SELECT row_id, source_data_hash, run_id FROM rows "
           "WHERE row_id IN (SELECT value FROM json_each(:keys))) "
           f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY owner_row_id, created_at, error_id")
    return text(sql).bindparams(bindparam("keys", type_=String))


async def validation_errors_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[tuple[str, str, R.ValidationErrorRecord]]:
    """(row id, matched by "ROW_ID" | "ROW_HASH", error) for each row's validation errors.

    Epoch 2 links them only by content hash, so rows with identical content share errors;
    epoch 29 links by row_id and, like ELSPETH's explain, falls back to the hash.
    """
    def build() -> ClauseElement:
        if db.dialect == "sqlite":
            return _validation_errors_sqlite(db)
        v, rw = db.tables.validation_errors, db.tables.rows
        columns = record_columns(v, R.ValidationErrorRecord)
        hash_match = and_(v.c.row_hash == rw.c.source_data_hash, v.c.run_id == rw.c.run_id)
        if db.epoch >= 29:
            cond = or_(v.c.row_id == rw.c.row_id, and_(v.c.row_id.is_(None), hash_match))
            by_id: ColumnElement[bool] = v.c.row_id.is_not(None)
        else:
            cond, by_id = hash_match, literal(False)
        return (select(rw.c.row_id, by_id.label("by_id"), *columns)
                .select_from(rw.join(v, cond)).where(in_keys(db.dialect, rw.c.row_id))
                .order_by(rw.c.row_id, v.c.created_at, v.c.error_id))

    rows = await fetch_by_keys(db, "validation_errors_of_rows", build, row_ids)
    mapper = R.record_mapper(R.ValidationErrorRecord, db.epoch)
    return [(r[0], "ROW_ID" if r[1] else "ROW_HASH", mapper(r[2:])) for r in rows]


async def transform_errors_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.TransformErrorRecord]:
    return await _by_key(db, R.TransformErrorRecord, "transform_errors", "token_id", token_ids,
                         ("token_id", "created_at", "error_id"))


async def artifacts_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.ArtifactRecord]]:
    """(token id, artifact) for what the token's sink writes produced.

    epoch 2: artifacts.produced_by_state_id -> the token's sink state; epoch 29:
    sink_effect_members -> sink_effects -> artifacts.
    """
    def build() -> Select[Any]:
        a = db.tables.artifacts
        columns = record_columns(a, R.ArtifactRecord)
        if db.epoch >= 29:
            sem = db.tables.sink_effect_members
            assert sem is not None
            stmt = (select(sem.c.token_id, *columns)
                    .select_from(sem.join(a, a.c.sink_effect_id == sem.c.effect_id))
                    .where(in_keys(db.dialect, sem.c.token_id))
                    .distinct())
            key = sem.c.token_id
        else:
            s = db.tables.node_states
            stmt = (select(s.c.token_id, *columns)
                    .select_from(s.join(a, a.c.produced_by_state_id == s.c.state_id))
                    .where(in_keys(db.dialect, s.c.token_id)))
            key = s.c.token_id
        return stmt.order_by(key, a.c.created_at, a.c.artifact_id)

    rows = await fetch_by_keys(db, "artifacts_of_tokens", build, token_ids)
    artifact = R.record_mapper(R.ArtifactRecord, db.epoch)
    return [(r[0], artifact(r[1:])) for r in rows]


async def checkpoints_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.CheckpointRecord]:
    return await _by_key(db, R.CheckpointRecord, "checkpoints", "run_id", run_ids, ("run_id", "sequence_number"))


async def preflight_results_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.PreflightResultRecord]:
    return await _by_key(db, R.PreflightResultRecord, "preflight_results", "run_id", run_ids,
                         ("run_id", "created_at", "result_id"))


async def scheduler_events_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.SchedulerEventRecord]:
    if db.tables.scheduler_events is None:
        return []
    return await _by_key(db, R.SchedulerEventRecord, "scheduler_events", "token_id", token_ids,
                         ("token_id", "recorded_at", "event_id"))


async def terminal_outcomes_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """(row id, token id, sink name) of every terminal outcome of the rows' tokens.

    explain() by row resolves its token from these, like ELSPETH's get_token_outcomes_for_row.
    """
    def build(scoped: bool) -> Select[Any]:
        o, tok = db.tables.token_outcomes, db.tables.tokens
        terminal = o.c.completed == 1 if db.epoch >= 29 else o.c.is_terminal == 1
        stmt = (select(tok.c.row_id, o.c.token_id, o.c.sink_name)
                .select_from(o.join(tok, tok.c.token_id == o.c.token_id))
                .where(in_keys(db.dialect, tok.c.row_id)).where(terminal))
        if scoped:  # AMBIGUOUS_LINEAGE's candidates never name a token of another run
            stmt = stmt.where(in_runs(db.dialect, tok.c.run_id))
        return stmt.order_by(tok.c.row_id, o.c.recorded_at, o.c.token_id)

    rows = await fetch_scoped(db, "terminal_outcomes_of_rows", build, row_ids)
    return [(r[0], r[1], r[2]) for r in rows]


async def edge_token_counts(db: DbSession, run_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    """(run id, edge id, tokens observed crossing it) for every edge of the runs.

    A gate's route is recorded as routing events, one per token sent down it; any other edge is
    crossed when one token's consecutive node states are at its two ends (retries at the same
    node are not crossings). An edge with routing events is counted by them alone, so a token
    moved by a gate is not counted twice.
    """
    def build() -> ClauseElement:
        s, re_, e = db.tables.node_states, db.tables.routing_events, db.tables.edges
        routed = (select(s.c.run_id, re_.c.edge_id, func.count().label("n"))
                  .select_from(re_.join(s, s.c.state_id == re_.c.state_id))
                  .where(in_keys(db.dialect, s.c.run_id))
                  .group_by(s.c.run_id, re_.c.edge_id))
        prev = func.lag(s.c.node_id).over(partition_by=s.c.token_id, order_by=(s.c.step_index, s.c.attempt))
        seq = (select(s.c.run_id, s.c.token_id, s.c.node_id, prev.label("prev_node"))
               .where(in_keys(db.dialect, s.c.run_id)).subquery())
        # A token's first state was reached from where its (first) parent ended: a merged token
        # leaves the coalesce node, an expansion child leaves the expanding transform.
        tp, ps = db.tables.token_parents, s.alias("parent_state")
        parent_end = (select(ps.c.node_id).select_from(ps.join(tp, tp.c.parent_token_id == ps.c.token_id))
                      .where(tp.c.token_id == seq.c.token_id, tp.c.ordinal == 0)
                      .order_by(ps.c.step_index.desc(), ps.c.attempt.desc()).limit(1).scalar_subquery())
        # Materialized: `from_node` is used three times below, and a flattened subquery would
        # evaluate its correlated parent lookup each time.
        steps = (select(seq.c.run_id, seq.c.token_id, seq.c.node_id,
                        func.coalesce(seq.c.prev_node, parent_end).label("from_node"))
                 .cte("steps").prefix_with("MATERIALIZED"))
        # Grouped by node pair first (an aggregate subquery is never flattened into the join):
        # the join with edges and the routed-edge test then run once per pair, not once per
        # node state (routing_events has no index on edge_id: per state, that was a scan each).
        pairs = (select(steps.c.run_id, steps.c.from_node, steps.c.node_id,
                        func.count(func.distinct(steps.c.token_id)).label("n"))
                 .where(steps.c.from_node != steps.c.node_id)
                 .group_by(steps.c.run_id, steps.c.from_node, steps.c.node_id).subquery())
        crossed = (select(e.c.run_id, e.c.edge_id, pairs.c.n)
                   .select_from(pairs.join(e, and_(e.c.run_id == pairs.c.run_id,
                                                   e.c.from_node_id == pairs.c.from_node,
                                                   e.c.to_node_id == pairs.c.node_id)))
                   .where(~exists().where(re_.c.edge_id == e.c.edge_id)))
        return union_all(routed, crossed)

    rows = await db.fetch_heavy(prepared(db, "edge_token_counts", build), {"keys": key_set(db.dialect, run_ids)})
    return [(r[0], r[1], int(r[2])) for r in rows]
