"""GraphQL types of what happened at a node: NodeState, RoutingEvent, Call, SchedulerEvent."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..context import Info
from ..db import records as R
from . import enums as E
from ._json import parse_json
from .payloads import load_by_hash, load_payload
from .relay import Node, to_global_id

if TYPE_CHECKING:
    from .payloads import Payload
    from .runs import Operation, PipelineEdge, PipelineNode
    from .tokens import Token

TokenT = Annotated["Token", strawberry.lazy("landscape_graphql.schema.tokens")]
PipelineNodeT = Annotated["PipelineNode", strawberry.lazy("landscape_graphql.schema.runs")]
PipelineEdgeT = Annotated["PipelineEdge", strawberry.lazy("landscape_graphql.schema.runs")]
OperationT = Annotated["Operation", strawberry.lazy("landscape_graphql.schema.runs")]
PayloadT = Annotated["Payload", strawberry.lazy("landscape_graphql.schema.payloads")]


@strawberry.type(description="One visit of a token to a node; retries repeat the step with attempt 1, 2, ...")
class NodeState(Node):
    state_id: str
    token_id: str
    run_id: str
    node_id: str
    step_index: int
    attempt: int
    status: E.NodeStateStatus
    input_hash: str
    output_hash: str | None
    duration_ms: float | None
    started_at: datetime
    completed_at: datetime | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.NodeStateRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.NodeStateRecord]) -> strawberry.ID:
        return to_global_id("NodeState", parent.state_id)

    @strawberry.field
    @staticmethod
    def context_before(parent: Parent[R.NodeStateRecord]) -> JSON | None:
        return parse_json(parent.context_before_json, f"node_states[{parent.state_id}]", "context_before_json")

    @strawberry.field
    @staticmethod
    def context_after(parent: Parent[R.NodeStateRecord]) -> JSON | None:
        return parse_json(parent.context_after_json, f"node_states[{parent.state_id}]", "context_after_json")

    @strawberry.field
    @staticmethod
    def error(parent: Parent[R.NodeStateRecord]) -> JSON | None:
        return parse_json(parent.error_json, f"node_states[{parent.state_id}]", "error_json")

    @strawberry.field
    @staticmethod
    def success_reason(parent: Parent[R.NodeStateRecord]) -> JSON | None:
        return parse_json(parent.success_reason_json, f"node_states[{parent.state_id}]", "success_reason_json")

    @strawberry.field(description=(
        "The payload in the store whose sha256 is this state's input hash, if the store holds one "
        "(node states record hashes only); HASH_ONLY when it does not."))
    @staticmethod
    async def input_data(parent: Parent[R.NodeStateRecord], info: Info) -> PayloadT:
        return await load_by_hash(info, parent.input_hash)  # type: ignore[no-any-return]

    @strawberry.field(description="As inputData, for the state's output hash.")
    @staticmethod
    async def output_data(parent: Parent[R.NodeStateRecord], info: Info) -> PayloadT:
        return await load_by_hash(info, parent.output_hash)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def node(parent: Parent[R.NodeStateRecord], info: Info) -> PipelineNodeT | None:
        return await info.context.loaders.node_by_key.load((parent.run_id, parent.node_id))  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def token(parent: Parent[R.NodeStateRecord], info: Info) -> TokenT | None:
        return await info.context.loaders.token_by_id.load(parent.token_id)  # type: ignore[no-any-return]

    @strawberry.field(description="External calls made during this state, by call index.")
    @staticmethod
    async def calls(parent: Parent[R.NodeStateRecord], info: Info) -> list[Call] | None:
        return await info.context.loaders.calls_by_state_id.load(parent.state_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def routing_events(parent: Parent[R.NodeStateRecord], info: Info) -> list[RoutingEvent] | None:
        return await info.context.loaders.routing_events_by_state_id.load(parent.state_id)  # type: ignore[no-any-return]


@strawberry.type(description="A routing decision at a gate state: which edge, in which mode.")
class RoutingEvent(Node):
    event_id: str
    state_id: str
    edge_id: str
    routing_group_id: str
    ordinal: int
    mode: E.RoutingMode
    reason_hash: str | None
    reason_ref: str | None
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.RoutingEventRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.RoutingEventRecord]) -> strawberry.ID:
        return to_global_id("RoutingEvent", parent.event_id)

    @strawberry.field(description="Why the gate routed so (routing_events.reason_ref).")
    @staticmethod
    async def reason(parent: Parent[R.RoutingEventRecord], info: Info) -> PayloadT:
        return await load_payload(info, parent.reason_ref, parent.reason_hash)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def edge(parent: Parent[R.RoutingEventRecord], info: Info) -> PipelineEdgeT | None:
        return await info.context.loaders.edge_by_id.load(parent.edge_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def state(parent: Parent[R.RoutingEventRecord], info: Info) -> NodeState | None:
        return await info.context.loaders.node_state_by_id.load(parent.state_id)  # type: ignore[no-any-return]


@strawberry.type(description="An external call (HTTP, LLM, SQL, filesystem...) of a node state or an operation.")
class Call(Node):
    call_id: str
    state_id: str | None
    operation_id: str | None
    call_index: int
    call_type: E.CallType
    status: E.CallStatus
    request_hash: str
    request_ref: str | None
    response_hash: str | None
    response_ref: str | None
    resolved_prompt_template_hash: str | None
    latency_ms: float | None
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.CallRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.CallRecord]) -> strawberry.ID:
        return to_global_id("Call", parent.call_id)

    @strawberry.field
    @staticmethod
    def error(parent: Parent[R.CallRecord]) -> JSON | None:
        return parse_json(parent.error_json, f"calls[{parent.call_id}]", "error_json")

    @strawberry.field(description="What was sent: the HTTP request, the LLM prompt, the SQL.")
    @staticmethod
    async def request(parent: Parent[R.CallRecord], info: Info) -> PayloadT:
        return await load_payload(info, parent.request_ref, parent.request_hash)  # type: ignore[no-any-return]

    @strawberry.field(description="What came back.")
    @staticmethod
    async def response(parent: Parent[R.CallRecord], info: Info) -> PayloadT:
        return await load_payload(info, parent.response_ref, parent.response_hash)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def state(parent: Parent[R.CallRecord], info: Info) -> NodeState | None:
        if parent.state_id is None:
            return None
        return await info.context.loaders.node_state_by_id.load(parent.state_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def operation(parent: Parent[R.CallRecord], info: Info) -> OperationT | None:
        if parent.operation_id is None:
            return None
        return await info.context.loaders.operation_by_id.load(parent.operation_id)  # type: ignore[no-any-return]


@strawberry.type(description="epoch 29: a transition of the token's durable work item.")
class SchedulerEvent:
    event_id: str
    token_id: str
    work_item_id: str
    node_id: str | None
    event_type: str
    from_status: str | None
    to_status: str
    from_attempt: int | None
    to_attempt: int
    recorded_at: datetime

    @strawberry.field
    @staticmethod
    def context(parent: Parent[R.SchedulerEventRecord]) -> JSON | None:
        return parse_json(parent.context_json, f"scheduler_events[{parent.event_id}]", "context_json")
