"""GraphQL types of what happened at a node: NodeState, RoutingEvent, Call, SchedulerEvent."""

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
from . import enums as E
from ._json import parse_json
from ._relations import RelationsOf
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


_call = RelationsOf(R.CallRecord)
_node_state = RelationsOf(R.NodeStateRecord)
_routing_event = RelationsOf(R.RoutingEventRecord)


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

    @strawberry.field(graphql_type="PayloadT", description=(
        "The payload in the store whose sha256 is this state's input hash, if the store holds one "
        "(node states record hashes only); HASH_ONLY when it does not."))
    @staticmethod
    async def input_data(parent: Parent[R.NodeStateRecord], info: Info) -> PayloadRecord:
        return await load_by_hash(info, parent.input_hash)

    @strawberry.field(graphql_type="PayloadT", description="As inputData, for the state's output hash.")
    @staticmethod
    async def output_data(parent: Parent[R.NodeStateRecord], info: Info) -> PayloadRecord:
        return await load_by_hash(info, parent.output_hash)

    node = _node_state.relation(
        Loaders.node_by_key, lambda p: (p.run_id, p.node_id),
        graphql_type="PipelineNodeT | None")

    token = _node_state.relation(Loaders.token_by_id, lambda p: p.token_id, graphql_type="TokenT | None")

    calls = _node_state.relation(
        Loaders.calls_by_state_id, lambda p: p.state_id,
        graphql_type="list[Call] | None",
        description="External calls made during this state, by call index.")

    routing_events = _node_state.relation(
        Loaders.routing_events_by_state_id, lambda p: p.state_id,
        graphql_type="list[RoutingEvent] | None")


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

    @strawberry.field(graphql_type="PayloadT", description="Why the gate routed so (routing_events.reason_ref).")
    @staticmethod
    async def reason(parent: Parent[R.RoutingEventRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.reason_ref, parent.reason_hash)

    edge = _routing_event.relation(
        Loaders.edge_by_id, lambda p: p.edge_id,
        graphql_type="PipelineEdgeT | None")

    state = _routing_event.relation(
        Loaders.node_state_by_id, lambda p: p.state_id,
        graphql_type="NodeState | None")


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

    @strawberry.field(graphql_type="PayloadT", description="What was sent: the HTTP request, the LLM prompt, the SQL.")
    @staticmethod
    async def request(parent: Parent[R.CallRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.request_ref, parent.request_hash)

    @strawberry.field(graphql_type="PayloadT", description="What came back.")
    @staticmethod
    async def response(parent: Parent[R.CallRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.response_ref, parent.response_hash)

    state = _call.relation(Loaders.node_state_by_id, lambda p: p.state_id, graphql_type="NodeState | None")

    operation = _call.relation(
        Loaders.operation_by_id, lambda p: p.operation_id,
        graphql_type="OperationT | None")


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
