"""The one place where a database row becomes a domain record.

Records are epoch-neutral: a column one epoch lacks is None in the other. Every enum value is
checked against its value space (and the epoch that may hold it), and every rule ELSPETH itself
guarantees on read is checked here; a violation raises `AuditIntegrityError` naming the record
and the rule. Nothing is coerced or dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ..errors import AuditIntegrityError
from ._rowmap import Conversion, Rule, build_mapper, constructor, enum_value, members, ts_value
from .enums import (
    LEGAL_PAIRS,
    PATH_TO_ROW,
    ROW_TO_TERMINAL,
    BatchStatus,
    CallStatus,
    CallType,
    Determinism,
    NodeStateStatus,
    NodeType,
    OperationStatus,
    OperationType,
    PreflightResultType,
    RoutingMode,
    RowOutcome,
    RunStatus,
    TerminalPath,
    TerminalResult,
    TriggerType,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    status: RunStatus
    started_at: datetime
    completed_at: datetime | None
    config_hash: str
    settings_json: str
    reproducibility_grade: str | None
    canonical_version: str
    export_status: str | None
    export_error: str | None
    exported_at: datetime | None
    export_format: str | None
    export_sink: str | None
    llm_call_count: int | None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node_id: str
    run_id: str
    plugin_name: str
    node_type: NodeType
    plugin_version: str
    determinism: Determinism
    config_hash: str
    config_json: str
    schema_hash: str | None
    sequence_in_pipeline: int | None
    registered_at: datetime
    schema_mode: str | None


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    edge_id: str
    run_id: str
    from_node_id: str
    to_node_id: str
    label: str
    default_mode: RoutingMode
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RowRecord:
    row_id: str
    run_id: str
    source_node_id: str
    row_index: int | None
    source_row_index: int | None
    ingest_sequence: int | None
    source_data_hash: str
    source_data_ref: str | None
    created_at: datetime

    @property
    def order_key(self) -> int:
        # epoch 29 orders rows by ingest_sequence; epoch 2 by row_index (unique per run).
        return self.ingest_sequence if self.ingest_sequence is not None else (self.row_index or 0)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    row_id: str
    run_id: str
    fork_group_id: str | None
    join_group_id: str | None
    expand_group_id: str | None
    branch_name: str | None
    step_in_pipeline: int | None
    token_data_ref: str | None
    created_at: datetime


def check_token_group(token_id: str, fork_group_id: Any, join_group_id: Any, expand_group_id: Any) -> None:
    if (fork_group_id is not None) + (join_group_id is not None) + (expand_group_id is not None) > 1:
        raise AuditIntegrityError(
            f"tokens[{token_id}]", "at most one of fork_group_id, join_group_id, expand_group_id may be set")


def check_token_parents(token: TokenRecord, parent_run_ids: list[str]) -> None:
    """ELSPETH's LineageIntegrityValidator: a group id exactly when there are parents."""
    rec = f"tokens[{token.token_id}]"
    has_group = any(g is not None for g in (token.fork_group_id, token.join_group_id,
                                            token.expand_group_id))
    if parent_run_ids and not has_group:
        raise AuditIntegrityError(rec, "a token with parents must have a fork, join or expand group id",
                                  f"{len(parent_run_ids)} parent(s), no group id")
    if has_group and not parent_run_ids:
        raise AuditIntegrityError(rec, "a token with a group id must have parents in token_parents")
    if token.fork_group_id is not None and len(parent_run_ids) != 1:
        raise AuditIntegrityError(rec, "a fork child has exactly one parent",
                                  f"{len(parent_run_ids)} parents")
    if token.expand_group_id is not None and len(parent_run_ids) != 1:
        raise AuditIntegrityError(rec, "an expansion child or aggregation output has exactly one parent",
                                  f"{len(parent_run_ids)} parents")
    for run_id in parent_run_ids:
        if run_id != token.run_id:
            raise AuditIntegrityError(rec, "parents must belong to the same run",
                                      f"a parent is in run {run_id}")


@dataclass(frozen=True, slots=True)
class ParentLink:
    """One token_parents row with the parent token it names."""

    token_id: str
    parent_token_id: str
    ordinal: int
    parent: TokenRecord | None  # None: the parent token does not exist (dangling reference)


def check_parent_links(token: TokenRecord, links: list[ParentLink]) -> list[TokenRecord]:
    """ELSPETH's LineageIntegrityValidator, plus the dangling and run-scope checks."""
    rec = f"tokens[{token.token_id}]"
    for link in links:
        if link.parent is None:
            raise AuditIntegrityError(rec, "every parent in token_parents must exist in tokens",
                                      f"parent {link.parent_token_id} is missing")
    check_token_parents(token, [link.parent.run_id for link in links if link.parent is not None])
    return [link.parent for link in links if link.parent is not None]


def check_children(token: TokenRecord, found: Iterable[tuple[Any, Any, TokenRecord]]) -> list[TokenRecord]:
    """The children of `token` from (parent id, ordinal, child) links: all in its run."""
    result = []
    for _, _, child in found:
        if child.run_id != token.run_id:
            raise AuditIntegrityError(f"tokens[{child.token_id}]", "parents must belong to the same run",
                                      f"its parent {token.token_id} is in run {token.run_id}")
        result.append(child)
    return result


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    outcome_id: str
    run_id: str
    token_id: str
    terminal: bool
    row_outcome: RowOutcome | None
    result: TerminalResult | None
    path: TerminalPath | None
    stored_view: str  # "ROW_OUTCOME" (epoch 2) or "RESULT_PATH" (epoch 29)
    recorded_at: datetime
    sink_name: str | None
    batch_id: str | None
    fork_group_id: str | None
    join_group_id: str | None
    expand_group_id: str | None
    error_hash: str | None
    context_json: str | None
    expected_branches_json: str | None


def current_outcome(outcomes: list[OutcomeRecord]) -> OutcomeRecord | None:
    """ELSPETH's get_token_outcome: the terminal one, else the latest."""
    if not outcomes:
        return None
    terminal = [o for o in outcomes if o.terminal]
    if len(terminal) > 1:
        raise AuditIntegrityError(f"tokens[{outcomes[0].token_id}]",
                                  "a token has at most one terminal outcome",
                                  f"{len(terminal)} found")
    if terminal:
        return terminal[0]
    return max(outcomes, key=lambda o: o.recorded_at)


@dataclass(frozen=True, slots=True)
class NodeStateRecord:
    state_id: str
    token_id: str
    run_id: str
    node_id: str
    step_index: int
    attempt: int
    status: NodeStateStatus
    input_hash: str
    output_hash: str | None
    context_before_json: str | None
    context_after_json: str | None
    duration_ms: float | None
    error_json: str | None
    success_reason_json: str | None
    started_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RoutingEventRecord:
    event_id: str
    state_id: str
    edge_id: str
    routing_group_id: str
    ordinal: int
    mode: RoutingMode
    reason_hash: str | None
    reason_ref: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    state_id: str | None
    operation_id: str | None
    call_index: int
    call_type: CallType
    status: CallStatus
    request_hash: str
    request_ref: str | None
    response_hash: str | None
    response_ref: str | None
    resolved_prompt_template_hash: str | None
    error_json: str | None
    latency_ms: float | None
    created_at: datetime


def check_call_parent(call_id: str, state_id: Any, operation_id: Any) -> None:
    if (state_id is None) == (operation_id is None):
        raise AuditIntegrityError(f"calls[{call_id}]", "a call has exactly one parent: a node state or an operation")


@dataclass(frozen=True, slots=True)
class OperationRecord:
    operation_id: str
    run_id: str
    node_id: str
    operation_type: OperationType
    sink_effect_id: str | None
    started_at: datetime
    completed_at: datetime | None
    status: OperationStatus
    input_data_ref: str | None
    input_data_hash: str | None
    output_data_ref: str | None
    output_data_hash: str | None
    error_message: str | None
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    artifact_id: str
    run_id: str
    produced_by_state_id: str | None
    sink_effect_id: str | None
    sink_node_id: str
    artifact_type: str
    path_or_uri: str
    content_hash: str
    size_bytes: int
    idempotency_key: str | None
    created_at: datetime


def check_artifact_producer(artifact_id: str, produced_by_state_id: Any, sink_effect_id: Any) -> None:
    if (produced_by_state_id is None) == (sink_effect_id is None):
        raise AuditIntegrityError(f"artifacts[{artifact_id}]",
                                  "exactly one of produced_by_state_id and sink_effect_id is set")


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch_id: str
    run_id: str
    aggregation_node_id: str
    aggregation_state_id: str | None
    expansion_group_id: str | None
    retry_of_batch_id: str | None
    trigger_reason: str | None
    trigger_type: TriggerType | None
    attempt: int
    status: BatchStatus
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class BatchMemberRecord:
    batch_id: str
    token_id: str
    ordinal: int


@dataclass(frozen=True, slots=True)
class ValidationErrorRecord:
    error_id: str
    run_id: str
    node_id: str | None
    row_id: str | None
    row_hash: str
    row_data_json: str | None
    error: str
    schema_mode: str
    destination: str
    created_at: datetime
    violation_type: str | None
    original_field_name: str | None
    normalized_field_name: str | None
    expected_type: str | None
    actual_type: str | None


@dataclass(frozen=True, slots=True)
class TransformErrorRecord:
    error_id: str
    run_id: str
    token_id: str
    transform_id: str
    row_hash: str
    row_data_json: str | None
    error_details_json: str | None
    destination: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    checkpoint_id: str
    run_id: str
    token_id: str | None
    node_id: str | None
    sequence_number: int
    created_at: datetime
    upstream_topology_hash: str
    format_version: int | None


@dataclass(frozen=True, slots=True)
class PreflightResultRecord:
    result_id: str
    run_id: str
    result_type: PreflightResultType
    name: str
    result_json: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SchedulerEventRecord:
    event_id: str
    run_id: str
    token_id: str
    work_item_id: str
    node_id: str | None
    event_type: str
    from_status: str | None
    to_status: str
    from_attempt: int | None
    to_attempt: int
    recorded_at: datetime
    context_json: str


# ---------------------------------------------------------------- positional mapping
#
# The queries select each record's stored columns in a fixed order (`COLUMNS` below; NULL where
# an epoch lacks the column), so a row maps by position whatever the driver returned: a sqlite3
# tuple, an asyncpg Record or a SQLAlchemy Row. Each mapper is generated (_rowmap.build_mapper)
# from the record's columns, conversions and rule; tests/execution/test_records_positional.py
# holds reference mappers by column name and checks every fixture row against them.

COLUMNS: dict[type, tuple[str, ...]] = {
    RunRecord: ("run_id", "status", "started_at", "completed_at", "config_hash", "settings_json",
                "reproducibility_grade", "canonical_version", "export_status", "export_error",
                "exported_at", "export_format", "export_sink", "llm_call_count"),
    NodeRecord: ("node_id", "run_id", "plugin_name", "node_type", "plugin_version", "determinism",
                 "config_hash", "config_json", "schema_hash", "sequence_in_pipeline", "registered_at",
                 "schema_mode"),
    EdgeRecord: ("edge_id", "run_id", "from_node_id", "to_node_id", "label", "default_mode",
                 "created_at"),
    RowRecord: ("row_id", "run_id", "source_node_id", "row_index", "source_row_index",
                "ingest_sequence", "source_data_hash", "source_data_ref", "created_at"),
    TokenRecord: ("token_id", "row_id", "run_id", "fork_group_id", "join_group_id",
                  "expand_group_id", "branch_name", "step_in_pipeline", "token_data_ref",
                  "created_at"),
    NodeStateRecord: ("state_id", "token_id", "run_id", "node_id", "step_index", "attempt", "status",
                      "input_hash", "output_hash", "context_before_json", "context_after_json",
                      "duration_ms", "error_json", "success_reason_json", "started_at",
                      "completed_at"),
    RoutingEventRecord: ("event_id", "state_id", "edge_id", "routing_group_id", "ordinal", "mode",
                         "reason_hash", "reason_ref", "created_at"),
    CallRecord: ("call_id", "state_id", "operation_id", "call_index", "call_type", "status",
                 "request_hash", "request_ref", "response_hash", "response_ref",
                 "resolved_prompt_template_hash", "error_json", "latency_ms", "created_at"),
    OperationRecord: ("operation_id", "run_id", "node_id", "operation_type", "sink_effect_id",
                      "started_at", "completed_at", "status", "input_data_ref", "input_data_hash",
                      "output_data_ref", "output_data_hash", "error_message", "duration_ms"),
    ArtifactRecord: ("artifact_id", "run_id", "produced_by_state_id", "sink_effect_id",
                     "sink_node_id", "artifact_type", "path_or_uri", "content_hash", "size_bytes",
                     "idempotency_key", "created_at"),
    BatchRecord: ("batch_id", "run_id", "aggregation_node_id", "aggregation_state_id",
                  "expansion_group_id", "retry_of_batch_id", "trigger_reason", "trigger_type",
                  "attempt", "status", "created_at", "completed_at"),
    ValidationErrorRecord: ("error_id", "run_id", "node_id", "row_id", "row_hash", "row_data_json",
                            "error", "schema_mode", "destination", "created_at", "violation_type",
                            "original_field_name", "normalized_field_name", "expected_type",
                            "actual_type"),
    TransformErrorRecord: ("error_id", "run_id", "token_id", "transform_id", "row_hash",
                           "row_data_json", "error_details_json", "destination", "created_at"),
    CheckpointRecord: ("checkpoint_id", "run_id", "token_id", "node_id", "sequence_number",
                       "created_at", "upstream_topology_hash", "format_version"),
    PreflightResultRecord: ("result_id", "run_id", "result_type", "name", "result_json",
                            "created_at"),
    SchedulerEventRecord: ("event_id", "run_id", "token_id", "work_item_id", "node_id",
                           "event_type", "from_status", "to_status", "from_attempt", "to_attempt",
                           "recorded_at", "context_json"),
}

# Outcomes store both epochs' views in different columns; the mapper derives the rest.
OUTCOME_COLUMNS = ("outcome_id", "run_id", "token_id", "outcome", "path", "terminal_flag",
                   "recorded_at", "sink_name", "batch_id", "fork_group_id", "join_group_id",
                   "expand_group_id", "error_hash", "context_json", "expected_branches_json")
_OUTCOME_INDEX = {name: i for i, name in enumerate(OUTCOME_COLUMNS)}

# How each converted field is read, per record type (see _rowmap.Conversion).
_CONVERSIONS: dict[type, dict[str, Conversion]] = {
    RunRecord: {"status": ("enum", RunStatus), "started_at": ("ts", None),
                "completed_at": ("opt_ts", None), "exported_at": ("opt_ts", None)},
    NodeRecord: {"node_type": ("enum", NodeType), "determinism": ("enum", Determinism),
                 "registered_at": ("ts", None)},
    EdgeRecord: {"default_mode": ("enum", RoutingMode), "created_at": ("ts", None)},
    RowRecord: {"created_at": ("ts", None)},
    TokenRecord: {"created_at": ("ts", None)},
    NodeStateRecord: {"status": ("enum", NodeStateStatus), "started_at": ("ts", None),
                      "completed_at": ("opt_ts", None)},
    RoutingEventRecord: {"mode": ("enum", RoutingMode), "created_at": ("ts", None)},
    CallRecord: {"call_type": ("enum", CallType), "status": ("enum", CallStatus),
                 "created_at": ("ts", None)},
    OperationRecord: {"operation_type": ("enum", OperationType), "started_at": ("ts", None),
                      "completed_at": ("opt_ts", None), "status": ("enum", OperationStatus)},
    ArtifactRecord: {"created_at": ("ts", None)},
    BatchRecord: {"trigger_type": ("opt_enum", TriggerType), "status": ("enum", BatchStatus),
                  "created_at": ("ts", None), "completed_at": ("opt_ts", None)},
    ValidationErrorRecord: {"created_at": ("ts", None)},
    TransformErrorRecord: {"created_at": ("ts", None)},
    CheckpointRecord: {"created_at": ("ts", None)},
    PreflightResultRecord: {"result_type": ("enum", PreflightResultType), "created_at": ("ts", None)},
    SchedulerEventRecord: {"recorded_at": ("ts", None)},
}

# The rule across columns each record type must keep, with the columns it reads.
_RULES: dict[type, Rule] = {
    TokenRecord: (check_token_group, ("token_id", "fork_group_id", "join_group_id", "expand_group_id")),
    CallRecord: (check_call_parent, ("call_id", "state_id", "operation_id")),
    ArtifactRecord: (check_artifact_producer, ("artifact_id", "produced_by_state_id", "sink_effect_id")),
}

# The record string an error names, from the row.
_RECORD_NAMES: dict[type, Callable[[Any], str]] = {
    RunRecord: lambda t: f"runs[{t[0]}]",
    NodeRecord: lambda t: f"nodes[{t[1]}/{t[0]}]",
    EdgeRecord: lambda t: f"edges[{t[0]}]",
    NodeStateRecord: lambda t: f"node_states[{t[0]}]",
    RoutingEventRecord: lambda t: f"routing_events[{t[0]}]",
    CallRecord: lambda t: f"calls[{t[0]}]",
    OperationRecord: lambda t: f"operations[{t[0]}]",
    BatchRecord: lambda t: f"batches[{t[0]}]",
    PreflightResultRecord: lambda t: f"preflight_results[{t[0]}]",
}


def record_mapper(cls: type[T], epoch: int) -> Callable[[Any], T]:
    """row -> record for a row laid out as `COLUMNS[cls]`: its conversions (enums checked
    against their value space and epoch) after its rule across columns (`_RULES`), if any."""
    return _tuple_mapper(cls, epoch)  # type: ignore[arg-type]


@functools.cache
def _tuple_mapper(cls: type, epoch: int) -> Callable[[Any], Any]:
    return build_mapper(cls, COLUMNS[cls], _CONVERSIONS.get(cls, {}), _RULES.get(cls), _RECORD_NAMES.get(cls),
                        epoch)


def tokens_from_tuples(rows: Iterable[Any], epoch: int, offset: int = 0) -> list[TokenRecord]:
    """Tokens laid out as `COLUMNS[TokenRecord]` from column `offset` of each row."""
    mapper = record_mapper(TokenRecord, epoch)
    return [mapper(r[offset:] if offset else r) for r in rows]


def record_from_tuple(cls: type[T], t: Any, epoch: int) -> T:
    """Any record type laid out as `COLUMNS[cls]`, with its own integrity rules."""
    return record_mapper(cls, epoch)(t)


_new_outcome = constructor(OutcomeRecord)


def outcome_from_tuple(t: Any, epoch: int, error_destinations: str | None = None) -> OutcomeRecord:
    """An outcome row laid out as OUTCOME_COLUMNS (`terminal_flag` is epoch 29's `completed`,
    epoch 2's `is_terminal`); `error_destinations` is the epoch-2 evidence for ROUTED.

    Epoch 2 wrote `routed` both for a gate route and for an on_error route; only a transform
    error recorded for the token with the routed sink as destination says it was the latter.
    It is the '\\x1f'-joined list of the token's transform error destinations, or None.
    """
    rec = f"token_outcomes[{t[0]}]"
    row_outcome: RowOutcome | None
    result: TerminalResult | None
    path: TerminalPath | None
    if epoch >= 29:
        result = members(TerminalResult, epoch).get(t[3])
        if result is None and t[3] is not None:
            result = enum_value(TerminalResult, t[3], epoch, rec, "outcome")
        path = members(TerminalPath, epoch).get(t[4]) or enum_value(TerminalPath, t[4], epoch, rec, "path")
        terminal = _bool01(t[5], rec, "completed")
        required = LEGAL_PAIRS.get((result, path))
        if required is None:
            raise AuditIntegrityError(rec, "(outcome, path) must be a legal pair", f"found ({t[3]}, {t[4]})")
        missing = [c for c in required if t[_OUTCOME_INDEX[c]] is None]
        if missing:
            raise AuditIntegrityError(rec, f"path {t[4]} requires {', '.join(missing)}")
        if terminal != (result is not None):
            raise AuditIntegrityError(rec, "outcome is NULL exactly when completed = 0")
        row_outcome = PATH_TO_ROW[path]
        stored = "RESULT_PATH"
    else:
        row_outcome = members(RowOutcome, epoch).get(t[3]) or enum_value(RowOutcome, t[3], epoch, rec, "outcome")
        terminal = _bool01(t[5], rec, "is_terminal")
        if terminal == (row_outcome is RowOutcome.BUFFERED):
            raise AuditIntegrityError(rec, "only a buffered outcome is non-terminal")
        sink_name = t[7]
        mapped = ROW_TO_TERMINAL[row_outcome]
        if mapped is not None:
            result, path = mapped
        elif row_outcome is RowOutcome.ROUTED:
            destinations = error_destinations.split("\x1f") if error_destinations else []
            if not destinations:
                result, path = TerminalResult.SUCCESS, TerminalPath.GATE_ROUTED
            elif sink_name in destinations:
                result, path = TerminalResult.FAILURE, TerminalPath.ON_ERROR_ROUTED
            else:
                result, path = None, None  # errors recorded elsewhere: the data does not say
        elif sink_name == "__discard__":
            result, path = TerminalResult.FAILURE, TerminalPath.SINK_DISCARDED
        else:
            result, path = TerminalResult.TRANSIENT, TerminalPath.SINK_FALLBACK_TO_FAILSINK
        stored = "ROW_OUTCOME"
    return _new_outcome(t[0], t[1], t[2], terminal, row_outcome, result, path, stored,
                        ts_value(t[6]), t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14])


def _bool01(value: Any, record: str, column: str) -> bool:
    if value in (0, 1, True, False):
        return bool(value)
    raise AuditIntegrityError(record, f"{column} must be 0 or 1", f"found {value!r}")
