"""Every lookup by a set of keys: one statement per call, whatever the number of keys.

Each function takes the request's `DbSession` and a key list and returns `(key, record)` pairs
(or records carrying their key); the loaders group them. Ordering that ELSPETH defines (states
by step and attempt, parents by ordinal, members by ordinal) is done here in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select

from ..errors import AuditIntegrityError
from . import records as R
from ._keys import in_keys, in_pairs
from .session import DbSession


def _group_concat(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.string_agg(column, literal("\x1f"))
    return func.group_concat(column, literal("\x1f"))


async def runs_by_id(db: DbSession, ids: Sequence[str]) -> list[R.RunRecord]:
    t = db.tables.runs
    rows = await db.all(select(t).where(in_keys(t.c.run_id, ids, db.dialect)))
    return [R.run_from_row(r, db.epoch) for r in rows]


async def nodes_by_key(db: DbSession, keys: Sequence[tuple[str, str]]) -> list[R.NodeRecord]:
    """Nodes are keyed per run: (run_id, node_id)."""
    t = db.tables.nodes
    rows = await db.all(select(t).where(in_pairs(t.c.run_id, t.c.node_id, keys, db.dialect)))
    return [R.node_from_row(r, db.epoch) for r in rows]


async def nodes_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.NodeRecord]:
    t = db.tables.nodes
    rows = await db.all(select(t).where(in_keys(t.c.run_id, run_ids, db.dialect))
                        .order_by(t.c.run_id, t.c.sequence_in_pipeline, t.c.registered_at, t.c.node_id))
    return [R.node_from_row(r, db.epoch) for r in rows]


async def edges_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.EdgeRecord]:
    t = db.tables.edges
    rows = await db.all(select(t).where(in_keys(t.c.run_id, run_ids, db.dialect))
                        .order_by(t.c.run_id, t.c.created_at, t.c.edge_id))
    return [R.edge_from_row(r, db.epoch) for r in rows]


async def edges_by_id(db: DbSession, ids: Sequence[str]) -> list[R.EdgeRecord]:
    t = db.tables.edges
    rows = await db.all(select(t).where(in_keys(t.c.edge_id, ids, db.dialect)))
    return [R.edge_from_row(r, db.epoch) for r in rows]


async def rows_by_id(db: DbSession, ids: Sequence[str]) -> list[R.RowRecord]:
    t = db.tables.rows
    rows = await db.all(select(t).where(in_keys(t.c.row_id, ids, db.dialect)))
    return [R.row_from_row(r, db.epoch) for r in rows]


async def tokens_by_id(db: DbSession, ids: Sequence[str]) -> list[R.TokenRecord]:
    t = db.tables.tokens
    rows = await db.all(select(t).where(in_keys(t.c.token_id, ids, db.dialect)))
    return [R.token_from_row(r, db.epoch) for r in rows]


async def tokens_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[R.TokenRecord]:
    t = db.tables.tokens
    rows = await db.all(select(t).where(in_keys(t.c.row_id, row_ids, db.dialect))
                        .order_by(t.c.row_id, t.c.created_at, t.c.token_id))
    return [R.token_from_row(r, db.epoch) for r in rows]


async def parents_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.ParentLink]:
    tp, tok = db.tables.token_parents, db.tables.tokens
    # The outer join keeps a dangling parent reference visible (parent None) so it is reported
    # instead of silently missing.
    rows = await db.all(
        select(tp.c.token_id.label("child_key"), tp.c.parent_token_id.label("parent_key"),
               tp.c.ordinal.label("link_ordinal"), tok)
        .select_from(tp.outerjoin(tok, tok.c.token_id == tp.c.parent_token_id))
        .where(in_keys(tp.c.token_id, token_ids, db.dialect))
        .order_by(tp.c.token_id, tp.c.ordinal))
    return [R.ParentLink(r.child_key, r.parent_key, r.link_ordinal,
                         None if r.token_id is None else R.token_from_row(r, db.epoch))
            for r in rows]


async def children_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, int, R.TokenRecord]]:
    """(parent_token_id, ordinal, child) for each child of the given tokens."""
    tp, tok = db.tables.token_parents, db.tables.tokens
    rows = await db.all(
        select(tp.c.parent_token_id.label("parent_key"), tp.c.ordinal.label("link_ordinal"), tok)
        .select_from(tp.outerjoin(tok, tok.c.token_id == tp.c.token_id))
        .where(in_keys(tp.c.parent_token_id, token_ids, db.dialect))
        .order_by(tp.c.parent_token_id, tok.c.created_at, tp.c.token_id))
    out = []
    for r in rows:
        if r.token_id is None:
            raise AuditIntegrityError(f"token_parents[parent {r.parent_key}]",
                                      "every child in token_parents must exist in tokens")
        out.append((r.parent_key, r.link_ordinal, R.token_from_row(r, db.epoch)))
    return out


async def outcomes_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.OutcomeRecord]:
    o = db.tables.token_outcomes
    if db.epoch >= 29:
        rows = await db.all(select(o).where(in_keys(o.c.token_id, token_ids, db.dialect))
                            .order_by(o.c.token_id, o.c.recorded_at, o.c.outcome_id))
        return [R.outcome_from_row(r, db.epoch) for r in rows]
    te = db.tables.transform_errors
    # Epoch 2's `routed` is a gate route or an on_error route; the token's transform error
    # destinations are the evidence, fetched in the same statement.
    destinations = (select(_group_concat(te.c.destination, db.dialect))
                    .where(te.c.token_id == o.c.token_id).scalar_subquery().label("error_destinations"))
    rows = await db.all(select(o, destinations).where(in_keys(o.c.token_id, token_ids, db.dialect))
                        .order_by(o.c.token_id, o.c.recorded_at, o.c.outcome_id))
    return [R.outcome_from_row(r, db.epoch, r.error_destinations) for r in rows]


async def node_states_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.NodeStateRecord]:
    s = db.tables.node_states
    rows = await db.all(select(s).where(in_keys(s.c.token_id, token_ids, db.dialect))
                        .order_by(s.c.token_id, s.c.step_index, s.c.attempt))
    return [R.node_state_from_row(r, db.epoch) for r in rows]


async def node_states_by_id(db: DbSession, ids: Sequence[str]) -> list[R.NodeStateRecord]:
    s = db.tables.node_states
    rows = await db.all(select(s).where(in_keys(s.c.state_id, ids, db.dialect)))
    return [R.node_state_from_row(r, db.epoch) for r in rows]


async def calls_by_id(db: DbSession, ids: Sequence[str]) -> list[R.CallRecord]:
    c = db.tables.calls
    rows = await db.all(select(c).where(in_keys(c.c.call_id, ids, db.dialect)))
    return [R.call_from_row(r, db.epoch) for r in rows]


async def calls_of_states(db: DbSession, state_ids: Sequence[str]) -> list[R.CallRecord]:
    c = db.tables.calls
    rows = await db.all(select(c).where(in_keys(c.c.state_id, state_ids, db.dialect))
                        .order_by(c.c.state_id, c.c.call_index))
    return [R.call_from_row(r, db.epoch) for r in rows]


async def calls_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.CallRecord]]:
    """All calls of each token's node states, in state then call order."""
    c, s = db.tables.calls, db.tables.node_states
    rows = await db.all(
        select(s.c.token_id.label("owner_token_id"), c)
        .select_from(c.join(s, s.c.state_id == c.c.state_id))
        .where(in_keys(s.c.token_id, token_ids, db.dialect))
        .order_by(s.c.token_id, s.c.step_index, s.c.attempt, c.c.call_index))
    return [(r.owner_token_id, R.call_from_row(r, db.epoch)) for r in rows]


async def calls_of_operations(db: DbSession, operation_ids: Sequence[str]) -> list[R.CallRecord]:
    c = db.tables.calls
    rows = await db.all(select(c).where(in_keys(c.c.operation_id, operation_ids, db.dialect))
                        .order_by(c.c.operation_id, c.c.call_index))
    return [R.call_from_row(r, db.epoch) for r in rows]


async def routing_events_of_states(db: DbSession, state_ids: Sequence[str]) -> list[R.RoutingEventRecord]:
    e = db.tables.routing_events
    rows = await db.all(select(e).where(in_keys(e.c.state_id, state_ids, db.dialect))
                        .order_by(e.c.state_id, e.c.routing_group_id, e.c.ordinal))
    return [R.routing_event_from_row(r, db.epoch) for r in rows]


async def routing_events_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.RoutingEventRecord]]:
    e, s = db.tables.routing_events, db.tables.node_states
    rows = await db.all(
        select(s.c.token_id.label("owner_token_id"), e)
        .select_from(e.join(s, s.c.state_id == e.c.state_id))
        .where(in_keys(s.c.token_id, token_ids, db.dialect))
        .order_by(s.c.token_id, s.c.step_index, s.c.attempt, e.c.ordinal))
    return [(r.owner_token_id, R.routing_event_from_row(r, db.epoch)) for r in rows]


async def operations_by_id(db: DbSession, ids: Sequence[str]) -> list[R.OperationRecord]:
    t = db.tables.operations
    rows = await db.all(select(t).where(in_keys(t.c.operation_id, ids, db.dialect)))
    return [R.operation_from_row(r, db.epoch) for r in rows]


async def operations_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.OperationRecord]:
    t = db.tables.operations
    rows = await db.all(select(t).where(in_keys(t.c.run_id, run_ids, db.dialect))
                        .order_by(t.c.run_id, t.c.started_at, t.c.operation_id))
    return [R.operation_from_row(r, db.epoch) for r in rows]


async def batches_by_id(db: DbSession, ids: Sequence[str]) -> list[R.BatchRecord]:
    b = db.tables.batches
    rows = await db.all(select(b).where(in_keys(b.c.batch_id, ids, db.dialect)))
    return [R.batch_from_row(r, db.epoch) for r in rows]


async def batch_members_of_batches(db: DbSession, batch_ids: Sequence[str]) -> list[R.BatchMemberRecord]:
    m = db.tables.batch_members
    rows = await db.all(select(m.c.batch_id, m.c.token_id, m.c.ordinal)
                        .where(in_keys(m.c.batch_id, batch_ids, db.dialect))
                        .order_by(m.c.batch_id, m.c.ordinal))
    return [R.BatchMemberRecord(r.batch_id, r.token_id, r.ordinal) for r in rows]


async def batches_of_member_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, int, R.BatchRecord]]:
    """(member token id, ordinal, batch) for every batch a token was a member of."""
    m, b = db.tables.batch_members, db.tables.batches
    rows = await db.all(
        select(m.c.token_id.label("member_token_id"), m.c.ordinal.label("member_ordinal"), b)
        .select_from(m.join(b, b.c.batch_id == m.c.batch_id))
        .where(in_keys(m.c.token_id, token_ids, db.dialect))
        .order_by(m.c.token_id, b.c.created_at, b.c.batch_id))
    return [(r.member_token_id, r.member_ordinal, R.batch_from_row(r, db.epoch)) for r in rows]


async def outputs_of_batches(db: DbSession, batch_ids: Sequence[str]) -> list[tuple[str, R.TokenRecord]]:
    """(batch id, output token): the tokens an aggregation flush produced.

    `batch_outputs` is never written, and token_parents links an output to ONE member only
    (epoch 2: the triggering or first member; epoch 29: the first). A consumed member has no
    other children, so the children of a batch's members are exactly its outputs.
    """
    m, tp, tok = db.tables.batch_members, db.tables.token_parents, db.tables.tokens
    rows = await db.all(
        select(m.c.batch_id.label("owner_batch_id"), tok)
        .select_from(m.join(tp, tp.c.parent_token_id == m.c.token_id)
                     .join(tok, tok.c.token_id == tp.c.token_id))
        .where(in_keys(m.c.batch_id, batch_ids, db.dialect))
        .where(tok.c.expand_group_id.is_not(None))
        .order_by(m.c.batch_id, tok.c.created_at, tok.c.token_id))
    return [(r.owner_batch_id, R.token_from_row(r, db.epoch)) for r in rows]


async def producing_batches_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.BatchRecord]]:
    """(output token id, batch) for tokens an aggregation flush produced."""
    tp, m, b, tok = (db.tables.token_parents, db.tables.batch_members, db.tables.batches,
                     db.tables.tokens)
    stmt = (select(tp.c.token_id.label("output_token_id"), b)
            .select_from(tp.join(tok, tok.c.token_id == tp.c.token_id)
                         .join(m, m.c.token_id == tp.c.parent_token_id)
                         .join(b, b.c.batch_id == m.c.batch_id))
            .where(in_keys(tp.c.token_id, token_ids, db.dialect))
            .where(tok.c.expand_group_id.is_not(None)))
    if db.epoch >= 29:
        # epoch 29 records the link itself; require it to agree with the parent's batch.
        stmt = stmt.where(b.c.expansion_group_id == tok.c.expand_group_id)
    rows = await db.all(stmt.order_by(tp.c.token_id, b.c.created_at))
    return [(r.output_token_id, R.batch_from_row(r, db.epoch)) for r in rows]


async def validation_errors_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[tuple[str, str, R.ValidationErrorRecord]]:
    """(row id, matched by "ROW_ID" | "ROW_HASH", error) for each row's validation errors.

    Epoch 2 links them only by content hash, so rows with identical content share errors;
    epoch 29 links by row_id and, like ELSPETH's explain, falls back to the hash.
    """
    v, rw = db.tables.validation_errors, db.tables.rows
    hash_match = and_(v.c.row_hash == rw.c.source_data_hash, v.c.run_id == rw.c.run_id)
    if db.epoch >= 29:
        by_id = v.c.row_id == rw.c.row_id
        cond = or_(by_id, and_(v.c.row_id.is_(None), hash_match))
        rows = await db.all(
            select(rw.c.row_id.label("owner_row_id"), v.c.row_id.is_not(None).label("by_id"), v)
            .select_from(rw.join(v, cond)).where(in_keys(rw.c.row_id, row_ids, db.dialect))
            .order_by(rw.c.row_id, v.c.created_at, v.c.error_id))
        return [(r.owner_row_id, "ROW_ID" if r.by_id else "ROW_HASH",
                 R.validation_error_from_row(r, db.epoch)) for r in rows]
    rows = await db.all(
        select(rw.c.row_id.label("owner_row_id"), v)
        .select_from(rw.join(v, hash_match)).where(in_keys(rw.c.row_id, row_ids, db.dialect))
        .order_by(rw.c.row_id, v.c.created_at, v.c.error_id))
    return [(r.owner_row_id, "ROW_HASH", R.validation_error_from_row(r, db.epoch)) for r in rows]


async def transform_errors_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.TransformErrorRecord]:
    t = db.tables.transform_errors
    rows = await db.all(select(t).where(in_keys(t.c.token_id, token_ids, db.dialect))
                        .order_by(t.c.token_id, t.c.created_at, t.c.error_id))
    return [R.transform_error_from_row(r, db.epoch) for r in rows]


async def artifacts_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[tuple[str, R.ArtifactRecord]]:
    """(token id, artifact) for what the token's sink writes produced.

    epoch 2: artifacts.produced_by_state_id -> the token's sink state; epoch 29:
    sink_effect_members -> sink_effects -> artifacts.
    """
    a = db.tables.artifacts
    if db.epoch >= 29:
        sem = db.tables.sink_effect_members
        assert sem is not None
        stmt = (select(sem.c.token_id.label("owner_token_id"), a)
                .select_from(sem.join(a, a.c.sink_effect_id == sem.c.effect_id))
                .where(in_keys(sem.c.token_id, token_ids, db.dialect))
                .distinct())
        key = sem.c.token_id
    else:
        s = db.tables.node_states
        stmt = (select(s.c.token_id.label("owner_token_id"), a)
                .select_from(s.join(a, a.c.produced_by_state_id == s.c.state_id))
                .where(in_keys(s.c.token_id, token_ids, db.dialect)))
        key = s.c.token_id
    rows = await db.all(stmt.order_by(key, a.c.created_at, a.c.artifact_id))
    return [(r.owner_token_id, R.artifact_from_row(r, db.epoch)) for r in rows]


async def checkpoints_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.CheckpointRecord]:
    t = db.tables.checkpoints
    rows = await db.all(select(t).where(in_keys(t.c.run_id, run_ids, db.dialect))
                        .order_by(t.c.run_id, t.c.sequence_number))
    return [R.checkpoint_from_row(r, db.epoch) for r in rows]


async def preflight_results_of_runs(db: DbSession, run_ids: Sequence[str]) -> list[R.PreflightResultRecord]:
    t = db.tables.preflight_results
    rows = await db.all(select(t).where(in_keys(t.c.run_id, run_ids, db.dialect))
                        .order_by(t.c.run_id, t.c.created_at, t.c.result_id))
    return [R.preflight_from_row(r, db.epoch) for r in rows]


async def scheduler_events_of_tokens(db: DbSession, token_ids: Sequence[str]) -> list[R.SchedulerEventRecord]:
    t = db.tables.scheduler_events
    if t is None:
        return []
    rows = await db.all(select(t).where(in_keys(t.c.token_id, token_ids, db.dialect))
                        .order_by(t.c.token_id, t.c.recorded_at, t.c.event_id))
    return [R.scheduler_event_from_row(r, db.epoch) for r in rows]


async def terminal_outcomes_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """(row id, token id, sink name) of every terminal outcome of the rows' tokens.

    explain() by row resolves its token from these, like ELSPETH's get_token_outcomes_for_row.
    """
    o, tok = db.tables.token_outcomes, db.tables.tokens
    terminal = o.c.completed == 1 if db.epoch >= 29 else o.c.is_terminal == 1
    rows = await db.all(
        select(tok.c.row_id, o.c.token_id, o.c.sink_name)
        .select_from(o.join(tok, tok.c.token_id == o.c.token_id))
        .where(in_keys(tok.c.row_id, row_ids, db.dialect)).where(terminal)
        .order_by(tok.c.row_id, o.c.recorded_at, o.c.token_id))
    return [(r.row_id, r.token_id, r.sink_name) for r in rows]


async def edge_token_counts(db: DbSession, run_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    """(run id, edge id, tokens observed crossing it) for every edge of the runs.

    A gate's route is recorded as routing events, one per token sent down it; any other edge is
    crossed when one token's consecutive node states are at its two ends (retries at the same
    node are not crossings). An edge with routing events is counted by them alone, so a token
    moved by a gate is not counted twice.
    """
    s, re_, e = db.tables.node_states, db.tables.routing_events, db.tables.edges
    routed = (select(s.c.run_id, re_.c.edge_id, func.count().label("n"))
              .select_from(re_.join(s, s.c.state_id == re_.c.state_id))
              .where(in_keys(s.c.run_id, run_ids, db.dialect))
              .group_by(s.c.run_id, re_.c.edge_id))
    prev = func.lag(s.c.node_id).over(partition_by=s.c.token_id, order_by=(s.c.step_index, s.c.attempt))
    seq = (select(s.c.run_id, s.c.token_id, s.c.node_id, prev.label("prev_node"))
           .where(in_keys(s.c.run_id, run_ids, db.dialect)).subquery())
    # A token's first state was reached from where its (first) parent ended: a merged token
    # leaves the coalesce node, an expansion child leaves the expanding transform.
    tp, ps = db.tables.token_parents, s.alias("parent_state")
    parent_end = (select(ps.c.node_id).select_from(ps.join(tp, tp.c.parent_token_id == ps.c.token_id))
                  .where(tp.c.token_id == seq.c.token_id, tp.c.ordinal == 0)
                  .order_by(ps.c.step_index.desc(), ps.c.attempt.desc()).limit(1).scalar_subquery())
    steps = select(seq.c.run_id, seq.c.token_id, seq.c.node_id,
                   func.coalesce(seq.c.prev_node, parent_end).label("from_node")).subquery()
    crossed = (select(e.c.run_id, e.c.edge_id, func.count(func.distinct(steps.c.token_id)).label("n"))
               .select_from(steps.join(e, and_(e.c.run_id == steps.c.run_id,
                                               e.c.from_node_id == steps.c.from_node,
                                               e.c.to_node_id == steps.c.node_id)))
               .where(steps.c.from_node != steps.c.node_id)
               .where(~exists().where(re_.c.edge_id == e.c.edge_id))
               .group_by(e.c.run_id, e.c.edge_id))
    rows = await db.all(routed.union_all(crossed))
    return [(r[0], r[1], int(r[2])) for r in rows]
