"""GraphQL types of rows and tokens: Row, Token, TokenOutcome, Batch, BatchMember."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..context import Info
from ..db import records as R
from ..loaders import Loaders
from ..payloads import Payload as PayloadRecord
from ..resolvers import lineage as L
from ..resolvers import tokens as T
from . import enums as E
from ._json import parse_json
from ._relations import RelationsOf
from .payloads import load_payload
from .relay import Node, to_global_id
from .row_errors import MatchedValidationError

if TYPE_CHECKING:
    from .coalesce import CoalesceBranchLoss
    from .lineage import LineageGraph
    from .payloads import Payload
    from .row_errors import Artifact, TransformError, ValidationError
    from .runs import PipelineNode, Run
    from .states import Call, NodeState, RoutingEvent

RunT = Annotated["Run", strawberry.lazy("landscape_graphql.schema.runs")]
PipelineNodeT = Annotated["PipelineNode", strawberry.lazy("landscape_graphql.schema.runs")]
NodeStateT = Annotated["NodeState", strawberry.lazy("landscape_graphql.schema.states")]
CallT = Annotated["Call", strawberry.lazy("landscape_graphql.schema.states")]
RoutingEventT = Annotated["RoutingEvent", strawberry.lazy("landscape_graphql.schema.states")]
ValidationErrorT = Annotated["ValidationError", strawberry.lazy("landscape_graphql.schema.row_errors")]
TransformErrorT = Annotated["TransformError", strawberry.lazy("landscape_graphql.schema.row_errors")]
ArtifactT = Annotated["Artifact", strawberry.lazy("landscape_graphql.schema.row_errors")]
PayloadT = Annotated["Payload", strawberry.lazy("landscape_graphql.schema.payloads")]
LineageGraphT = Annotated["LineageGraph", strawberry.lazy("landscape_graphql.schema.lineage")]
CoalesceBranchLossT = Annotated["CoalesceBranchLoss", strawberry.lazy("landscape_graphql.schema.coalesce")]

_row = RelationsOf(R.RowRecord)
_token = RelationsOf(R.TokenRecord)
_outcome = RelationsOf(R.OutcomeRecord)
_batch = RelationsOf(R.BatchRecord)
_member = RelationsOf(R.BatchMemberRecord)


def matched_validation_errors(_parent: object, found: list[tuple[str, str, R.ValidationErrorRecord]],
                              ) -> list[MatchedValidationError]:
    """A row's validation errors with how each was matched to it (loaders/row_errors.py)."""
    return [MatchedValidationError(record=rec, matched_by=E.MatchedBy(by)) for _, by, rec in found]


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

    @strawberry.field(graphql_type="PayloadT", description="The source row as ELSPETH stored it (rows.source_data_ref).")
    @staticmethod
    async def source_data(parent: Parent[R.RowRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.source_data_ref, parent.source_data_hash)

    run = _row.relation(Loaders.run_by_id, lambda r: r.run_id, graphql_type="RunT | None")
    source_node = _row.relation(
        Loaders.node_by_key, lambda r: (r.run_id, r.source_node_id),
        graphql_type="PipelineNodeT | None")
    tokens = _row.relation(
        Loaders.tokens_by_row_id, lambda r: r.row_id,
        graphql_type="list[Token] | None",
        description="Every token this row became, in creation order.")

    @strawberry.field(graphql_type="LineageGraphT | None", description=(
        "The whole fan-out of this row: every token it became (descendants of its source "
        "token), their edges, and the terminal tokens with their outcomes."))
    @staticmethod
    async def lineage(parent: Parent[R.RowRecord], info: Info, max_depth: int = 10) -> L.LineageGraph:
        return await L.row_lineage(info.context, parent, max_depth)

    validation_errors = _row.relation(
        Loaders.validation_errors_by_row_id, lambda r: r.row_id, matched_validation_errors,
        graphql_type="list[ValidationErrorT] | None",
        description="Source validation errors of this row, with how each was matched.")

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

    @strawberry.field(graphql_type="PayloadT", description=(
        "epoch 29: the token's own data ({data, contract}) for expansion children, aggregation "
        "outputs and merged tokens (tokens.token_data_ref); NEVER_STORED otherwise."))
    @staticmethod
    async def data(parent: Parent[R.TokenRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.token_data_ref, None)

    row = _token.relation(Loaders.row_by_id, lambda t: t.row_id, graphql_type="Row | None")
    run = _token.relation(Loaders.run_by_id, lambda t: t.run_id, graphql_type="RunT | None")
    parents = _token.relation(
        Loaders.parent_links_by_token_id, lambda t: t.token_id, R.check_parent_links,
        graphql_type="list[Token] | None",
        description="The tokens this one was made from (token_parents, by ordinal).")
    children = _token.relation(
        Loaders.children_by_token_id, lambda t: t.token_id, R.check_children,
        graphql_type="list[Token] | None",
        description="The tokens made from this one (the reverse of token_parents).")
    node_states = _token.relation(
        Loaders.node_states_by_token_id, lambda t: t.token_id,
        graphql_type="list[NodeStateT] | None",
        description="Every visit of this token to a node, by (stepIndex, attempt).")
    calls = _token.relation(
        Loaders.calls_by_token_id, lambda t: t.token_id,
        graphql_type="list[CallT] | None",
        description="All external calls of this token's node states, in order.")
    routing_events = _token.relation(
        Loaders.routing_events_by_token_id, lambda t: t.token_id,
        graphql_type="list[RoutingEventT] | None",
        description="Routing decisions taken at this token's node states.")
    outcome = _token.relation(
        Loaders.outcomes_by_token_id, lambda t: t.token_id, T.current_outcome,
        graphql_type="TokenOutcome | None",
        description="The token's outcome: the terminal one, else the latest (e.g. buffered).")
    outcomes = _token.relation(
        Loaders.outcomes_by_token_id, lambda t: t.token_id,
        graphql_type="list[TokenOutcome] | None",
        description="Every outcome recorded for the token (a buffered one may precede the terminal).")
    transform_errors = _token.relation(
        Loaders.transform_errors_by_token_id, lambda t: t.token_id,
        graphql_type="list[TransformErrorT] | None")
    member_of_batches = _token.relation(
        Loaders.batches_by_member_token_id, lambda t: t.token_id, T.batches_of,
        graphql_type="list[Batch] | None",
        description="Aggregation batches this token was a member of.")

    @strawberry.field(graphql_type="Batch | None",
                      description="The aggregation batch whose flush produced this token, if any.")
    @staticmethod
    async def produced_by_batch(parent: Parent[R.TokenRecord], info: Info) -> R.BatchRecord | None:
        return await T.produced_by_batch(info.context, parent)

    @strawberry.field(graphql_type="LineageGraphT | None", description=(
        "Every token this one came from, to maxDepth levels (default 10), including all members "
        "of an aggregation batch that produced it (kind BATCH)."))
    @staticmethod
    async def ancestors(parent: Parent[R.TokenRecord], info: Info, max_depth: int = 10) -> L.LineageGraph:
        return await L.ancestors(info.context, parent, max_depth)

    @strawberry.field(graphql_type="LineageGraphT | None", description=(
        "Every token made from this one, to maxDepth levels (default 10), including the outputs "
        "of aggregation batches it was a member of (kind BATCH)."))
    @staticmethod
    async def descendants(parent: Parent[R.TokenRecord], info: Info, max_depth: int = 10) -> L.LineageGraph:
        return await L.descendants(info.context, parent, max_depth)

    artifacts = _token.relation(
        Loaders.artifacts_by_token_id, lambda t: t.token_id,
        graphql_type="list[ArtifactT] | None",
        description="Artifacts written by the sink that received this token.")


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

    batch = _outcome.relation(Loaders.batch_by_id, lambda o: o.batch_id, graphql_type="Batch | None")


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

    members = _batch.relation(
        Loaders.members_by_batch_id, lambda b: b.batch_id,
        graphql_type="list[BatchMember] | None")
    outputs = _batch.relation(
        Loaders.outputs_by_batch_id, lambda b: b.batch_id,
        graphql_type="list[Token] | None",
        description="The tokens the batch's flush produced (batch_outputs is never written).")
    aggregation_state = _batch.relation(
        Loaders.node_state_by_id, lambda b: b.aggregation_state_id,
        graphql_type="NodeStateT | None",
        description="The one node state of the batch, recorded on its first member.")
    aggregation_node = _batch.relation(
        Loaders.node_by_key, lambda b: (b.run_id, b.aggregation_node_id),
        graphql_type="PipelineNodeT | None")


@strawberry.type
class BatchMember:
    batch_id: str
    token_id: str
    ordinal: int

    token = _member.relation(Loaders.token_by_id, lambda m: m.token_id, graphql_type="Token | None")
