"""Aggregate records of run analytics: what one grouped SQL row becomes (see analytics.py).

They are rows of aggregates, not audit records, so they live beside the statements that make
them rather than in records.py; the enum values in them are checked as records.py checks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import NodeType, RowOutcome, TerminalPath, TerminalResult
from .records import NodeRecord


@dataclass(frozen=True, slots=True)
class RunCounts:
    """A run's record counts, read with one scan of each table but node_states (whose
    figures come from the per-node aggregate, `NodeStats`)."""

    run_id: str
    rows: int
    tokens: int
    nodes: int
    operations: int
    source_loads: int
    sink_writes: int
    runtime_preflights: int | None  # epoch 29 only
    validation_errors: int
    transform_errors: int
    fork_groups: int  # distinct fork_group_id of token_outcomes, as ELSPETH counts them
    join_groups: int
    # What resolving each token's outcome needs, from the same scan of token_outcomes:
    terminal_records: int
    terminal_tokens: int  # distinct tokens with a terminal record (fewer: a token has two)
    buffered_only_tokens: int  # tokens whose only records are non-terminal
    open_not_buffered: int  # non-terminal records that are not `buffered` (an integrity error)


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """A number of outcome records (or of tokens) sharing one outcome.

    `stored_view` None with every field None is the group of tokens without any outcome.
    """

    run_id: str
    stored_view: str | None  # "ROW_OUTCOME" (epoch 2) or "RESULT_PATH" (epoch 29)
    terminal: bool | None
    row_outcome: RowOutcome | None
    result: TerminalResult | None
    path: TerminalPath | None
    count: int


@dataclass(frozen=True, slots=True)
class NodeStats:
    """One node's states, aggregated: the single scan of node_states that performance, the
    summary's state counts and the failure patterns all read."""

    run_id: str
    node_id: str
    node: NodeRecord
    executions: int
    failures: int
    retries: int
    timed: int  # states with a duration
    avg_ms: float | None
    min_ms: float | None
    max_ms: float | None
    total_ms: float

    @property
    def plugin(self) -> str:
        return self.node.plugin_name

    @property
    def node_type(self) -> NodeType:
        return self.node.node_type


@dataclass(frozen=True, slots=True)
class NodePercentiles:
    run_id: str
    node_id: str
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class ErrorBucket:
    kind: str  # "validation" or "transform"
    run_id: str
    node_id: str | None
    node: NodeRecord | None  # None: a validation error of no source, or of a node not in the run
    schema_mode: str | None
    count: int

    @property
    def plugin(self) -> str | None:
        return None if self.node is None else self.node.plugin_name


@dataclass(frozen=True, slots=True)
class NodeCalls:
    run_id: str
    node_id: str
    node: NodeRecord
    total: int
    successful: int
    failed: int
    avg_latency_ms: float | None
    total_latency_ms: float
    p95_latency_ms: float | None

    @property
    def plugin(self) -> str:
        return self.node.plugin_name


@dataclass(frozen=True, slots=True)
class RunFlag:
    """A run a diagnose rule flagged, with the number it was flagged for."""

    run_id: str
    count: int


@dataclass(frozen=True, slots=True)
class DiagnoseFacts:
    failed_runs: list[str]  # newest first
    stuck_runs: list[str]
    stuck_operations: list[str]
    high_validation_errors: list[RunFlag]  # most errors first
    quarantined: list[RunFlag]  # runs of the window with quarantined outcomes
    recent_runs: list[str]  # newest first
