"""GraphQL types of recursive lineage: LineageGraph, LineageEdge, LineagePath."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from ..context import Info
from ..db import records as R
from ..db.lineage import EdgeKind
from ..db.lineage import LineageEdge as LineageEdgeRecord
from ..resolvers import lineage as L

if TYPE_CHECKING:
    from .tokens import Token

TokenT = Annotated["Token", strawberry.lazy("landscape_graphql.schema.tokens")]

strawberry.enum(EdgeKind, description=(
    "How a child token came from its parent: FORK (a fork branch), COALESCE (one of several "
    "arriving branches), EXPAND (one of N items), BATCH (a member of the aggregation batch whose "
    "flush produced the child)."))
strawberry.enum(L.TruncationReason, description=(
    "DEPTH: maxDepth stopped the walk with more lineage beyond it; TOKEN_BUDGET: the request's "
    "budget of visited tokens ran out."))


@strawberry.type
class LineageEdge:
    parent_token_id: str
    child_token_id: str
    kind: EdgeKind
    ordinal: int = strawberry.field(description="the parent's position: token_parents ordinal, or batch member ordinal")


@strawberry.type(description="A lineage walk: the tokens reached (the starting tokens first) and the edges between them.")
class LineageGraph:
    depth_reached: int
    truncated: bool
    truncation_reason: L.TruncationReason | None

    @strawberry.field(graphql_type="list[TokenT]")
    @staticmethod
    def tokens(parent: Parent[L.LineageGraph]) -> list[R.TokenRecord]:
        return parent.tokens

    @strawberry.field(graphql_type="list[LineageEdge]")
    @staticmethod
    def edges(parent: Parent[L.LineageGraph]) -> list[LineageEdgeRecord]:
        return parent.edges

    @strawberry.field(description="Ids of the tokens the walk started from.")
    @staticmethod
    def root_token_ids(parent: Parent[L.LineageGraph]) -> list[str]:
        return parent.roots

    @strawberry.field(description=(
        "Tokens with no child in this graph whose outcome is terminal: where the lineage ended "
        "(a sink, a quarantine, a failure). Meaningful for descendant walks and row lineage."))
    @staticmethod
    async def terminal_tokens(parent: Parent[L.LineageGraph], info: Info) -> list[TokenT]:
        has_child = {e.parent_token_id for e in parent.edges}
        leaves = [t for t in parent.tokens if t.token_id not in has_child]
        found = await info.context.loaders.outcomes_by_token_id.load_many([t.token_id for t in leaves])
        return [t for t, outcomes in zip(leaves, found, strict=True)
                if (o := R.current_outcome(outcomes)) is not None and o.terminal]


@strawberry.type(description="The chain of tokens and edges linking an ancestor to a descendant.")
class LineagePath:
    @strawberry.field(graphql_type="list[TokenT]")
    @staticmethod
    def tokens(parent: Parent[L.LineagePath]) -> list[R.TokenRecord]:
        return parent.tokens

    @strawberry.field(graphql_type="list[LineageEdge]")
    @staticmethod
    def edges(parent: Parent[L.LineagePath]) -> list[LineageEdgeRecord]:
        return parent.edges
