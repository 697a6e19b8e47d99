"""Aggregate records of run analytics: what one grouped SQL row becomes (see analytics.py).

They are rows of aggregates, not audit records, so they live beside the statements that make
them rather than in records.py; the enum values in them are checked as records.py checks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import NodeType, RowOutcome, TerminalPath, TerminalResult


@dataclass(frozen=True, slots=True)
class RunCounts:
    run_id: str
    rows: int
    tokens: int
    nodes: int
    node_states: int
    operations: int
    source_loads: int
    sink_writes: int
    runtime_preflights: int | None  # epoch 29 only
    validation_errors: int
    transform_errors: int
    avg_state_duration_ms: float | None
    retried_states: int
    fork_groups: int  # distinct fork_group_id of token_outcomes, as ELSPETH counts them
    join_groups: int


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
class NodeTimes:
    run_id: str
    node_id: str
    plugin: str
    node_type: NodeType
    executions: int
    failures: int
    retries: int
    avg_ms: float | None
    min_ms: float | None
    max_ms: float | None
    total_ms: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class ErrorBucket:
    kind: str  # "validation" or "transform"
    run_id: str
    node_id: str | None
    plugin: str | None
    schema_mode: str | None
    count: int


@dataclass(frozen=True, slots=True)
class FailingNode:
    run_id: str
    node_id: str
    plugin: str
    failed_states: int


@dataclass(frozen=True, slots=True)
class NodeCalls:
    run_id: str
    node_id: str
    plugin: str
    total: int
    successful: int
    failed: int
    avg_latency_ms: float | None
    total_latency_ms: float
    p95_latency_ms: float | None


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
