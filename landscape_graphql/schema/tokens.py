"""GraphQL types of rows and tokens: Row, Token, TokenOutcome, Batch, BatchMember."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..context import Info
from ..db import records as R
from ..resolvers import lineage as L
from ..resolvers import tokens as T
from . import enums as E
from ._json import parse_json
from .payloads import load_payload
from .relay import Node, to_global_id

if TYPE_CHECKING:
    from .coalesce import CoalesceBranchLoss
    from .errors import Artifact, TransformError, ValidationError
    from .lineage import LineageGraph
    from .payloads import Payload
    from .runs import PipelineNode, Run
    from .states import Call, NodeState, RoutingEvent

RunT = Annotated["Run", strawberry.lazy("landscape_graphql.schema.runs")]
PipelineNodeT = Annotated["PipelineNode", strawberry.lazy("landscape_graphql.schema.runs")]
NodeStateT = Annotated["NodeState", strawberry.lazy("landscape_graphql.schema.states")]
CallT = Annotated["Call", strawberry.lazy("landscape_graphql.schema.states")]
RoutingEventT = Annotated["RoutingEvent", strawberry.lazy("landscape_graphql.schema.states")]
ValidationErrorT = Annotated["ValidationError", strawberry.lazy("landscape_graphql.schema.errors")]
TransformErrorT = Annotated["TransformError", strawberry.lazy("landscape_graphql.schema.errors")]
ArtifactT = Annotated["Artifact", strawberry.lazy("landscape_graphql.schema.errors")]
PayloadT = Annotated["Payload", strawberry.lazy("landscape_graphql.schema.payloads")]
LineageGraphT = Annotated["LineageGraph", strawberry.lazy("landscape_graphql.schema.lineage")]
CoalesceBranchLossT = Annotated["CoalesceBranchLoss", strawberry.lazy("landscape_graphql.schema.coalesce")]


@strawberry.type(description="A source row as it entered the pipeline.")
class Row(Node):
    row_id: str
    run_id: str
    source_node_id: str
    row_index: int | None = strawberry.field(
        description="epoch 2: the row's position in its run; epoch 29: a per-source display index")
    source_row_index: int | None = strawberry.field(description="epoch 29 only")
    ingest_sequence: int | None = strawberry.field(description="epoch 29 only: the run-wide order")
    source_data_hash: str
    source_data_ref: str | None
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.RowRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.RowRecord]) -> strawberry.ID:
        return to_global_id("Row", parent.row_id)

    @strawberry.field(description="The source row as ELSPETH stored it (rows.source_data_ref).")
    @staticmethod
    async def source_data(parent: Parent[R.RowRecord], info: Info) -> PayloadT:
        return await load_payload(info, parent.source_data_ref, parent.source_data_hash)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def run(parent: Parent[R.RowRecord], info: Info) -> RunT | None:
        return await info.context.loaders.run_by_id.load(parent.run_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def source_node(parent: Parent[R.RowRecord], info: Info) -> PipelineNodeT | None:
        return await info.context.loaders.node_by_key.load((parent.run_id, parent.source_node_id))  # type: ignore[no-any-return]

    @strawberry.field(description="Every token this row became, in creation order.")
    @staticmethod
    async def tokens(parent: Parent[R.RowRecord], info: Info) -> list[Token] | None:
        return await info.context.loaders.tokens_by_row_id.load(parent.row_id)  # type: ignore[no-any-return]

    @strawberry.field(description=(
        "The whole fan-out of this row: every token it became (descendants of its source "
        "token), their edges, and the terminal tokens with their outcomes."))
    @staticmethod
    async def lineage(parent: Parent[R.RowRecord], info: Info, max_depth: int = 10) -> LineageGraphT | None:
        return await L.row_lineage(info.context, parent, max_depth)  # type: ignore[return-value]

    @strawberry.field(description="Source validation errors of this row, with how each was matched.")
    @staticmethod
    async def validation_errors(parent: Parent[R.RowRecord], info: Info) -> list[ValidationErrorT] | None:
        found = await info.context.loaders.validation_errors_by_row_id.load(parent.row_id)
        from .errors import MatchedValidationError
        return [MatchedValidationError(record=rec, matched_by=E.MatchedBy(by)) for _, by, rec in found]

    @strawberry.field(description=(
        "epoch 29: the fork branches of this row that never reached their coalesce, with ELSPETH's "
        "reason, in the order recorded; empty when none was lost. Null in epoch 2, whose Landscape "
        "does not record branch losses (a failed coalesce there shows only in outcomes and errors)."))
    @staticmethod
    async def coalesce_branch_losses(parent: Parent[R.RowRecord], info: Info) -> list[CoalesceBranchLossT] | None:
        from .coalesce import losses_of_row
        return await losses_of_row(info, parent)


@strawberry.type(description="A row's instance on one path through the pipeline.")
class Token(Node):
    token_id: str
    row_id: str
    run_id: str
    fork_group_id: str | None
    join_group_id: str | None
    expand_group_id: str | None
    branch_name: str | None
    step_in_pipeline: int | None
    token_data_ref: str | None = strawberry.field(description="epoch 29 only: payload ref of the token's data")
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.TokenRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.TokenRecord]) -> strawberry.ID:
        return to_global_id("Token", parent.token_id)

    @strawberry.field(description=(
        "epoch 29: the token's own data ({data, contract}) for expansion children, aggregation "
        "outputs and merged tokens (tokens.token_data_ref); NEVER_STORED otherwise."))
    @staticmethod
    async def data(parent: Parent[R.TokenRecord], info: Info) -> PayloadT:
        return await load_payload(info, parent.token_data_ref, None)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def row(parent: Parent[R.TokenRecord], info: Info) -> Row | None:
        return await info.context.loaders.row_by_id.load(parent.row_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def run(parent: Parent[R.TokenRecord], info: Info) -> RunT | None:
        return await info.context.loaders.run_by_id.load(parent.run_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The tokens this one was made from (token_parents, by ordinal).")
    @staticmethod
    async def parents(parent: Parent[R.TokenRecord], info: Info) -> list[Token] | None:
        return await T.parents(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="The tokens made from this one (the reverse of token_parents).")
    @staticmethod
    async def children(parent: Parent[R.TokenRecord], info: Info) -> list[Token] | None:
        return await T.children(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="Every visit of this token to a node, by (stepIndex, attempt).")
    @staticmethod
    async def node_states(parent: Parent[R.TokenRecord], info: Info) -> list[NodeStateT] | None:
        return await T.node_states(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="All external calls of this token's node states, in order.")
    @staticmethod
    async def calls(parent: Parent[R.TokenRecord], info: Info) -> list[CallT] | None:
        return await T.calls(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="Routing decisions taken at this token's node states.")
    @staticmethod
    async def routing_events(parent: Parent[R.TokenRecord], info: Info) -> list[RoutingEventT] | None:
        return await T.routing_events(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="The token's outcome: the terminal one, else the latest (e.g. buffered).")
    @staticmethod
    async def outcome(parent: Parent[R.TokenRecord], info: Info) -> TokenOutcome | None:
        return await T.outcome(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="Every outcome recorded for the token (a buffered one may precede the terminal).")
    @staticmethod
    async def outcomes(parent: Parent[R.TokenRecord], info: Info) -> list[TokenOutcome] | None:
        return await T.outcomes(info.context, parent)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def transform_errors(parent: Parent[R.TokenRecord], info: Info) -> list[TransformErrorT] | None:
        return await T.transform_errors(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="Aggregation batches this token was a member of.")
    @staticmethod
    async def member_of_batches(parent: Parent[R.TokenRecord], info: Info) -> list[Batch] | None:
        return await T.member_of_batches(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description="The aggregation batch whose flush produced this token, if any.")
    @staticmethod
    async def produced_by_batch(parent: Parent[R.TokenRecord], info: Info) -> Batch | None:
        return await T.produced_by_batch(info.context, parent)  # type: ignore[return-value]

    @strawberry.field(description=(
        "Every token this one came from, to maxDepth levels (default 10), including all members "
        "of an aggregation batch that produced it (kind BATCH)."))
    @staticmethod
    async def ancestors(parent: Parent[R.TokenRecord], info: Info, max_depth: int = 10) -> LineageGraphT | None:
        return await L.ancestors(info.context, parent, max_depth)  # type: ignore[return-value]

    @strawberry.field(description=(
        "Every token made from this one, to maxDepth levels (default 10), including the outputs "
        "of aggregation batches it was a member of (kind BATCH)."))
    @staticmethod
    async def descendants(parent: Parent[R.TokenRecord], info: Info, max_depth: int = 10) -> LineageGraphT | None:
        return await L.descendants(info.context, parent, max_depth)  # type: ignore[return-value]

    @strawberry.field(description="Artifacts written by the sink that received this token.")
    @staticmethod
    async def artifacts(parent: Parent[R.TokenRecord], info: Info) -> list[ArtifactT] | None:
        return await info.context.loaders.artifacts_by_token_id.load(parent.token_id)  # type: ignore[no-any-return]


@strawberry.type(description=(
    "A token outcome in both views: epoch 2's rowOutcome and epoch 29's result x path. The stored "
    "view is returned as stored; the other is derived where the mapping is unambiguous, else null."))
class TokenOutcome:
    outcome_id: str
    token_id: str
    terminal: bool
    row_outcome: E.RowOutcome | None
    result: E.TerminalResult | None
    path: E.TerminalPath | None
    recorded_at: datetime
    sink_name: str | None
    batch_id: str | None
    fork_group_id: str | None
    join_group_id: str | None
    expand_group_id: str | None
    error_hash: str | None

    @strawberry.field(description="Which view the database stored.")
    @staticmethod
    def stored_view(parent: Parent[R.OutcomeRecord]) -> E.OutcomeView:
        return E.OutcomeView(parent.stored_view)

    @strawberry.field
    @staticmethod
    def context(parent: Parent[R.OutcomeRecord]) -> JSON | None:
        return parse_json(parent.context_json, f"token_outcomes[{parent.outcome_id}]", "context_json")

    @strawberry.field
    @staticmethod
    def expected_branches(parent: Parent[R.OutcomeRecord]) -> JSON | None:
        return parse_json(parent.expected_branches_json, f"token_outcomes[{parent.outcome_id}]",
                          "expected_branches_json")

    @strawberry.field
    @staticmethod
    async def batch(parent: Parent[R.OutcomeRecord], info: Info) -> Batch | None:
        if parent.batch_id is None:
            return None
        return await info.context.loaders.batch_by_id.load(parent.batch_id)  # type: ignore[no-any-return]


@strawberry.type(description="An aggregation batch: its members in order and the tokens its flush produced.")
class Batch(Node):
    batch_id: str
    run_id: str
    aggregation_node_id: str
    aggregation_state_id: str | None
    expansion_group_id: str | None = strawberry.field(description="epoch 29 only")
    retry_of_batch_id: str | None
    trigger_type: E.TriggerType | None
    trigger_reason: str | None
    attempt: int
    status: E.BatchStatus
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.BatchRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.BatchRecord]) -> strawberry.ID:
        return to_global_id("Batch", parent.batch_id)

    @strawberry.field
    @staticmethod
    async def members(parent: Parent[R.BatchRecord], info: Info) -> list[BatchMember] | None:
        return await info.context.loaders.members_by_batch_id.load(parent.batch_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The tokens the batch's flush produced (batch_outputs is never written).")
    @staticmethod
    async def outputs(parent: Parent[R.BatchRecord], info: Info) -> list[Token] | None:
        return await info.context.loaders.outputs_by_batch_id.load(parent.batch_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The one node state of the batch, recorded on its first member.")
    @staticmethod
    async def aggregation_state(parent: Parent[R.BatchRecord], info: Info) -> NodeStateT | None:
        if parent.aggregation_state_id is None:
            return None
        return await info.context.loaders.node_state_by_id.load(parent.aggregation_state_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def aggregation_node(parent: Parent[R.BatchRecord], info: Info) -> PipelineNodeT | None:
        return await info.context.loaders.node_by_key.load((parent.run_id, parent.aggregation_node_id))  # type: ignore[no-any-return]


@strawberry.type
class BatchMember:
    batch_id: str
    token_id: str
    ordinal: int

    @strawberry.field
    @staticmethod
    async def token(parent: Parent[R.BatchMemberRecord], info: Info) -> Token | None:
        return await info.context.loaders.token_by_id.load(parent.token_id)  # type: ignore[no-any-return]
