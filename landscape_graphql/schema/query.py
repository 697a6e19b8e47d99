"""The root Query type."""

from __future__ import annotations

from typing import Any

import strawberry

from ..context import Info
from ..db import pages as P
from ..db import records as R
from ..resolvers import explain as X
from ..resolvers import lineage as LR
from ..resolvers import nodes as N
from ..resolvers import tokens as T
from ..resolvers._paging import page_request
from ..resolvers.explain import Explanation as ExplanationRecord
from ._relations import record_field
from .analytics import Diagnosis
from .analytics import diagnose as _diagnose
from .explain import Explanation
from .lineage import LineagePath
from .relay import Connection, Node, from_global_id
from .row_errors import Artifact, TransformError, ValidationError
from .runs import Operation, PipelineEdge, PipelineNode, Run, RunFilter
from .states import Call, NodeState, RoutingEvent
from .tokens import Batch, Row, Token

# Types reachable only through the Node interface must still be in the schema.
NODE_TYPES = [Run, PipelineNode, PipelineEdge, Row, Token, NodeState, RoutingEvent, Call, Operation,
              Batch, ValidationError, TransformError, Artifact]


@strawberry.type(description="What this server is reading.")
class Landscape:
    epoch: int = strawberry.field(description="The Landscape schema epoch of the database")
    backend: str = strawberry.field(description="sqlite, sqlcipher or postgresql")
    elspeth_version: str | None = strawberry.field(
        description="The ELSPETH release that writes this epoch (the database records only the epoch)")
    supported_epochs: list[int]


@strawberry.type
class Query:
    @strawberry.field
    @staticmethod
    def landscape(info: Info) -> Landscape:
        from ..db.tables import SUPPORTED_EPOCHS
        ls = info.context.landscape
        return Landscape(epoch=ls.epoch, backend=ls.backend, elspeth_version=ls.elspeth_version,
                         supported_epochs=list(SUPPORTED_EPOCHS))

    @strawberry.field(description="Runs, newest first.")
    @staticmethod
    async def runs(info: Info, first: int | None = None, after: str | None = None,
                   last: int | None = None, before: str | None = None,
                   filter: RunFilter | None = None) -> Connection[Run] | None:
        req, size = page_request(info.context.settings, first, after, last, before)
        f = filter or RunFilter()
        return Connection(page=await P.runs_page(
            info.context.db, req, size, statuses=f.statuses, started_after=f.started_after,
            started_before=f.started_before, allowed_runs=info.context.allowed_runs))

    @strawberry.field(graphql_type=Run | None)
    @staticmethod
    async def run(info: Info, run_id: str) -> R.RunRecord | None:
        if not T.visible(info.context, run_id):
            return None
        return await info.context.loaders.run_by_id.load(run_id)

    @strawberry.field(graphql_type=Row | None, description="A source row; with runId, an error if the row is in another run.")
    @staticmethod
    async def row(info: Info, row_id: str, run_id: str | None = None) -> R.RowRecord | None:
        return await T.row(info.context, row_id, run_id)

    @strawberry.field(graphql_type=Token | None, description="A token; with runId, an error if the token is in another run.")
    @staticmethod
    async def token(info: Info, token_id: str, run_id: str | None = None) -> R.TokenRecord | None:
        return await T.token(info.context, token_id, run_id)

    @strawberry.field(graphql_type=NodeState | None)
    @staticmethod
    async def node_state(info: Info, state_id: str, run_id: str | None = None) -> object:
        return await N.lookup(info.context, "NodeState", state_id, run_id)

    @strawberry.field(graphql_type=Call | None)
    @staticmethod
    async def call(info: Info, call_id: str, run_id: str | None = None) -> object:
        return await N.lookup(info.context, "Call", call_id, run_id)

    @strawberry.field(graphql_type=Operation | None)
    @staticmethod
    async def operation(info: Info, operation_id: str, run_id: str | None = None) -> object:
        return await N.lookup(info.context, "Operation", operation_id, run_id)

    @strawberry.field(graphql_type=Batch | None)
    @staticmethod
    async def batch(info: Info, batch_id: str, run_id: str | None = None) -> object:
        return await N.lookup(info.context, "Batch", batch_id, run_id)

    @strawberry.field(graphql_type=Explanation | None, description=(
        "ELSPETH's explain(): by tokenId, or by rowId with an optional sink. Null when nothing "
        "matches; AMBIGUOUS_LINEAGE (with candidate token ids) when a row has several terminal "
        "tokens; RUN_MISMATCH when the id belongs to another run."))
    @staticmethod
    async def explain(info: Info, run_id: str, token_id: str | None = None,
                      row_id: str | None = None, sink: str | None = None) -> ExplanationRecord | None:
        return await X.explain(info.context, run_id, token_id, row_id, sink)

    @strawberry.field(graphql_type=list[Explanation | None] | None, description="explain() of many tokens of one run in one request, in order.")
    @staticmethod
    async def explain_tokens(info: Info, run_id: str, token_ids: list[str]) -> list[ExplanationRecord | None]:
        return await X.explain_many(info.context, run_id, token_ids)

    @strawberry.field(graphql_type=LineagePath | None, description=(
        "The chain linking an ancestor token to a descendant (through forks, coalesces, "
        "expansions and aggregation batches), or null when none does within maxDepth."))
    @staticmethod
    async def lineage_path(info: Info, from_token_id: str, to_token_id: str,
                           max_depth: int = 50) -> LR.LineagePath | None:
        return await LR.lineage_path(info.context, from_token_id, to_token_id, max_depth)

    diagnose: Diagnosis = record_field(_diagnose, description=(
        "ELSPETH's diagnose at the instant asOf (never the wall clock): failed and stuck runs, stuck "
        "operations, runs with more than validationErrorThreshold validation errors, rows quarantined "
        "by runs started within quarantineWindowSeconds before asOf. Only runs the caller may see."))

    @strawberry.field(graphql_type=Node | None)
    @staticmethod
    async def node(info: Info, id: strawberry.ID) -> object:
        kind, key = from_global_id(id)
        return await N.node(info.context, kind, key)

    @strawberry.field
    @staticmethod
    async def nodes(info: Info, ids: list[strawberry.ID]) -> list[Node | None] | None:
        import asyncio
        decoded = [from_global_id(i) for i in ids]
        found: list[Any] = await asyncio.gather(*(N.node(info.context, k, key) for k, key in decoded))
        return found
