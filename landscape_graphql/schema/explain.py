"""The Explanation type: everything ELSPETH's explain() returns for one token, and more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from ..context import Info
from ..resolvers import lineage as L
from ..resolvers import tokens as T
from ..resolvers.explain import Explanation as ExplanationRecord

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


@strawberry.type(description="The lineage of one token, as ELSPETH's explain() gives it, plus children and artifacts.")
class Explanation:
    run_id: str

    @strawberry.field
    @staticmethod
    def token(parent: Parent[ExplanationRecord]) -> TokenT:
        return parent.token  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def source_row(parent: Parent[ExplanationRecord], info: Info) -> RowT | None:
        return await info.context.loaders.row_by_id.load(parent.token.row_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The source row's data from the payload store (what explain --json shows as source_data).")
    @staticmethod
    async def source_data(parent: Parent[ExplanationRecord], info: Info) -> PayloadT | None:
        from .payloads import load_payload
        row = await info.context.loaders.row_by_id.load(parent.token.row_id)
        if row is None:
            return None
        return await load_payload(info, row.source_data_ref, row.source_data_hash)  # type: ignore[no-any-return]

    @strawberry.field(description="Not part of ELSPETH's explain(): everything the token came from, to maxDepth.")
    @staticmethod
    async def ancestors(parent: Parent[ExplanationRecord], info: Info, max_depth: int = 10) -> LineageGraphT | None:
        return await L.ancestors(info.context, parent.token, max_depth)  # type: ignore[return-value]

    @strawberry.field(description="Not part of ELSPETH's explain(): everything made from the token, to maxDepth.")
    @staticmethod
    async def descendants(parent: Parent[ExplanationRecord], info: Info, max_depth: int = 10) -> LineageGraphT | None:
        return await L.descendants(info.context, parent.token, max_depth)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def node_states(parent: Parent[ExplanationRecord], info: Info) -> list[NodeStateT] | None:
        return await T.node_states(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def routing_events(parent: Parent[ExplanationRecord], info: Info) -> list[RoutingEventT] | None:
        return await T.routing_events(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def calls(parent: Parent[ExplanationRecord], info: Info) -> list[CallT] | None:
        return await T.calls(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def parent_tokens(parent: Parent[ExplanationRecord], info: Info) -> list[TokenT] | None:
        return await T.parents(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field(description="Not part of ELSPETH's explain(): the tokens made from this one.")
    @staticmethod
    async def children(parent: Parent[ExplanationRecord], info: Info) -> list[TokenT] | None:
        return await T.children(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def validation_errors(parent: Parent[ExplanationRecord], info: Info) -> list[ValidationErrorT] | None:
        from .enums import MatchedBy
        from .row_errors import MatchedValidationError
        found = await info.context.loaders.validation_errors_by_row_id.load(parent.token.row_id)
        return [MatchedValidationError(record=rec, matched_by=MatchedBy(by)) for _, by, rec in found]

    @strawberry.field
    @staticmethod
    async def transform_errors(parent: Parent[ExplanationRecord], info: Info) -> list[TransformErrorT] | None:
        return await T.transform_errors(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def outcome(parent: Parent[ExplanationRecord], info: Info) -> TokenOutcomeT | None:
        return await T.outcome(info.context, parent.token)  # type: ignore[return-value]

    @strawberry.field(description="epoch 29: the token's scheduler transitions (empty in epoch 2).")
    @staticmethod
    async def scheduler_events(parent: Parent[ExplanationRecord], info: Info) -> list[SchedulerEventT] | None:
        return await info.context.loaders.scheduler_events_by_token_id.load(parent.token.token_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def artifacts(parent: Parent[ExplanationRecord], info: Info) -> list[ArtifactT] | None:
        return await info.context.loaders.artifacts_by_token_id.load(parent.token.token_id)  # type: ignore[no-any-return]
