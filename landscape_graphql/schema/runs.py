"""GraphQL types of a run and its pipeline: Run, PipelineNode, Edge, Operation, Checkpoint, PreflightResult."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Parent
from strawberry.scalars import JSON

from ..context import Info
from ..db import pages as P
from ..db import records as R
from ..loaders import Loaders
from ..payloads import Payload as PayloadRecord
from ..resolvers._paging import page_request
from . import analytics as AN
from . import contracts as CT
from . import enums as E
from ._json import parse_json
from ._relations import RelationsOf, record_field
from .dag import DagData
from .payloads import load_payload
from .relay import Connection, Node, to_global_id

if TYPE_CHECKING:
    from .dag import RunDag
    from .export import ExportRecordConnection
    from .payloads import Payload
    from .row_errors import Artifact, TransformError, ValidationError
    from .states import Call, NodeState
    from .tokens import Batch, Row, Token

TokenT = Annotated["Token", strawberry.lazy("landscape_graphql.schema.tokens")]
RowT = Annotated["Row", strawberry.lazy("landscape_graphql.schema.tokens")]
BatchT = Annotated["Batch", strawberry.lazy("landscape_graphql.schema.tokens")]
NodeStateT = Annotated["NodeState", strawberry.lazy("landscape_graphql.schema.states")]
CallT = Annotated["Call", strawberry.lazy("landscape_graphql.schema.states")]
ValidationErrorT = Annotated["ValidationError", strawberry.lazy("landscape_graphql.schema.row_errors")]
TransformErrorT = Annotated["TransformError", strawberry.lazy("landscape_graphql.schema.row_errors")]
ArtifactT = Annotated["Artifact", strawberry.lazy("landscape_graphql.schema.row_errors")]
PayloadT = Annotated["Payload", strawberry.lazy("landscape_graphql.schema.payloads")]
DagT = Annotated["RunDag", strawberry.lazy("landscape_graphql.schema.dag")]
ExportRecordsT = Annotated["ExportRecordConnection", strawberry.lazy("landscape_graphql.schema.export")]


_edge = RelationsOf(R.EdgeRecord)
_operation = RelationsOf(R.OperationRecord)
_run = RelationsOf(R.RunRecord)


@strawberry.input
class RunFilter:
    statuses: list[E.RunStatus] | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


@strawberry.input(description="Rows by position: row_index (epoch 2) or ingest_sequence (epoch 29), inclusive.")
class RowFilter:
    index_from: int | None = None
    index_to: int | None = None


@strawberry.input(description="Tokens by their current outcome (terminal, else latest), sink, branch, and where they went.")
class TokenFilter:
    row_outcomes: list[E.RowOutcome] | None = None
    results: list[E.TerminalResult] | None = None
    paths: list[E.TerminalPath] | None = None
    sink_name: str | None = None
    branch_name: str | None = None
    row_id: str | None = None
    node_id: str | None = strawberry.field(
        default=None, description="Tokens with a node state at this pipeline node.")
    edge_id: str | None = strawberry.field(
        default=None, description="Tokens that crossed this pipeline edge: a gate route's routed tokens; "
        "for any other edge, tokens with node states at both of its ends.")


@strawberry.input
class NodeStateFilter:
    node_id: str | None = None
    statuses: list[E.NodeStateStatus] | None = None
    retries: bool | None = strawberry.field(
        default=None, description="true: only retries (a later attempt of the same token at the same node); "
        "false: only first attempts.")


@strawberry.input
class CallFilter:
    call_types: list[E.CallType] | None = None
    statuses: list[E.CallStatus] | None = None


@strawberry.input(description="Errors at one node (the source for validation errors, the transform otherwise).")
class ErrorFilter:
    node_id: str | None = None


def _page(info: Info, first: int | None, after: str | None, last: int | None,
          before: str | None) -> tuple[P.PageRequest, int]:
    return page_request(info.context.settings, first, after, last, before)


@strawberry.type(description="One execution of a pipeline.")
class Run(Node):
    run_id: str
    status: E.RunStatus
    started_at: datetime
    completed_at: datetime | None
    config_hash: str
    reproducibility_grade: str | None
    canonical_version: str
    export_status: str | None
    export_error: str | None
    exported_at: datetime | None
    export_format: str | None
    export_sink: str | None
    llm_call_count: int | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.RunRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.RunRecord]) -> strawberry.ID:
        return to_global_id("Run", parent.run_id)

    @strawberry.field(description="The resolved pipeline settings ELSPETH recorded.")
    @staticmethod
    def settings(parent: Parent[R.RunRecord]) -> JSON | None:
        return parse_json(parent.settings_json, f"runs[{parent.run_id}]", "settings_json")

    nodes = _run.relation(
        Loaders.nodes_by_run_id, lambda p: p.run_id,
        graphql_type="list[PipelineNode] | None",
        description="The pipeline's nodes (small: one per plugin instance).")

    edges = _run.relation(
        Loaders.edges_by_run_id, lambda p: p.run_id,
        graphql_type="list[PipelineEdge] | None",
        description="The pipeline's edges.")

    @strawberry.field(graphql_type="DagT | None", description="The pipeline as a graph, with the tokens that crossed each edge.")
    @staticmethod
    async def dag(parent: Parent[R.RunRecord], info: Info) -> DagData:
        loaders = info.context.loaders
        nodes = await loaders.nodes_by_run_id.load(parent.run_id)
        edges = await loaders.edges_by_run_id.load(parent.run_id)
        counts = await loaders.edge_counts_by_run_id.load(parent.run_id)
        return DagData(nodes=nodes, edges=edges, counts={e: n for _, e, n in counts})

    @strawberry.field(description="Every record of the run, table by table in storage order, for scripted "
                                  "export (`landscape-graphql export --preset run --url …` pages through it).")
    @staticmethod
    async def export_records(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                             after: str | None = None) -> ExportRecordsT:
        from ..resolvers.export import export_records
        from .export import ExportRecordConnection
        return ExportRecordConnection(page=await export_records(info.context, parent.run_id, first, after))

    @strawberry.field
    @staticmethod
    async def rows(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                   after: str | None = None, last: int | None = None, before: str | None = None,
                   filter: RowFilter | None = None) -> Connection[RowT] | None:
        req, size = _page(info, first, after, last, before)
        f = filter or RowFilter()
        return Connection(page=await P.rows_page(info.context.db, parent.run_id, req, size,
                                                 index_from=f.index_from, index_to=f.index_to))

    @strawberry.field
    @staticmethod
    async def tokens(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                     after: str | None = None, last: int | None = None, before: str | None = None,
                     filter: TokenFilter | None = None) -> Connection[TokenT] | None:
        req, size = _page(info, first, after, last, before)
        f = filter or TokenFilter()
        flt = P.TokenFilter(row_outcomes=f.row_outcomes or (), results=f.results or (),
                            paths=f.paths or (), sink_name=f.sink_name,
                            branch_name=f.branch_name, row_id=f.row_id, node_id=f.node_id,
                            edge_id=f.edge_id)
        return Connection(page=await P.tokens_page(info.context.db, parent.run_id, req, size, flt))

    @strawberry.field
    @staticmethod
    async def node_states(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                          after: str | None = None, last: int | None = None,
                          before: str | None = None,
                          filter: NodeStateFilter | None = None) -> Connection[NodeStateT] | None:
        req, size = _page(info, first, after, last, before)
        f = filter or NodeStateFilter()
        return Connection(page=await P.node_states_page(
            info.context.db, parent.run_id, req, size, node_id=f.node_id, statuses=f.statuses or (),
            retries=f.retries))

    @strawberry.field(description="External calls of the run: of its node states and of its operations.")
    @staticmethod
    async def calls(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                    after: str | None = None, last: int | None = None, before: str | None = None,
                    filter: CallFilter | None = None) -> Connection[CallT] | None:
        req, size = _page(info, first, after, last, before)
        f = filter or CallFilter()
        return Connection(page=await P.calls_page(
            info.context.db, parent.run_id, req, size, call_types=f.call_types or (),
            statuses=f.statuses or ()))

    @strawberry.field
    @staticmethod
    async def operations(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                         after: str | None = None, last: int | None = None,
                         before: str | None = None) -> Connection[Operation] | None:
        req, size = _page(info, first, after, last, before)
        return Connection(page=await P.operations_page(info.context.db, parent.run_id, req, size))

    @strawberry.field
    @staticmethod
    async def batches(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                      after: str | None = None, last: int | None = None,
                      before: str | None = None) -> Connection[BatchT] | None:
        req, size = _page(info, first, after, last, before)
        return Connection(page=await P.batches_page(info.context.db, parent.run_id, req, size))

    @strawberry.field
    @staticmethod
    async def artifacts(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                        after: str | None = None, last: int | None = None,
                        before: str | None = None) -> Connection[ArtifactT] | None:
        req, size = _page(info, first, after, last, before)
        return Connection(page=await P.artifacts_page(info.context.db, parent.run_id, req, size))

    @strawberry.field
    @staticmethod
    async def validation_errors(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                                after: str | None = None, last: int | None = None,
                                before: str | None = None,
                                filter: ErrorFilter | None = None) -> Connection[ValidationErrorT] | None:
        req, size = _page(info, first, after, last, before)
        return Connection(page=await P.validation_errors_page(
            info.context.db, parent.run_id, req, size, node_id=(filter or ErrorFilter()).node_id))

    @strawberry.field
    @staticmethod
    async def transform_errors(parent: Parent[R.RunRecord], info: Info, first: int | None = None,
                               after: str | None = None, last: int | None = None,
                               before: str | None = None,
                               filter: ErrorFilter | None = None) -> Connection[TransformErrorT] | None:
        req, size = _page(info, first, after, last, before)
        return Connection(page=await P.transform_errors_page(
            info.context.db, parent.run_id, req, size, node_id=(filter or ErrorFilter()).node_id))

    # Run analytics (schema/analytics.py): aggregates batched over every run of the request.
    summary: AN.RunSummary = record_field(AN.run_summary, description=(
        "ELSPETH's run summary: duration, counts, errors, outcome records and tokens by outcome."))
    performance: AN.PerformanceReport = record_field(AN.run_performance, description=(
        "Time per node with percentiles; bottlenecks over bottleneckPct % of the total, high "
        "variance when maxMs > varianceFactor x avgMs."))
    error_analysis: AN.ErrorAnalysis = record_field(AN.run_error_analysis, description=(
        "Validation and transform errors by node, with the earliest `sample` (0..500) of each."))
    llm_usage: AN.LlmUsage = record_field(AN.run_llm_usage, description=(
        "Calls by type, LLM calls by node, and token usage from the stored LLM responses."))
    outcome_analysis: AN.OutcomeAnalysis = record_field(AN.run_outcome_analysis, description=(
        "Outcome records by outcome and sink, and the fork/join groups they name."))
    failure_context: AN.FailureContext = record_field(AN.run_failure_context, description=(
        "The latest `first` (0..500) failed states, transform and validation errors, and totals."))

    @strawberry.field(description=(
        "The schema contract recorded for each source of the run (ELSPETH's get_run_contract shows "
        "the first source only), by source name. Empty if the run recorded none; null (with an "
        "AUDIT_INTEGRITY error naming the run and source) if a recorded contract does not verify."))
    @staticmethod
    async def contract(parent: Parent[R.RunRecord], info: Info) -> list[CT.SourceContract] | None:
        return await CT.run_contract(info, parent.run_id)

    @strawberry.field(description=(
        "One field's provenance (ELSPETH's explain_field) in every source contract that has it: "
        "`name` is a normalized name, else an original one, as ELSPETH resolves it. A name no "
        "contract of the run has is a BAD_ARGUMENT listing the fields there are (ELSPETH answers "
        "it with an error and its available fields too), and the field is null."))
    @staticmethod
    async def field(parent: Parent[R.RunRecord], info: Info, name: str) -> list[CT.SourceField] | None:
        return await CT.run_field(info, parent.run_id, name)

    checkpoints = _run.relation(
        Loaders.checkpoints_by_run_id, lambda p: p.run_id,
        graphql_type="list[Checkpoint] | None")

    preflight_results = _run.relation(
        Loaders.preflight_results_by_run_id, lambda p: p.run_id,
        graphql_type="list[PreflightResult] | None")


@strawberry.type(name="PipelineNode", description="A node of a run's DAG (the `nodes` table); keyed per run.")
class PipelineNode(Node):
    node_id: str
    run_id: str
    plugin_name: str
    node_type: E.NodeType
    plugin_version: str
    determinism: E.Determinism
    config_hash: str
    schema_hash: str | None
    sequence_in_pipeline: int | None
    registered_at: datetime
    schema_mode: str | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.NodeRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.NodeRecord]) -> strawberry.ID:
        return to_global_id("PipelineNode", parent.run_id, parent.node_id)

    @strawberry.field
    @staticmethod
    def config(parent: Parent[R.NodeRecord]) -> JSON | None:
        return parse_json(parent.config_json, f"nodes[{parent.run_id}/{parent.node_id}]", "config_json")


@strawberry.type(name="PipelineEdge", description="An edge of a run's DAG; its label names a gate's route.")
class PipelineEdge(Node):
    edge_id: str
    run_id: str
    from_node_id: str
    to_node_id: str
    label: str
    default_mode: E.RoutingMode
    created_at: datetime

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.EdgeRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.EdgeRecord]) -> strawberry.ID:
        return to_global_id("PipelineEdge", parent.edge_id)

    from_node = _edge.relation(
        Loaders.node_by_key, lambda p: (p.run_id, p.from_node_id),
        graphql_type="PipelineNode | None")

    to_node = _edge.relation(
        Loaders.node_by_key, lambda p: (p.run_id, p.to_node_id),
        graphql_type="PipelineNode | None")


@strawberry.type(description="A source load, sink write or (epoch 29) runtime preflight, with its calls.")
class Operation(Node):
    operation_id: str
    run_id: str
    node_id: str
    operation_type: E.OperationType
    sink_effect_id: str | None
    started_at: datetime
    completed_at: datetime | None
    status: E.OperationStatus
    input_data_ref: str | None
    input_data_hash: str | None
    output_data_ref: str | None
    output_data_hash: str | None
    error_message: str | None
    duration_ms: float | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, R.OperationRecord)

    @strawberry.field
    @staticmethod
    def id(parent: Parent[R.OperationRecord]) -> strawberry.ID:
        return to_global_id("Operation", parent.operation_id)

    node = _operation.relation(
        Loaders.node_by_key, lambda p: (p.run_id, p.node_id),
        graphql_type="PipelineNode | None")

    @strawberry.field(graphql_type="PayloadT")
    @staticmethod
    async def input(parent: Parent[R.OperationRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.input_data_ref, parent.input_data_hash)

    @strawberry.field(graphql_type="PayloadT")
    @staticmethod
    async def output(parent: Parent[R.OperationRecord], info: Info) -> PayloadRecord:
        return await load_payload(info, parent.output_data_ref, parent.output_data_hash)

    calls = _operation.relation(
        Loaders.calls_by_operation_id, lambda p: p.operation_id,
        graphql_type="list[CallT] | None")


@strawberry.type
class Checkpoint:
    checkpoint_id: str
    run_id: str
    token_id: str | None
    node_id: str | None
    sequence_number: int
    created_at: datetime
    upstream_topology_hash: str
    format_version: int | None


@strawberry.type
class PreflightResult:
    result_id: str
    run_id: str
    result_type: E.PreflightResultType
    name: str
    created_at: datetime

    @strawberry.field
    @staticmethod
    def result(parent: Parent[R.PreflightResultRecord]) -> JSON | None:
        return parse_json(parent.result_json, f"preflight_results[{parent.result_id}]", "result_json")
