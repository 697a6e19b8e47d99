"""ELSPETH's value spaces, as Python enums whose values are what the database stores.

The union of both epochs' values is declared, and each enum says which values exist in which
epoch, so that a value from the wrong epoch (e.g. `completed_with_failures` in an epoch-2
database) is an integrity error, not silently accepted.
"""

from __future__ import annotations

from enum import Enum


class RunStatus(Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"  # epoch 29
    FAILED = "failed"
    EMPTY = "empty"  # epoch 29
    INTERRUPTED = "interrupted"


class NodeType(Enum):
    SOURCE = "source"
    QUEUE = "queue"  # epoch 29
    TRANSFORM = "transform"
    GATE = "gate"
    AGGREGATION = "aggregation"
    COALESCE = "coalesce"
    SINK = "sink"


class Determinism(Enum):
    DETERMINISTIC = "deterministic"
    SEEDED = "seeded"
    IO_READ = "io_read"
    IO_WRITE = "io_write"
    EXTERNAL_CALL = "external_call"
    NON_DETERMINISTIC = "non_deterministic"


class NodeStateStatus(Enum):
    OPEN = "open"
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class RoutingMode(Enum):
    MOVE = "move"
    COPY = "copy"
    DIVERT = "divert"


class CallType(Enum):
    LLM = "llm"
    HTTP = "http"
    HTTP_REDIRECT = "http_redirect"
    SQL = "sql"
    VECTOR = "vector"
    FILESYSTEM = "filesystem"


class CallStatus(Enum):
    SUCCESS = "success"
    ERROR = "error"


class OperationType(Enum):
    SOURCE_LOAD = "source_load"
    SINK_WRITE = "sink_write"
    RUNTIME_PREFLIGHT = "runtime_preflight"  # epoch 29


class OperationStatus(Enum):
    OPEN = "open"
    COMPLETED = "completed"
    FAILED = "failed"
    PENDING = "pending"


class BatchStatus(Enum):
    DRAFT = "draft"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"


class TriggerType(Enum):
    COUNT = "count"
    TIMEOUT = "timeout"
    CONDITION = "condition"
    END_OF_SOURCE = "end_of_source"
    MANUAL = "manual"  # epoch 2 only


class RowOutcome(Enum):
    """Epoch 2's single-axis outcome."""

    COMPLETED = "completed"
    ROUTED = "routed"
    FORKED = "forked"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    DIVERTED = "diverted"
    CONSUMED_IN_BATCH = "consumed_in_batch"
    COALESCED = "coalesced"
    EXPANDED = "expanded"
    BUFFERED = "buffered"


class TerminalResult(Enum):
    """Epoch 29's `token_outcomes.outcome` (ELSPETH's TerminalOutcome)."""

    SUCCESS = "success"
    FAILURE = "failure"
    TRANSIENT = "transient"


class TerminalPath(Enum):
    DEFAULT_FLOW = "default_flow"
    GATE_ROUTED = "gate_routed"
    GATE_DISCARDED = "gate_discarded"
    ON_ERROR_ROUTED = "on_error_routed"
    FILTER_DROPPED = "filter_dropped"
    COALESCED = "coalesced"
    UNROUTED = "unrouted"
    QUARANTINED_AT_SOURCE = "quarantined_at_source"
    SINK_FALLBACK_TO_FAILSINK = "sink_fallback_to_failsink"
    SINK_DISCARDED = "sink_discarded"
    FORK_PARENT = "fork_parent"
    EXPAND_PARENT = "expand_parent"
    BATCH_CONSUMED = "batch_consumed"
    BUFFERED = "buffered"


class PreflightResultType(Enum):
    DEPENDENCY_RUN = "dependency_run"
    COMMENCEMENT_GATE = "commencement_gate"
    READINESS_CHECK = "readiness_check"


EPOCH_ONLY: dict[Enum, int] = {
    RunStatus.COMPLETED_WITH_FAILURES: 29,
    RunStatus.EMPTY: 29,
    NodeType.QUEUE: 29,
    OperationType.RUNTIME_PREFLIGHT: 29,
    TriggerType.MANUAL: 2,
}

# ADR-019's mapping between the two outcome models (epoch2-to-29.md). A None path marks the
# old values whose new form depends on the data, resolved in records.outcome_from_row.
ROW_TO_TERMINAL: dict[RowOutcome, tuple[TerminalResult | None, TerminalPath] | None] = {
    RowOutcome.COMPLETED: (TerminalResult.SUCCESS, TerminalPath.DEFAULT_FLOW),
    RowOutcome.ROUTED: None,
    RowOutcome.FORKED: (TerminalResult.TRANSIENT, TerminalPath.FORK_PARENT),
    RowOutcome.FAILED: (TerminalResult.FAILURE, TerminalPath.UNROUTED),
    RowOutcome.QUARANTINED: (TerminalResult.FAILURE, TerminalPath.QUARANTINED_AT_SOURCE),
    RowOutcome.DIVERTED: None,
    RowOutcome.CONSUMED_IN_BATCH: (TerminalResult.TRANSIENT, TerminalPath.BATCH_CONSUMED),
    RowOutcome.COALESCED: (TerminalResult.SUCCESS, TerminalPath.COALESCED),
    RowOutcome.EXPANDED: (TerminalResult.TRANSIENT, TerminalPath.EXPAND_PARENT),
    RowOutcome.BUFFERED: (None, TerminalPath.BUFFERED),
}

PATH_TO_ROW: dict[TerminalPath, RowOutcome | None] = {
    TerminalPath.DEFAULT_FLOW: RowOutcome.COMPLETED,
    TerminalPath.GATE_ROUTED: RowOutcome.ROUTED,
    TerminalPath.ON_ERROR_ROUTED: RowOutcome.ROUTED,
    # No epoch-2 value existed for these two.
    TerminalPath.GATE_DISCARDED: None,
    TerminalPath.FILTER_DROPPED: None,
    TerminalPath.COALESCED: RowOutcome.COALESCED,
    TerminalPath.UNROUTED: RowOutcome.FAILED,
    TerminalPath.QUARANTINED_AT_SOURCE: RowOutcome.QUARANTINED,
    TerminalPath.SINK_FALLBACK_TO_FAILSINK: RowOutcome.DIVERTED,
    TerminalPath.SINK_DISCARDED: RowOutcome.DIVERTED,
    TerminalPath.FORK_PARENT: RowOutcome.FORKED,
    TerminalPath.EXPAND_PARENT: RowOutcome.EXPANDED,
    TerminalPath.BATCH_CONSUMED: RowOutcome.CONSUMED_IN_BATCH,
    TerminalPath.BUFFERED: RowOutcome.BUFFERED,
}

# The legal (outcome, path) pairs of epoch 29 (contracts/audit.py), with the discriminator
# columns each requires; the row mapper enforces both.
LEGAL_PAIRS: dict[tuple[TerminalResult | None, TerminalPath], tuple[str, ...]] = {
    (TerminalResult.SUCCESS, TerminalPath.DEFAULT_FLOW): ("sink_name",),
    (TerminalResult.SUCCESS, TerminalPath.GATE_ROUTED): ("sink_name",),
    (TerminalResult.SUCCESS, TerminalPath.GATE_DISCARDED): (),
    (TerminalResult.FAILURE, TerminalPath.ON_ERROR_ROUTED): ("sink_name", "error_hash"),
    (TerminalResult.SUCCESS, TerminalPath.FILTER_DROPPED): (),
    (TerminalResult.SUCCESS, TerminalPath.COALESCED): ("join_group_id",),
    (TerminalResult.FAILURE, TerminalPath.UNROUTED): ("error_hash",),
    (TerminalResult.FAILURE, TerminalPath.QUARANTINED_AT_SOURCE): ("error_hash",),
    (TerminalResult.TRANSIENT, TerminalPath.SINK_FALLBACK_TO_FAILSINK): ("sink_name", "error_hash"),
    (TerminalResult.FAILURE, TerminalPath.SINK_DISCARDED): ("sink_name", "error_hash"),
    (TerminalResult.TRANSIENT, TerminalPath.FORK_PARENT): ("fork_group_id",),
    (TerminalResult.TRANSIENT, TerminalPath.EXPAND_PARENT): ("expand_group_id",),
    (TerminalResult.TRANSIENT, TerminalPath.BATCH_CONSUMED): ("batch_id",),
    (None, TerminalPath.BUFFERED): ("batch_id",),
}


class SourceLifecycle(Enum):
    """run_sources.lifecycle_state (epoch 29 only: the table is)."""

    READY = "ready"
    LOADING = "loading"
    EXHAUSTED = "exhausted"
    LOADED = "loaded"
    INTERRUPTED = "interrupted"
