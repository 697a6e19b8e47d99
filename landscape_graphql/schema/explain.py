"""The Explanation type: everything ELSPETH's explain() returns for one token, and more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from ..context import Info
from ..db import records as R
from ..loaders import Loaders
from ..payloads import Payload as PayloadRecord
from ..resolvers import lineage as L
from ..resolvers import tokens as T
from ..resolvers.explain import Explanation as ExplanationRecord
from ..resolvers.lineage import LineageGraph as LineageRecord
from ._relations import RelationsOf
from .tokens import matched_validation_errors

if TYPE_CHECKING:
    from .lineage import LineageGraph
    from .payloads import Payload
    from .row_errors import Artifact, TransformError, ValidationError
    from .states import Call, NodeState, RoutingEvent, SchedulerEvent
    from .tokens import Row, Token, TokenOutcome

TokenT = Annotated["Token", strawberry.lazy("landscape_graphql.schema.tokens")]
RowT = Annotated["Row", strawberry.lazy("landscape_graphql.schema.tokens")]
TokenOutcomeT = Annotated["TokenOutcome", strawberry.lazy("landscape_graphql.schema.tokens")]
NodeStateT = Annotated["NodeState", strawberry.lazy("landscape_graphql.schema.states")]
RoutingEventT = Annotated["RoutingEvent", strawberry.lazy("landscape_graphql.schema.states")]
CallT = Annotated["Call", strawberry.lazy("landscape_graphql.schema.states")]
SchedulerEventT = Annotated["SchedulerEvent", strawberry.lazy("landscape_graphql.schema.states")]
ValidationErrorT = Annotated["ValidationError", strawberry.lazy("landscape_graphql.schema.row_errors")]
TransformErrorT = Annotated["TransformError", strawberry.lazy("landscape_graphql.schema.row_errors")]
ArtifactT = Annotated["Artifact", strawberry.lazy("landscape_graphql.schema.row_errors")]
PayloadT = Annotated["Payload", strawberry.lazy("landscape_graphql.schema.payloads")]
LineageGraphT = Annotated["LineageGraph", strawberry.lazy("landscape_graphql.schema.lineage")]


_explained = RelationsOf(ExplanationRecord)


@strawberry.type(description="The lineage of one token, as ELSPETH's explain() gives it, plus children and artifacts.")
class Explanation:
    run_id: str

    @strawberry.field(graphql_type="TokenT")
    @staticmethod
    def token(parent: Parent[ExplanationRecord]) -> R.TokenRecord:
        return parent.token

    source_row = _explained.relation(Loaders.row_by_id, lambda e: e.token.row_id, graphql_type="RowT | None")

    @strawberry.field(graphql_type="PayloadT | None", description=(
        "The source row's data from the payload store (what explain --json shows as source_data)."))
    @staticmethod
    async def source_data(parent: Parent[ExplanationRecord], info: Info) -> PayloadRecord | None:
        from .payloads import load_payload
        row = await info.context.loaders.row_by_id.load(parent.token.row_id)
        if row is None:
            return None
        return await load_payload(info, row.source_data_ref, row.source_data_hash)

    @strawberry.field(graphql_type="LineageGraphT | None",
                      description="Not part of ELSPETH's explain(): everything the token came from, to maxDepth.")
    @staticmethod
    async def ancestors(parent: Parent[ExplanationRecord], info: Info, max_depth: int = 10) -> LineageRecord | None:
        return await L.ancestors(info.context, parent.token, max_depth)

    @strawberry.field(graphql_type="LineageGraphT | None",
                      description="Not part of ELSPETH's explain(): everything made from the token, to maxDepth.")
    @staticmethod
    async def descendants(parent: Parent[ExplanationRecord], info: Info, max_depth: int = 10) -> LineageRecord | None:
        return await L.descendants(info.context, parent.token, max_depth)

    node_states = _explained.relation(
        Loaders.node_states_by_token_id, lambda e: e.token.token_id,
        graphql_type="list[NodeStateT] | None")
    routing_events = _explained.relation(
        Loaders.routing_events_by_token_id, lambda e: e.token.token_id,
        graphql_type="list[RoutingEventT] | None")
    calls = _explained.relation(
        Loaders.calls_by_token_id, lambda e: e.token.token_id,
        graphql_type="list[CallT] | None")
    parent_tokens = _explained.relation(
        Loaders.parent_links_by_token_id, lambda e: e.token.token_id, lambda e, links: R.check_parent_links(e.token, links),
        graphql_type="list[TokenT] | None")
    children = _explained.relation(
        Loaders.children_by_token_id, lambda e: e.token.token_id, lambda e, found: R.check_children(e.token, found),
        graphql_type="list[TokenT] | None",
        description="Not part of ELSPETH's explain(): the tokens made from this one.")
    validation_errors = _explained.relation(
        Loaders.validation_errors_by_row_id, lambda e: e.token.row_id, matched_validation_errors,
        graphql_type="list[ValidationErrorT] | None")
    transform_errors = _explained.relation(
        Loaders.transform_errors_by_token_id, lambda e: e.token.token_id,
        graphql_type="list[TransformErrorT] | None")
    outcome = _explained.relation(
        Loaders.outcomes_by_token_id, lambda e: e.token.token_id, lambda e, outcomes: T.current_outcome(e.token, outcomes),
        graphql_type="TokenOutcomeT | None")
    scheduler_events = _explained.relation(
        Loaders.scheduler_events_by_token_id, lambda e: e.token.token_id,
        graphql_type="list[SchedulerEventT] | None",
        description="epoch 29: the token's scheduler transitions (empty in epoch 2).")
    artifacts = _explained.relation(
        Loaders.artifacts_by_token_id, lambda e: e.token.token_id,
        graphql_type="list[ArtifactT] | None")
