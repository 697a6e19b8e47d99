"""GraphQL types of run analytics: ELSPETH's MCP reports as fields of Run, and Query.diagnose.

Every part of a report is its own field reading a per-run aggregate loader, so a report costs
only the statements of the parts selected, and the same for 1 run as for 50.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from ..context import Info
from ..db import analytics_records as A
from ..db import records as R
from ..resolvers import analytics as RA
from . import enums as E

if TYPE_CHECKING:
    from .row_errors import TransformError, ValidationError
    from .runs import PipelineNode, Run
    from .states import NodeState

PipelineNodeT = Annotated["PipelineNode", strawberry.lazy("landscape_graphql.schema.runs")]
RunT = Annotated["Run", strawberry.lazy("landscape_graphql.schema.runs")]
NodeStateT = Annotated["NodeState", strawberry.lazy("landscape_graphql.schema.states")]
ValidationErrorT = Annotated["ValidationError", strawberry.lazy("landscape_graphql.schema.row_errors")]
TransformErrorT = Annotated["TransformError", strawberry.lazy("landscape_graphql.schema.row_errors")]

strawberry.enum(RA.Severity)
strawberry.enum(RA.DiagnosisStatus, description="CRITICAL if any problem is critical, OK if none, else WARNING.")
strawberry.enum(RA.ProblemKind)


@dataclass(frozen=True, slots=True)
class _RunPart:
    """A report's parent: the run and the report's arguments."""

    run_id: str
    n: int = 0


async def _counts(info: Info, run_id: str) -> A.RunCounts:
    return await RA.run_counts(info.context, run_id)


# -- summary --------------------------------------------------------------------------------------

@strawberry.type(description="How many records of each kind a run left (ELSPETH's run summary counts).")
class RunCounts:
    rows: int
    tokens: int
    nodes: int
    operations: int
    source_loads: int
    sink_writes: int
    runtime_preflights: int | None = strawberry.field(description="Epoch 29 only; null in epoch 2")

    @strawberry.field
    @staticmethod
    async def node_states(parent: Parent[A.RunCounts], info: Info) -> int:
        return sum(n.executions for n in await RA.node_stats(info.context, parent.run_id))


@strawberry.type
class ErrorTotals:
    @strawberry.field
    @staticmethod
    def validation(parent: Parent[A.RunCounts]) -> int:
        return parent.validation_errors

    @strawberry.field
    @staticmethod
    def transform(parent: Parent[A.RunCounts]) -> int:
        return parent.transform_errors

    @strawberry.field
    @staticmethod
    def total(parent: Parent[A.RunCounts]) -> int:
        return parent.validation_errors + parent.transform_errors


@strawberry.type(description=(
    "A number of outcome records, or of tokens, sharing one outcome. The stored view is given as "
    "stored; the other view only where it does not depend on the token (epoch 2's ROUTED and "
    "DIVERTED have no result/path here). All fields but count are null for tokens without outcome."))
class OutcomeCount:
    terminal: bool | None = strawberry.field(description="is_terminal (epoch 2) / completed (epoch 29)")
    row_outcome: E.RowOutcome | None
    result: E.TerminalResult | None
    path: E.TerminalPath | None
    count: int

    @strawberry.field
    @staticmethod
    def stored_view(parent: Parent[A.OutcomeCount]) -> E.OutcomeView | None:
        return None if parent.stored_view is None else E.OutcomeView(parent.stored_view)


@strawberry.type(description="ELSPETH's get_run_summary, computed by aggregates for many runs at once.")
class RunSummary:
    @strawberry.field(description="completedAt - startedAt; null while the run has not completed.")
    @staticmethod
    def duration_seconds(parent: Parent[R.RunRecord]) -> float | None:
        if parent.completed_at is None:
            return None
        return (parent.completed_at - parent.started_at).total_seconds()

    @strawberry.field(description="Average duration of all the run's node states (not rounded).")
    @staticmethod
    async def avg_state_duration_ms(parent: Parent[R.RunRecord], info: Info) -> float | None:
        return await RA.avg_state_duration_ms(info.context, parent.run_id)

    @strawberry.field(graphql_type="RunCounts")
    @staticmethod
    async def counts(parent: Parent[R.RunRecord], info: Info) -> A.RunCounts:
        return await _counts(info, parent.run_id)

    @strawberry.field(graphql_type="ErrorTotals", description="Validation and transform error records of the run.")
    @staticmethod
    async def errors(parent: Parent[R.RunRecord], info: Info) -> A.RunCounts:
        return await _counts(info, parent.run_id)

    @strawberry.field(graphql_type="list[OutcomeCount]", description=(
        "Outcome RECORDS by stored outcome, as ELSPETH counts them: a token buffered and then "
        "consumed counts twice, a token without outcome not at all."))
    @staticmethod
    async def outcomes(parent: Parent[R.RunRecord], info: Info) -> list[A.OutcomeCount]:
        return await info.context.loaders.analytics.outcome_record_counts.load(parent.run_id)

    @strawberry.field(graphql_type="list[OutcomeCount]", description=(
        "TOKENS by their current outcome (the terminal one, else the latest): each token counts "
        "once; tokens without any outcome count in a group whose outcome fields are null."))
    @staticmethod
    async def token_outcomes(parent: Parent[R.RunRecord], info: Info) -> list[A.OutcomeCount]:
        return await RA.token_outcomes(info.context, parent.run_id)


# -- performance ----------------------------------------------------------------------------------

_PERCENTILE_COST = ("Selecting any percentile adds one statement that sorts all the run's node states "
                    "(the heaviest of the analytics: ~10x the other figures of this type together).")

@strawberry.type(description=(
    "Time spent at one node (all its states: completed, failed, every retry). Percentiles are "
    "nearest-rank (the value at rank ceil(p/100 x n) of the n non-null durations), the same on "
    "SQLite and PostgreSQL."))
class NodePerformance:
    node_id: str
    plugin: str
    node_type: E.NodeType
    executions: int
    failures: int = strawberry.field(description="Failed states")
    retries: int = strawberry.field(description="States with attempt > 0")
    avg_ms: float | None = strawberry.field(description="Average duration (not rounded)")
    min_ms: float | None
    max_ms: float | None
    total_ms: float
    pct_of_total: float = strawberry.field(description="totalMs / the report's totalMs x 100 (not rounded)")
    is_bottleneck: bool = strawberry.field(
        description="pctOfTotal rounded to 0.1 > bottleneckPct (ELSPETH's rule)")
    is_high_variance: bool = strawberry.field(
        description="maxMs > varianceFactor x avgMs rounded to 0.01 (ELSPETH's rule)")

    @strawberry.field(description=_PERCENTILE_COST)
    @staticmethod
    async def p50_ms(parent: Parent[RA.NodePerformance], info: Info) -> float | None:
        found = await RA.percentiles(info.context, parent.run_id, parent.node_id)
        return None if found is None else found.p50_ms

    @strawberry.field(description=_PERCENTILE_COST)
    @staticmethod
    async def p95_ms(parent: Parent[RA.NodePerformance], info: Info) -> float | None:
        found = await RA.percentiles(info.context, parent.run_id, parent.node_id)
        return None if found is None else found.p95_ms

    @strawberry.field(description=_PERCENTILE_COST)
    @staticmethod
    async def p99_ms(parent: Parent[RA.NodePerformance], info: Info) -> float | None:
        found = await RA.percentiles(info.context, parent.run_id, parent.node_id)
        return None if found is None else found.p99_ms

    @strawberry.field(graphql_type="PipelineNodeT | None")
    @staticmethod
    def node(parent: Parent[RA.NodePerformance]) -> R.NodeRecord | None:
        return parent.node


@strawberry.type(description="ELSPETH's get_performance_report: nodes with states, by total time then node id.")
class PerformanceReport:
    total_ms: float = strawberry.field(description="The sum of the nodes' totalMs")
    nodes: list[NodePerformance]


# -- errors ---------------------------------------------------------------------------------------

@strawberry.type(description="Validation errors of one source node in one schema mode.")
class SourceErrorCount:
    node_id: str | None
    plugin: str | None
    schema_mode: str
    count: int

    @strawberry.field(graphql_type="PipelineNodeT | None")
    @staticmethod
    def node(parent: Parent[A.ErrorBucket]) -> R.NodeRecord | None:
        return parent.node


@strawberry.type(description="Transform errors of one transform node.")
class TransformErrorCount:
    node_id: str
    plugin: str
    count: int

    @strawberry.field(graphql_type="PipelineNodeT | None")
    @staticmethod
    def node(parent: Parent[A.ErrorBucket]) -> R.NodeRecord | None:
        return parent.node


async def _buckets(info: Info, run_id: str, kind: str) -> list[A.ErrorBucket]:
    return [b for b in await info.context.loaders.analytics.error_buckets.load(run_id) if b.kind == kind]


@strawberry.type
class ValidationErrorReport:
    @strawberry.field
    @staticmethod
    async def total(parent: Parent[_RunPart], info: Info) -> int:
        return sum(b.count for b in await _buckets(info, parent.run_id, "validation"))

    @strawberry.field(graphql_type="list[SourceErrorCount]", description=(
        "By source NODE and schema mode (ELSPETH groups by plugin name, merging two sources of "
        "one plugin; summing these by plugin gives its numbers)."))
    @staticmethod
    async def by_source(parent: Parent[_RunPart], info: Info) -> list[A.ErrorBucket]:
        return await _buckets(info, parent.run_id, "validation")

    @strawberry.field(graphql_type="list[ValidationErrorT]", description="The earliest `sample` errors (by createdAt, then id).")
    @staticmethod
    async def sample(parent: Parent[_RunPart], info: Info) -> list[R.ValidationErrorRecord]:
        loader = info.context.loaders.analytics.validation_error_samples
        return await loader.load((parent.run_id, parent.n, False))


@strawberry.type
class TransformErrorReport:
    @strawberry.field
    @staticmethod
    async def total(parent: Parent[_RunPart], info: Info) -> int:
        return sum(b.count for b in await _buckets(info, parent.run_id, "transform"))

    @strawberry.field(graphql_type="list[TransformErrorCount]", description=(
        "By transform NODE (ELSPETH groups by plugin name, merging e.g. two keyword_filter nodes; "
        "summing these by plugin gives its numbers)."))
    @staticmethod
    async def by_transform(parent: Parent[_RunPart], info: Info) -> list[A.ErrorBucket]:
        return await _buckets(info, parent.run_id, "transform")

    @strawberry.field(graphql_type="list[TransformErrorT]", description="The earliest `sample` errors (by createdAt, then id).")
    @staticmethod
    async def sample(parent: Parent[_RunPart], info: Info) -> list[R.TransformErrorRecord]:
        loader = info.context.loaders.analytics.transform_error_samples
        return await loader.load((parent.run_id, parent.n, False))


@strawberry.type(description="ELSPETH's get_error_analysis, with buckets by node and ordered samples.")
class ErrorAnalysis:
    @strawberry.field(graphql_type="ValidationErrorReport")
    @staticmethod
    def validation(parent: Parent[_RunPart]) -> _RunPart:
        return parent

    @strawberry.field(graphql_type="TransformErrorReport")
    @staticmethod
    def transform(parent: Parent[_RunPart]) -> _RunPart:
        return parent


# -- LLM usage ------------------------------------------------------------------------------------

@strawberry.type
class CallTypeCount:
    call_type: E.CallType
    count: int


@strawberry.type(description="The `llm` calls made by one node's states and operations.")
class NodeLlmCalls:
    node_id: str
    plugin: str
    total: int
    successful: int = strawberry.field(description="Calls with status SUCCESS")
    failed: int = strawberry.field(description="Calls with any other status")
    avg_latency_ms: float | None
    p95_latency_ms: float | None = strawberry.field(description="Nearest-rank, as NodePerformance's")
    total_latency_ms: float

    @strawberry.field(graphql_type="PipelineNodeT | None")
    @staticmethod
    def node(parent: Parent[A.NodeCalls]) -> R.NodeRecord | None:
        return parent.node


@strawberry.type
class LlmTotals:
    calls: int
    successful: int
    failed: int
    avg_latency_ms: float | None
    total_latency_ms: float


@strawberry.type(description=(
    "Tokens summed from the `usage` object of the stored responses of `llm` calls. Null sums when "
    "no response could be read (payload purged, store not configured, no usage recorded)."))
class TokenUsage:
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    calls_counted: int = strawberry.field(description="LLM calls whose response gave a usage object")
    calls_without_usage: int = strawberry.field(description="LLM calls whose response was unavailable or had none")


@strawberry.type(description=(
    "ELSPETH's get_llm_usage_report plus token usage. Calls are reported by their STORED callType: "
    "epoch 2's LLM plugin recorded its calls as HTTP, so in epoch 2 they count under callTypes "
    "HTTP and not in byNode/total/tokenUsage, which cover LLM calls only."))
class LlmUsage:
    @strawberry.field(description="All the run's calls (of its node states and operations) by type.")
    @staticmethod
    async def call_types(parent: Parent[R.RunRecord], info: Info) -> list[CallTypeCount]:
        found = await info.context.loaders.analytics.call_type_counts.load(parent.run_id)
        return [CallTypeCount(call_type=t, count=n) for _, t, n in found]

    @strawberry.field(graphql_type="list[NodeLlmCalls]", description="LLM calls by node (ELSPETH groups by plugin name).")
    @staticmethod
    async def by_node(parent: Parent[R.RunRecord], info: Info) -> list[A.NodeCalls]:
        return await info.context.loaders.analytics.llm_calls.load(parent.run_id)

    @strawberry.field(graphql_type="LlmTotals")
    @staticmethod
    async def total(parent: Parent[R.RunRecord], info: Info) -> RA.LlmTotals:
        return await RA.llm_totals(info.context, parent.run_id)

    @strawberry.field(graphql_type="TokenUsage")
    @staticmethod
    async def token_usage(parent: Parent[R.RunRecord], info: Info) -> RA.TokenUsage:
        return await RA.token_usage(info.context, parent.run_id)


# -- outcomes -------------------------------------------------------------------------------------

@strawberry.type
class SinkCount:
    sink_name: str
    count: int = strawberry.field(description="Outcome records naming this sink")


@strawberry.type(description="ELSPETH's get_outcome_analysis. Its counts are of outcome RECORDS, as ELSPETH's.")
class OutcomeAnalysis:
    @strawberry.field(description="Terminal outcome records")
    @staticmethod
    async def terminal(parent: Parent[R.RunRecord], info: Info) -> int:
        found = await info.context.loaders.analytics.outcome_record_counts.load(parent.run_id)
        return sum(c.count for c in found if c.terminal)

    @strawberry.field(description="Non-terminal (buffered) outcome records")
    @staticmethod
    async def non_terminal(parent: Parent[R.RunRecord], info: Info) -> int:
        found = await info.context.loaders.analytics.outcome_record_counts.load(parent.run_id)
        return sum(c.count for c in found if not c.terminal)

    @strawberry.field(description="Distinct forkGroupId among outcome records")
    @staticmethod
    async def fork_groups(parent: Parent[R.RunRecord], info: Info) -> int:
        return (await _counts(info, parent.run_id)).fork_groups

    @strawberry.field(description="Distinct joinGroupId among outcome records")
    @staticmethod
    async def join_groups(parent: Parent[R.RunRecord], info: Info) -> int:
        return (await _counts(info, parent.run_id)).join_groups

    @strawberry.field(graphql_type="list[OutcomeCount]", description="Outcome RECORDS by stored outcome (as RunSummary.outcomes)")
    @staticmethod
    async def outcomes(parent: Parent[R.RunRecord], info: Info) -> list[A.OutcomeCount]:
        return await info.context.loaders.analytics.outcome_record_counts.load(parent.run_id)

    @strawberry.field
    @staticmethod
    async def sinks(parent: Parent[R.RunRecord], info: Info) -> list[SinkCount]:
        found = await info.context.loaders.analytics.sink_counts.load(parent.run_id)
        return [SinkCount(sink_name=s, count=n) for _, s, n in found]


# -- failure context ------------------------------------------------------------------------------

@strawberry.type
class FailingNode:
    node_id: str
    plugin: str
    failed_states: int

    @strawberry.field(graphql_type="PipelineNodeT | None")
    @staticmethod
    def node(parent: Parent[RA.FailingNode]) -> R.NodeRecord | None:
        return parent.node


@strawberry.type(description="Totals over the whole run (ELSPETH's are the lengths of its lists cut at 10).")
class FailurePatterns:
    @strawberry.field(graphql_type="list[FailingNode]", description="Every node with failed states (ELSPETH: plugins of the 10 latest)")
    @staticmethod
    async def failing_nodes(parent: Parent[_RunPart], info: Info) -> list[RA.FailingNode]:
        return await RA.failing_nodes(info.context, parent.run_id)

    @strawberry.field(description="Whether any state of the run has attempt > 0")
    @staticmethod
    async def has_retries(parent: Parent[_RunPart], info: Info) -> bool:
        return any(n.retries for n in await RA.node_stats(info.context, parent.run_id))

    @strawberry.field
    @staticmethod
    async def failed_state_count(parent: Parent[_RunPart], info: Info) -> int:
        return sum(n.failures for n in await RA.node_stats(info.context, parent.run_id))

    @strawberry.field
    @staticmethod
    async def transform_error_count(parent: Parent[_RunPart], info: Info) -> int:
        return (await _counts(info, parent.run_id)).transform_errors

    @strawberry.field
    @staticmethod
    async def validation_error_count(parent: Parent[_RunPart], info: Info) -> int:
        return (await _counts(info, parent.run_id)).validation_errors


@strawberry.type(description="ELSPETH's get_failure_context: the latest failures first, `first` of each list.")
class FailureContext:
    @strawberry.field(graphql_type="list[NodeStateT]", description="Failed node states, latest startedAt first")
    @staticmethod
    async def failed_states(parent: Parent[_RunPart], info: Info) -> list[R.NodeStateRecord]:
        loader = info.context.loaders.analytics.failed_states
        return await loader.load((parent.run_id, parent.n, True))

    @strawberry.field(graphql_type="list[TransformErrorT]", description="Transform errors, latest createdAt first")
    @staticmethod
    async def transform_errors(parent: Parent[_RunPart], info: Info) -> list[R.TransformErrorRecord]:
        loader = info.context.loaders.analytics.transform_error_samples
        return await loader.load((parent.run_id, parent.n, True))

    @strawberry.field(graphql_type="list[ValidationErrorT]", description="Validation errors, latest createdAt first")
    @staticmethod
    async def validation_errors(parent: Parent[_RunPart], info: Info) -> list[R.ValidationErrorRecord]:
        loader = info.context.loaders.analytics.validation_error_samples
        return await loader.load((parent.run_id, parent.n, True))

    @strawberry.field(graphql_type="FailurePatterns")
    @staticmethod
    def patterns(parent: Parent[_RunPart]) -> _RunPart:
        return parent


# -- Run fields -----------------------------------------------------------------------------------

def run_summary(parent: Parent[R.RunRecord]) -> R.RunRecord:
    return parent


async def run_performance(parent: Parent[R.RunRecord], info: Info, bottleneck_pct: float = 20.0,
                          variance_factor: float = 5.0) -> RA.PerformanceReport:
    return await RA.performance(info.context, parent.run_id, bottleneck_pct, variance_factor)


def run_error_analysis(parent: Parent[R.RunRecord], sample: int = 5) -> _RunPart:
    return _RunPart(parent.run_id, RA.check_count("sample", sample))


def run_llm_usage(parent: Parent[R.RunRecord]) -> R.RunRecord:
    return parent


def run_outcome_analysis(parent: Parent[R.RunRecord]) -> R.RunRecord:
    return parent


def run_failure_context(parent: Parent[R.RunRecord], first: int = 10) -> _RunPart:
    return _RunPart(parent.run_id, RA.check_count("first", first))


# -- diagnose -------------------------------------------------------------------------------------

@strawberry.type
class DiagnosisProblem:
    severity: RA.Severity
    kind: RA.ProblemKind
    count: int = strawberry.field(description=(
        "Runs (failed, stuck, with many validation errors), open operations, or quarantined outcome "
        "records. A total: ELSPETH stops at 5."))
    run_ids: list[str]
    operation_ids: list[str] = strawberry.field(description="STUCK_OPERATIONS only")


@strawberry.type(description="ELSPETH's diagnose over the runs the caller may see, at a given instant.")
class Diagnosis:
    as_of: datetime
    status: RA.DiagnosisStatus
    problems: list[DiagnosisProblem]
    recent_runs: list[RunT] = strawberry.field(description="The 10 latest runs, newest first")


async def diagnose(info: Info, as_of: datetime, stuck_after_seconds: int = 3600,
                   validation_error_threshold: int = 10, quarantine_window_seconds: int = 86400) -> RA.Diagnosis:
    return await RA.diagnose(info.context, as_of, stuck_after_seconds,
                             validation_error_threshold, quarantine_window_seconds)
