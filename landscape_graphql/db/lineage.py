"""One level of a lineage walk: every edge into (or out of) a whole frontier, in ONE statement.

token_parents alone under-reports aggregation: a flush's output tokens have a single parent
(epoch 2: the triggering or first member; epoch 29: the first), and the other members reach
them only through batch_members. Each level therefore unions the token_parents edges with the
co-members of the batch that produced an output, so a walk sees every member (edge kind BATCH).
Epoch 29 also pins the batch by `batches.expansion_group_id = tokens.expand_group_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import and_, exists, func, literal, select, union_all

from ..errors import AuditIntegrityError
from . import records as R
from ._keys import in_keys
from ._statements import fetch_by_keys, record_columns
from .session import DbSession


class EdgeKind(Enum):
    FORK = "FORK"
    COALESCE = "COALESCE"
    EXPAND = "EXPAND"
    BATCH = "BATCH"


@dataclass(frozen=True, slots=True)
class LineageEdge:
    parent_token_id: str
    child_token_id: str
    kind: EdgeKind
    ordinal: int


@dataclass(frozen=True, slots=True)
class LevelHit:
    """An edge found from a frontier token (`key`), and the token at its other end."""

    key: str
    edge: LineageEdge
    other: R.TokenRecord


def _kind(child_id: str, fork: str | None, join: str | None, expand: str | None,
          via_batch: bool) -> EdgeKind:
    if fork is not None:
        return EdgeKind.FORK
    if join is not None:
        return EdgeKind.COALESCE
    if expand is not None:
        return EdgeKind.BATCH if via_batch else EdgeKind.EXPAND
    raise AuditIntegrityError(f"tokens[{child_id}]",
                              "a token with parents must have a fork, join or expand group id")


def _child_groups(child: Any) -> list[Any]:
    return [child.c.fork_group_id.label("child_fork"), child.c.join_group_id.label("child_join"),
            child.c.expand_group_id.label("child_expand")]


def _batch_pin(db: DbSession, batch_member: Any, output: Any) -> Any:
    """Epoch 29 names the producing batch; epoch 2 only has the membership of the parent."""
    if db.epoch < 29:
        return literal(True)
    b = db.tables.batches
    return exists().where(b.c.batch_id == batch_member.c.batch_id,
                          b.c.expansion_group_id == output.c.expand_group_id)


# Each level's statement is prepared once per epoch and dialect (db/_statements.py): a walk runs
# one per level, and building and compiling it cost more than running it.
# Parent level columns: key, other_id, edge_ordinal, via_batch, child_fork, child_join,
# child_expand, then the parent token (COLUMNS[TokenRecord]).
_PARENT_TOKEN_AT = 7
# Child level columns: key, edge_ordinal, via_batch, then the child token.
_CHILD_TOKEN_AT = 3


def _parent_level_statement(db: DbSession) -> Any:
    t = db.tables
    tp, bm = t.token_parents, t.batch_members
    child, parent = t.tokens.alias("child"), t.tokens.alias("parent")
    member, co = bm.alias("member"), bm.alias("co")
    member_ordinal = (select(func.min(member.c.ordinal)).where(member.c.token_id == tp.c.parent_token_id)
                      .where(_batch_pin(db, member, child)).scalar_subquery())
    direct = (select(tp.c.token_id.label("key"), tp.c.parent_token_id.label("other_id"),
                     func.coalesce(member_ordinal, tp.c.ordinal).label("edge_ordinal"),
                     (member_ordinal.is_not(None)).label("via_batch"), *_child_groups(child),
                     *record_columns(parent, R.TokenRecord))
              .select_from(tp.join(child, child.c.token_id == tp.c.token_id)
                           .outerjoin(parent, parent.c.token_id == tp.c.parent_token_id))
              .where(in_keys(db.dialect, tp.c.token_id)))
    co_members = (select(tp.c.token_id.label("key"), co.c.token_id.label("other_id"),
                         co.c.ordinal.label("edge_ordinal"), literal(True).label("via_batch"),
                         *_child_groups(child), *record_columns(parent, R.TokenRecord))
                  .select_from(tp.join(child, child.c.token_id == tp.c.token_id)
                               .join(member, member.c.token_id == tp.c.parent_token_id)
                               .join(co, and_(co.c.batch_id == member.c.batch_id,
                                              co.c.token_id != member.c.token_id))
                               .outerjoin(parent, parent.c.token_id == co.c.token_id))
                  .where(in_keys(db.dialect, tp.c.token_id))
                  .where(child.c.expand_group_id.is_not(None))
                  .where(_batch_pin(db, member, child)))
    return union_all(direct, co_members)


def _child_level_statement(db: DbSession) -> Any:
    t = db.tables
    tp, bm = t.token_parents, t.batch_members
    child = t.tokens.alias("child")
    member, co = bm.alias("member"), bm.alias("co")
    member_ordinal = (select(func.min(member.c.ordinal)).where(member.c.token_id == tp.c.parent_token_id)
                      .where(_batch_pin(db, member, child)).scalar_subquery())
    direct = (select(tp.c.parent_token_id.label("key"),
                     func.coalesce(member_ordinal, tp.c.ordinal).label("edge_ordinal"),
                     (member_ordinal.is_not(None)).label("via_batch"), *record_columns(child, R.TokenRecord))
              .select_from(tp.outerjoin(child, child.c.token_id == tp.c.token_id))
              .where(in_keys(db.dialect, tp.c.parent_token_id)))
    # A member that is not the output's token_parents parent still led to the output.
    # batch_members has no index on token_id: the keys' batches are found first (one pass
    # over batch_members), or the planner may drive the join from all of token_parents.
    keys_batches = select(bm.c.batch_id).where(in_keys(db.dialect, bm.c.token_id))
    outputs = (select(member.c.token_id.label("key"), member.c.ordinal.label("edge_ordinal"),
                      literal(True).label("via_batch"), *record_columns(child, R.TokenRecord))
               .select_from(member.join(co, and_(co.c.batch_id == member.c.batch_id,
                                                 co.c.token_id != member.c.token_id))
                            .join(tp, tp.c.parent_token_id == co.c.token_id)
                            .join(child, child.c.token_id == tp.c.token_id))
               .where(member.c.batch_id.in_(keys_batches))
               .where(in_keys(db.dialect, member.c.token_id))
               .where(child.c.expand_group_id.is_not(None))
               .where(_batch_pin(db, member, child)))
    return union_all(direct, outputs)


async def parent_level(db: DbSession, keys: Sequence[str]) -> list[LevelHit]:
    """Edges into `keys` (their parents), with the parent tokens."""
    rows = await fetch_by_keys(db, "lineage/parents", lambda: _parent_level_statement(db), keys)
    for r in rows:
        if r[_PARENT_TOKEN_AT] is None:
            raise AuditIntegrityError(f"tokens[{r[0]}]", "every parent in token_parents must exist in tokens",
                                      f"parent {r[1]} is missing")
    parents = R.tokens_from_tuples(rows, db.epoch, _PARENT_TOKEN_AT)
    out = []
    for r, other in zip(rows, parents, strict=True):
        kind = _kind(r[0], r[4], r[5], r[6], bool(r[3]))
        out.append(LevelHit(r[0], LineageEdge(other.token_id, r[0], kind, int(r[2])), other))
    return out


async def child_level(db: DbSession, keys: Sequence[str]) -> list[LevelHit]:
    """Edges out of `keys` (their children, and the outputs of batches they were members of)."""
    rows = await fetch_by_keys(db, "lineage/children", lambda: _child_level_statement(db), keys)
    for r in rows:
        if r[_CHILD_TOKEN_AT] is None:
            raise AuditIntegrityError(f"token_parents[parent {r[0]}]",
                                      "every child in token_parents must exist in tokens")
    children = R.tokens_from_tuples(rows, db.epoch, _CHILD_TOKEN_AT)
    out = []
    for r, other in zip(rows, children, strict=True):
        kind = _kind(other.token_id, other.fork_group_id, other.join_group_id,
                     other.expand_group_id, bool(r[2]))
        out.append(LevelHit(r[0], LineageEdge(r[0], other.token_id, kind, int(r[1])), other))
    return out
