"""Recursive lineage: ancestors, descendants, a row's whole fan-out, and the path between two tokens.

A walk goes level by level; each level is one DataLoader load of the whole frontier, so
concurrent walks (say, descendants of 500 tokens in one page) share one statement per level.
Two bounds cut a walk: its depth, and a per-request budget of tokens visited across all walks.
A cut walk says so (`truncated`, with the reason); nothing is ever silently partial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from ..context import Context
from ..db import records as R
from ..db.lineage import LevelHit, LineageEdge
from ..errors import AuditIntegrityError, BadArgument, RunMismatch
from . import tokens as T


class TruncationReason(Enum):
    DEPTH = "DEPTH"
    TOKEN_BUDGET = "TOKEN_BUDGET"


class Direction(Enum):
    ANCESTORS = "ancestors"
    DESCENDANTS = "descendants"


@dataclass
class LineageGraph:
    tokens: list[R.TokenRecord]
    edges: list[LineageEdge]
    depth_reached: int
    truncated: bool = False
    truncation_reason: TruncationReason | None = None
    roots: list[str] = field(default_factory=list)


class TokenBudget:
    """Tokens one request may still visit across all its walks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _budget(ctx: Context) -> TokenBudget:
    budget = ctx.extras.get("token_budget")
    if budget is None:
        budget = ctx.extras["token_budget"] = TokenBudget(ctx.settings.traversal_token_budget)
    return budget


def check_depth(ctx: Context, max_depth: int, argument: str = "maxDepth") -> None:
    if max_depth < 0:
        raise BadArgument(argument, "must not be negative")
    if max_depth > ctx.settings.max_traversal_depth:
        raise BadArgument(argument, f"{max_depth} exceeds the maximum traversal depth of "
                                    f"{ctx.settings.max_traversal_depth}")


async def _level(ctx: Context, direction: Direction, frontier: list[str]) -> list[list[LevelHit]]:
    loader = (ctx.loaders.parent_edges_by_token_id if direction is Direction.ANCESTORS
              else ctx.loaders.child_edges_by_token_id)
    return await loader.load_many(frontier)


async def walk(ctx: Context, roots: Iterable[R.TokenRecord], direction: Direction, max_depth: int,
               stop_at: str | None = None) -> tuple[LineageGraph, dict[str, LineageEdge]]:
    """Walk from `roots`; returns the graph and, per reached token, the edge it was reached by."""
    check_depth(ctx, max_depth)
    budget = _budget(ctx)
    seen: dict[str, R.TokenRecord] = {}
    for root in roots:
        seen.setdefault(root.token_id, root)
    run_id = next(iter(seen.values())).run_id if seen else None
    reached_by: dict[str, LineageEdge] = {}
    edges: dict[tuple[str, str], LineageEdge] = {}
    frontier = list(seen)
    depth = 0
    reason: TruncationReason | None = None
    while frontier and reason is None:
        levels = await _level(ctx, direction, frontier)
        hits = [hit for level in levels for hit in level]
        if depth == max_depth:
            # The level beyond the bound was looked at only to know whether the bound cut.
            if hits:
                reason = TruncationReason.DEPTH
            break
        next_frontier: list[str] = []
        for hit in hits:
            other = hit.other
            if other.run_id != run_id:
                raise AuditIntegrityError(f"tokens[{hit.edge.child_token_id}]",
                                          "parents must belong to the same run",
                                          f"lineage edge to token {other.token_id} in run {other.run_id}")
            if other.token_id not in seen:
                if not budget.take():
                    reason = TruncationReason.TOKEN_BUDGET
                    break
                seen[other.token_id] = other
                reached_by[other.token_id] = hit.edge
                next_frontier.append(other.token_id)
            edges.setdefault((hit.edge.parent_token_id, hit.edge.child_token_id), hit.edge)
        if next_frontier:
            depth += 1
        if stop_at is not None and stop_at in seen:
            break
        frontier = next_frontier
    graph = LineageGraph(
        tokens=list(seen.values()),
        edges=[e for e in edges.values() if e.parent_token_id in seen and e.child_token_id in seen],
        depth_reached=depth, truncated=reason is not None, truncation_reason=reason,
    )
    return graph, reached_by


async def ancestors(ctx: Context, tok: R.TokenRecord, max_depth: int) -> LineageGraph:
    graph, _ = await walk(ctx, [tok], Direction.ANCESTORS, max_depth)
    graph.roots = [tok.token_id]
    return graph


async def descendants(ctx: Context, tok: R.TokenRecord, max_depth: int) -> LineageGraph:
    graph, _ = await walk(ctx, [tok], Direction.DESCENDANTS, max_depth)
    graph.roots = [tok.token_id]
    return graph


async def row_lineage(ctx: Context, row: R.RowRecord, max_depth: int) -> LineageGraph:
    """Every token the row became: descendants of the row's source token(s)."""
    tokens = await ctx.loaders.tokens_by_row_id.load(row.row_id)
    roots = [t for t in tokens if t.fork_group_id is None and t.join_group_id is None
             and t.expand_group_id is None]
    if not roots:
        return LineageGraph(tokens=[], edges=[], depth_reached=0)
    graph, _ = await walk(ctx, roots, Direction.DESCENDANTS, max_depth)
    graph.roots = [t.token_id for t in roots]
    return graph


@dataclass
class LineagePath:
    tokens: list[R.TokenRecord]
    edges: list[LineageEdge]


async def lineage_path(ctx: Context, from_token_id: str, to_token_id: str,
                       max_depth: int) -> LineagePath | None:
    """The chain of edges from an ancestor down to a descendant, or None if none links them."""
    start = await T.token(ctx, from_token_id)
    end = await T.token(ctx, to_token_id)
    if start is None or end is None:
        return None
    if start.run_id != end.run_id:
        raise RunMismatch("Token", to_token_id, start.run_id, end.run_id)
    if start.token_id == end.token_id:
        return LineagePath(tokens=[start], edges=[])
    # Walk up from the descendant: fan-in is narrower than fan-out.
    graph, reached_by = await walk(ctx, [end], Direction.ANCESTORS, max_depth, stop_at=start.token_id)
    if start.token_id not in reached_by:
        return None
    by_id = {t.token_id: t for t in graph.tokens}
    chain_edges: list[LineageEdge] = []
    current = start.token_id
    while current != end.token_id:
        edge = reached_by[current]
        chain_edges.append(edge)
        current = edge.child_token_id
    chain_tokens = [start] + [by_id[e.child_token_id] for e in chain_edges]
    return LineagePath(tokens=chain_tokens, edges=chain_edges)
