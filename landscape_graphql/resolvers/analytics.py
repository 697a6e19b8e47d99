"""Run analytics: ELSPETH's MCP reports, composed from the per-run aggregate loaders.

Each function returns domain records; the parts a query does not select are never loaded, since
each part of a report is its own field reading its own loader.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..db import analytics as q
from ..db import analytics_records as A
from ..db import contracts as C
from ..db import records as R
from ..db.diagnose import diagnose_facts
from ..db.enums import NodeType
from ..errors import AuditIntegrityError, BadArgument

if TYPE_CHECKING:
    from ..context import Context

MAX_LIST = 500  # the most records a sample or failure list returns, like a page


def check_count(name: str, value: int) -> int:
    if not 0 <= value <= MAX_LIST:
        raise BadArgument(name, f"{name} must be between 0 and {MAX_LIST}")
    return value


# -- summary --------------------------------------------------------------------------------------

async def run_counts(ctx: Context, run_id: str) -> A.RunCounts:
    counts: A.RunCounts | None = await ctx.loaders.analytics.run_counts.load(run_id)
    if counts is None:
        raise LookupError(f"no counts for run {run_id}: a run's counts exist whenever the run does")
    return counts


async def node_stats(ctx: Context, run_id: str) -> list[A.NodeStats]:
    found: list[A.NodeStats] = await ctx.loaders.analytics.node_stats.load(run_id)
    return found


async def avg_state_duration_ms(ctx: Context, run_id: str) -> float | None:
    stats = await node_stats(ctx, run_id)
    timed = sum(n.timed for n in stats)
    return sum(n.total_ms for n in stats) / timed if timed else None


async def token_outcomes(ctx: Context, run_id: str) -> list[A.OutcomeCount]:
    """Tokens by their resolved outcome (terminal, else latest), from the outcome record groups
    and the run's counts, without reading token_outcomes token by token: only a buffered
    outcome is non-terminal and a token has at most one terminal outcome (both checked here),
    so the terminal record groups are the terminal tokens, the rest of the tokens with records
    are buffered, and the tokens without records are the difference."""
    counts, records = await asyncio.gather(run_counts(ctx, run_id),
                                           ctx.loaders.analytics.outcome_record_counts.load(run_id))
    where = f"token_outcomes[run {run_id}]"
    if counts.open_not_buffered:
        raise AuditIntegrityError(where, "only a buffered outcome is non-terminal",
                                  f"{counts.open_not_buffered} non-terminal outcome records are not buffered")
    if counts.terminal_records != counts.terminal_tokens:
        raise AuditIntegrityError(where, "a token has at most one terminal outcome",
                                  f"{counts.terminal_records - counts.terminal_tokens} more terminal outcomes "
                                  "than tokens having one")
    without = counts.tokens - counts.terminal_tokens - counts.buffered_only_tokens
    if without < 0:
        raise AuditIntegrityError(where, "every outcome record names a token of its run",
                                  f"{-without} more tokens with outcomes than tokens")
    groups: list[A.OutcomeCount] = [c for c in records if c.terminal]
    if counts.buffered_only_tokens:
        groups.append(q.buffered_group(ctx.db, run_id, counts.buffered_only_tokens))
    if without:
        groups.append(q.no_outcome_group(run_id, without))
    return groups


# -- performance ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NodePerformance:
    run_id: str
    node_id: str
    node: R.NodeRecord
    plugin: str
    node_type: NodeType
    executions: int
    failures: int
    retries: int
    avg_ms: float | None
    min_ms: float | None
    max_ms: float | None
    total_ms: float
    pct_of_total: float
    is_bottleneck: bool
    is_high_variance: bool


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    total_ms: float
    nodes: list[NodePerformance]


async def performance(ctx: Context, run_id: str, bottleneck_pct: float, variance_factor: float) -> PerformanceReport:
    stats = await node_stats(ctx, run_id)
    total = sum(t.total_ms for t in stats)
    nodes = []
    for t in stats:
        pct = t.total_ms / total * 100 if total else 0.0
        # ELSPETH's rules, on its rounded figures (pct to 0.1, avg to 0.01 ms), so that the
        # default thresholds flag exactly the nodes ELSPETH flags.
        high_variance = (t.max_ms is not None and t.avg_ms is not None
                         and t.max_ms > variance_factor * round(t.avg_ms, 2))
        nodes.append(NodePerformance(
            t.run_id, t.node_id, t.node, t.plugin, t.node_type, t.executions, t.failures, t.retries, t.avg_ms,
            t.min_ms, t.max_ms, t.total_ms, pct, round(pct, 1) > bottleneck_pct, high_variance))
    return PerformanceReport(total, nodes)


async def percentiles(ctx: Context, run_id: str, node_id: str) -> A.NodePercentiles | None:
    found: list[A.NodePercentiles] = await ctx.loaders.analytics.node_percentiles.load(run_id)
    return next((p for p in found if p.node_id == node_id), None)


# -- failure patterns -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FailingNode:
    run_id: str
    node_id: str
    node: R.NodeRecord
    plugin: str
    failed_states: int


async def failing_nodes(ctx: Context, run_id: str) -> list[FailingNode]:
    stats = await node_stats(ctx, run_id)
    return sorted((FailingNode(n.run_id, n.node_id, n.node, n.plugin, n.failures) for n in stats if n.failures),
                  key=lambda f: f.node_id)


# -- source contracts -----------------------------------------------------------------------------

async def source_contracts(ctx: Context, run_id: str) -> list[C.SourceContract]:
    found: list[C.SourceContract] = await ctx.loaders.analytics.source_contracts.load(run_id)
    return found


async def field_provenance(ctx: Context, run_id: str, name: str) -> list[tuple[C.SourceContract, C.ContractField]]:
    """The field `name` (normalized, else original, as ELSPETH resolves it) in each source's
    contract that has it. None having it is a BAD_ARGUMENT naming the fields there are, as
    ELSPETH's explain_field answers "not found in contract" with its available fields."""
    sources = await source_contracts(ctx, run_id)
    found = [(s, f) for s in sources if s.contract is not None and (f := s.contract.find(name)) is not None]
    if not found:
        available = sorted({f.normalized_name for s in sources if s.contract is not None for f in s.contract.fields})
        if not available:
            raise BadArgument("name", f"run {run_id} recorded no source schema contract")
        raise BadArgument("name", f"no field {name!r} in the source contracts of run {run_id}; "
                                  f"fields: {', '.join(available)}")
    return found


# -- LLM usage ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LlmTotals:
    calls: int
    successful: int
    failed: int
    avg_latency_ms: float | None
    total_latency_ms: float


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    calls_counted: int
    calls_without_usage: int


async def llm_totals(ctx: Context, run_id: str) -> LlmTotals:
    nodes = await ctx.loaders.analytics.llm_calls.load(run_id)
    calls = sum(n.total for n in nodes)
    latency = sum(n.total_latency_ms for n in nodes)
    return LlmTotals(calls, sum(n.successful for n in nodes), sum(n.failed for n in nodes),
                     latency / calls if calls else None, latency)


def _usage(response: Any) -> dict[str, Any] | None:
    """The OpenAI-style `usage` object of a stored LLM response (top level or in raw_response)."""
    if not isinstance(response, dict):
        return None
    for holder in (response, response.get("raw_response"), response.get("body")):
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict) and any(isinstance(usage.get(k), int) for k in
                                           ("prompt_tokens", "completion_tokens", "total_tokens")):
            return usage
    return None


async def token_usage(ctx: Context, run_id: str) -> TokenUsage:
    refs = await ctx.loaders.analytics.llm_responses.load(run_id)
    payloads = await ctx.loaders.payload_by_ref.load_many([(ref, digest) for _, ref, digest in refs])
    sums = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    counted = 0
    for payload in payloads:
        usage = _usage(payload.json)
        if usage is None:
            continue
        counted += 1
        for key in sums:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                sums[key] += value
    if counted == 0:
        return TokenUsage(None, None, None, 0, len(refs))
    return TokenUsage(sums["prompt_tokens"], sums["completion_tokens"], sums["total_tokens"],
                      counted, len(refs) - counted)


# -- diagnose -------------------------------------------------------------------------------------

class Severity(Enum):
    CRITICAL = "CRITICAL"
    WARNING = "WARNING"
    INFO = "INFO"


class DiagnosisStatus(Enum):
    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class ProblemKind(Enum):
    FAILED_RUNS = "FAILED_RUNS"
    STUCK_RUNS = "STUCK_RUNS"
    STUCK_OPERATIONS = "STUCK_OPERATIONS"
    HIGH_VALIDATION_ERRORS = "HIGH_VALIDATION_ERRORS"
    QUARANTINED_ROWS = "QUARANTINED_ROWS"


@dataclass(frozen=True, slots=True)
class Problem:
    severity: Severity
    kind: ProblemKind
    count: int
    run_ids: list[str]
    operation_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    as_of: datetime
    status: DiagnosisStatus
    problems: list[Problem]
    recent_runs: list[R.RunRecord]


async def diagnose(ctx: Context, as_of: datetime, stuck_after_seconds: int, validation_error_threshold: int,
                   quarantine_window_seconds: int) -> Diagnosis:
    if stuck_after_seconds < 0:
        raise BadArgument("stuckAfterSeconds", "stuckAfterSeconds must be >= 0")
    if quarantine_window_seconds < 0:
        raise BadArgument("quarantineWindowSeconds", "quarantineWindowSeconds must be >= 0")
    facts = await diagnose_facts(
        ctx.db, as_of, stuck_after=timedelta(seconds=stuck_after_seconds),
        validation_threshold=validation_error_threshold,
        quarantine_window=timedelta(seconds=quarantine_window_seconds), allowed=ctx.allowed_runs)
    problems = []
    if facts.failed_runs:
        problems.append(Problem(Severity.CRITICAL, ProblemKind.FAILED_RUNS, len(facts.failed_runs),
                                facts.failed_runs))
    if facts.stuck_runs:
        problems.append(Problem(Severity.WARNING, ProblemKind.STUCK_RUNS, len(facts.stuck_runs), facts.stuck_runs))
    if facts.stuck_operations:
        problems.append(Problem(Severity.WARNING, ProblemKind.STUCK_OPERATIONS, len(facts.stuck_operations), [],
                                facts.stuck_operations))
    if facts.high_validation_errors:
        problems.append(Problem(Severity.WARNING, ProblemKind.HIGH_VALIDATION_ERRORS,
                                len(facts.high_validation_errors),
                                [f.run_id for f in facts.high_validation_errors]))
    if facts.quarantined:
        problems.append(Problem(Severity.INFO, ProblemKind.QUARANTINED_ROWS, sum(f.count for f in facts.quarantined),
                                [f.run_id for f in facts.quarantined]))
    # As ELSPETH: any critical problem is CRITICAL, any other problem (INFO too) a WARNING.
    status = (DiagnosisStatus.CRITICAL if any(p.severity is Severity.CRITICAL for p in problems)
              else DiagnosisStatus.WARNING if problems else DiagnosisStatus.OK)
    recent = await ctx.loaders.run_by_id.load_many(facts.recent_runs)
    return Diagnosis(as_of, status, problems, [r for r in recent if r is not None])
