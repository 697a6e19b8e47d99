"""The one place where a database row becomes a domain record.

Records are epoch-neutral: a column one epoch lacks is None in the other. Every enum value is
checked against its value space (and the epoch that may hold it), and every rule ELSPETH itself
guarantees on read is checked here; a violation raises `AuditIntegrityError` naming the record
and the rule. Nothing is coerced or dropped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from ..errors import AuditIntegrityError
from .enums import (
    EPOCH_ONLY,
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

E = TypeVar("E", bound=Enum)
T = TypeVar("T")
Row = Any  # a SQLAlchemy Row: attribute access by column name


def _enum(kind: type[E], value: Any, epoch: int, record: str, column: str) -> E:
    try:
        member = kind(value)
    except ValueError:
        raise AuditIntegrityError(
            record, f"{column} must be one of the {kind.__name__} values",
            f"found {str(value)[:64]!r}") from None
    only = EPOCH_ONLY.get(member)
    if only is not None and only != epoch:
        raise AuditIntegrityError(
            record, f"{column} value {value!r} does not exist in schema epoch {epoch}")
    return member


def _opt_enum(kind: type[E], value: Any, epoch: int, record: str, column: str) -> E | None:
    return None if value is None else _enum(kind, value, epoch, record, column)


def _ts(value: Any) -> datetime:
    # SQLite gives naive UTC; PostgreSQL gives aware datetimes. Both mean UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value  # type: ignore[no-any-return]


def _opt_ts(value: Any) -> datetime | None:
    return None if value is None else _ts(value)


def _get(row: Row, column: str) -> Any:
    # Epoch-specific columns are absent from the other epoch's rows.
    return getattr(row, column, None)


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


def run_from_row(r: Row, epoch: int) -> RunRecord:
    rec = f"runs[{r.run_id}]"
    return RunRecord(
        run_id=r.run_id, status=_enum(RunStatus, r.status, epoch, rec, "status"),
        started_at=_ts(r.started_at), completed_at=_opt_ts(r.completed_at),
        config_hash=r.config_hash, settings_json=r.settings_json,
        reproducibility_grade=r.reproducibility_grade, canonical_version=r.canonical_version,
        export_status=r.export_status, export_error=r.export_error,
        exported_at=_opt_ts(r.exported_at), export_format=r.export_format,
        export_sink=r.export_sink, llm_call_count=_get(r, "llm_call_count"),
    )


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


def node_from_row(r: Row, epoch: int) -> NodeRecord:
    rec = f"nodes[{r.run_id}/{r.node_id}]"
    return NodeRecord(
        node_id=r.node_id, run_id=r.run_id, plugin_name=r.plugin_name,
        node_type=_enum(NodeType, r.node_type, epoch, rec, "node_type"),
        plugin_version=r.plugin_version,
        determinism=_enum(Determinism, r.determinism, epoch, rec, "determinism"),
        config_hash=r.config_hash, config_json=r.config_json, schema_hash=r.schema_hash,
        sequence_in_pipeline=r.sequence_in_pipeline, registered_at=_ts(r.registered_at),
        schema_mode=r.schema_mode,
    )


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    edge_id: str
    run_id: str
    from_node_id: str
    to_node_id: str
    label: str
    default_mode: RoutingMode
    created_at: datetime


def edge_from_row(r: Row, epoch: int) -> EdgeRecord:
    return EdgeRecord(
        edge_id=r.edge_id, run_id=r.run_id, from_node_id=r.from_node_id, to_node_id=r.to_node_id,
        label=r.label,
        default_mode=_enum(RoutingMode, r.default_mode, epoch, f"edges[{r.edge_id}]", "default_mode"),
        created_at=_ts(r.created_at),
    )


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


def row_from_row(r: Row, epoch: int) -> RowRecord:
    return RowRecord(
        row_id=r.row_id, run_id=r.run_id, source_node_id=r.source_node_id, row_index=r.row_index,
        source_row_index=_get(r, "source_row_index"), ingest_sequence=_get(r, "ingest_sequence"),
        source_data_hash=r.source_data_hash, source_data_ref=r.source_data_ref,
        created_at=_ts(r.created_at),
    )


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


def token_from_row(r: Row, epoch: int) -> TokenRecord:
    groups = [g for g in (r.fork_group_id, r.join_group_id, r.expand_group_id) if g is not None]
    if len(groups) > 1:
        raise AuditIntegrityError(
            f"tokens[{r.token_id}]",
            "at most one of fork_group_id, join_group_id, expand_group_id may be set")
    return TokenRecord(
        token_id=r.token_id, row_id=r.row_id, run_id=r.run_id, fork_group_id=r.fork_group_id,
        join_group_id=r.join_group_id, expand_group_id=r.expand_group_id,
        branch_name=r.branch_name, step_in_pipeline=r.step_in_pipeline,
        token_data_ref=_get(r, "token_data_ref"), created_at=_ts(r.created_at),
    )


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


def outcome_from_row(r: Row, epoch: int, error_destinations: str | None = None) -> OutcomeRecord:
    """Map an outcome row; `error_destinations` is the epoch-2 evidence for ROUTED.

    Epoch 2 wrote `routed` both for a gate route and for an on_error route; only a transform
    error recorded for the token with the routed sink as destination says it was the latter.
    It is the '\\x1f'-joined list of the token's transform error destinations, or None.
    """
    rec = f"token_outcomes[{r.outcome_id}]"
    row_outcome: RowOutcome | None
    result: TerminalResult | None
    path: TerminalPath | None
    if epoch >= 29:
        result = _opt_enum(TerminalResult, r.outcome, epoch, rec, "outcome")
        path = _enum(TerminalPath, r.path, epoch, rec, "path")
        terminal = _bool01(r.completed, rec, "completed")
        required = LEGAL_PAIRS.get((result, path))
        if required is None:
            raise AuditIntegrityError(rec, "(outcome, path) must be a legal pair",
                                      f"found ({r.outcome}, {r.path})")
        missing = [c for c in required if getattr(r, c) is None]
        if missing:
            raise AuditIntegrityError(rec, f"path {r.path} requires {', '.join(missing)}")
        if terminal != (result is not None):
            raise AuditIntegrityError(rec, "outcome is NULL exactly when completed = 0")
        row_outcome = PATH_TO_ROW[path]
        stored = "RESULT_PATH"
    else:
        row_outcome = _enum(RowOutcome, r.outcome, epoch, rec, "outcome")
        terminal = _bool01(r.is_terminal, rec, "is_terminal")
        if terminal == (row_outcome is RowOutcome.BUFFERED):
            raise AuditIntegrityError(rec, "only a buffered outcome is non-terminal")
        mapped = ROW_TO_TERMINAL[row_outcome]
        if mapped is not None:
            result, path = mapped
        elif row_outcome is RowOutcome.ROUTED:
            destinations = error_destinations.split("\x1f") if error_destinations else []
            if not destinations:
                result, path = TerminalResult.SUCCESS, TerminalPath.GATE_ROUTED
            elif r.sink_name in destinations:
                result, path = TerminalResult.FAILURE, TerminalPath.ON_ERROR_ROUTED
            else:
                result, path = None, None  # errors recorded elsewhere: the data does not say
        elif r.sink_name == "__discard__":
            result, path = TerminalResult.FAILURE, TerminalPath.SINK_DISCARDED
        else:
            result, path = TerminalResult.TRANSIENT, TerminalPath.SINK_FALLBACK_TO_FAILSINK
        stored = "ROW_OUTCOME"
    return OutcomeRecord(
        outcome_id=r.outcome_id, run_id=r.run_id, token_id=r.token_id, terminal=terminal,
        row_outcome=row_outcome, result=result, path=path, stored_view=stored,
        recorded_at=_ts(r.recorded_at), sink_name=r.sink_name, batch_id=r.batch_id,
        fork_group_id=r.fork_group_id, join_group_id=r.join_group_id,
        expand_group_id=r.expand_group_id, error_hash=r.error_hash, context_json=r.context_json,
        expected_branches_json=r.expected_branches_json,
    )


def _bool01(value: Any, record: str, column: str) -> bool:
    if value in (0, 1, True, False):
        return bool(value)
    raise AuditIntegrityError(record, f"{column} must be 0 or 1", f"found {value!r}")


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


def node_state_from_row(r: Row, epoch: int) -> NodeStateRecord:
    return NodeStateRecord(
        state_id=r.state_id, token_id=r.token_id, run_id=r.run_id, node_id=r.node_id,
        step_index=r.step_index, attempt=r.attempt,
        status=_enum(NodeStateStatus, r.status, epoch, f"node_states[{r.state_id}]", "status"),
        input_hash=r.input_hash, output_hash=r.output_hash,
        context_before_json=r.context_before_json, context_after_json=r.context_after_json,
        duration_ms=r.duration_ms, error_json=r.error_json,
        success_reason_json=r.success_reason_json, started_at=_ts(r.started_at),
        completed_at=_opt_ts(r.completed_at),
    )


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


def routing_event_from_row(r: Row, epoch: int) -> RoutingEventRecord:
    return RoutingEventRecord(
        event_id=r.event_id, state_id=r.state_id, edge_id=r.edge_id,
        routing_group_id=r.routing_group_id, ordinal=r.ordinal,
        mode=_enum(RoutingMode, r.mode, epoch, f"routing_events[{r.event_id}]", "mode"),
        reason_hash=r.reason_hash, reason_ref=r.reason_ref, created_at=_ts(r.created_at),
    )


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


def call_from_row(r: Row, epoch: int) -> CallRecord:
    rec = f"calls[{r.call_id}]"
    if (r.state_id is None) == (r.operation_id is None):
        raise AuditIntegrityError(rec, "a call has exactly one parent: a node state or an operation")
    return CallRecord(
        call_id=r.call_id, state_id=r.state_id, operation_id=r.operation_id,
        call_index=r.call_index, call_type=_enum(CallType, r.call_type, epoch, rec, "call_type"),
        status=_enum(CallStatus, r.status, epoch, rec, "status"), request_hash=r.request_hash,
        request_ref=r.request_ref, response_hash=r.response_hash, response_ref=r.response_ref,
        resolved_prompt_template_hash=_get(r, "resolved_prompt_template_hash"),
        error_json=r.error_json, latency_ms=r.latency_ms, created_at=_ts(r.created_at),
    )


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


def operation_from_row(r: Row, epoch: int) -> OperationRecord:
    rec = f"operations[{r.operation_id}]"
    return OperationRecord(
        operation_id=r.operation_id, run_id=r.run_id, node_id=r.node_id,
        operation_type=_enum(OperationType, r.operation_type, epoch, rec, "operation_type"),
        sink_effect_id=_get(r, "sink_effect_id"), started_at=_ts(r.started_at),
        completed_at=_opt_ts(r.completed_at),
        status=_enum(OperationStatus, r.status, epoch, rec, "status"),
        input_data_ref=r.input_data_ref, input_data_hash=r.input_data_hash,
        output_data_ref=r.output_data_ref, output_data_hash=r.output_data_hash,
        error_message=r.error_message, duration_ms=r.duration_ms,
    )


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


def artifact_from_row(r: Row, epoch: int) -> ArtifactRecord:
    if (r.produced_by_state_id is None) == (_get(r, "sink_effect_id") is None):
        raise AuditIntegrityError(f"artifacts[{r.artifact_id}]",
                                  "exactly one of produced_by_state_id and sink_effect_id is set")
    return ArtifactRecord(
        artifact_id=r.artifact_id, run_id=r.run_id, produced_by_state_id=r.produced_by_state_id,
        sink_effect_id=_get(r, "sink_effect_id"), sink_node_id=r.sink_node_id,
        artifact_type=r.artifact_type, path_or_uri=r.path_or_uri, content_hash=r.content_hash,
        size_bytes=r.size_bytes, idempotency_key=r.idempotency_key, created_at=_ts(r.created_at),
    )


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


def batch_from_row(r: Row, epoch: int) -> BatchRecord:
    rec = f"batches[{r.batch_id}]"
    return BatchRecord(
        batch_id=r.batch_id, run_id=r.run_id, aggregation_node_id=r.aggregation_node_id,
        aggregation_state_id=r.aggregation_state_id,
        expansion_group_id=_get(r, "expansion_group_id"),
        retry_of_batch_id=_get(r, "retry_of_batch_id"), trigger_reason=r.trigger_reason,
        trigger_type=_opt_enum(TriggerType, r.trigger_type, epoch, rec, "trigger_type"),
        attempt=r.attempt, status=_enum(BatchStatus, r.status, epoch, rec, "status"),
        created_at=_ts(r.created_at), completed_at=_opt_ts(r.completed_at),
    )


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


def validation_error_from_row(r: Row, epoch: int) -> ValidationErrorRecord:
    return ValidationErrorRecord(
        error_id=r.error_id, run_id=r.run_id, node_id=r.node_id, row_id=_get(r, "row_id"),
        row_hash=r.row_hash, row_data_json=r.row_data_json, error=r.error,
        schema_mode=r.schema_mode, destination=r.destination, created_at=_ts(r.created_at),
        violation_type=r.violation_type, original_field_name=r.original_field_name,
        normalized_field_name=r.normalized_field_name, expected_type=r.expected_type,
        actual_type=r.actual_type,
    )


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


def transform_error_from_row(r: Row, epoch: int) -> TransformErrorRecord:
    return TransformErrorRecord(
        error_id=r.error_id, run_id=r.run_id, token_id=r.token_id, transform_id=r.transform_id,
        row_hash=r.row_hash, row_data_json=r.row_data_json,
        error_details_json=r.error_details_json, destination=r.destination,
        created_at=_ts(r.created_at),
    )


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


def checkpoint_from_row(r: Row, epoch: int) -> CheckpointRecord:
    return CheckpointRecord(
        checkpoint_id=r.checkpoint_id, run_id=r.run_id, token_id=_get(r, "token_id"),
        node_id=_get(r, "node_id"), sequence_number=r.sequence_number,
        created_at=_ts(r.created_at), upstream_topology_hash=r.upstream_topology_hash,
        format_version=r.format_version,
    )


@dataclass(frozen=True, slots=True)
class PreflightResultRecord:
    result_id: str
    run_id: str
    result_type: PreflightResultType
    name: str
    result_json: str
    created_at: datetime


def preflight_from_row(r: Row, epoch: int) -> PreflightResultRecord:
    return PreflightResultRecord(
        result_id=r.result_id, run_id=r.run_id,
        result_type=_enum(PreflightResultType, r.result_type, epoch,
                          f"preflight_results[{r.result_id}]", "result_type"),
        name=r.name, result_json=r.result_json, created_at=_ts(r.created_at),
    )


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


def scheduler_event_from_row(r: Row, epoch: int) -> SchedulerEventRecord:
    return SchedulerEventRecord(
        event_id=r.event_id, run_id=r.run_id, token_id=r.token_id, work_item_id=r.work_item_id,
        node_id=r.node_id, event_type=r.event_type, from_status=r.from_status,
        to_status=r.to_status, from_attempt=r.from_attempt, to_attempt=r.to_attempt,
        recorded_at=_ts(r.recorded_at), context_json=r.context_json,
    )


# ---------------------------------------------------------------- positional mapping
#
# The hot path. The queries select each record's stored columns in a fixed order (`COLUMNS`
# below; NULL where an epoch lacks the column), so a row maps by position whatever the driver
# returned: a sqlite3 tuple, an asyncpg Record or a SQLAlchemy Row. The rules are the ones
# above, checked in the same order with the same errors; only the cost differs. At hundreds of
# thousands of rows per export these costs dominate: a frozen dataclass's __init__ spends
# ~150 ns per field in object.__setattr__, an Enum call ~0.5 µs, datetime.replace ~1 µs.

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

_from_iso = datetime.fromisoformat


def ts_value(value: Any) -> datetime:
    """`_ts` of a stored timestamp, parsing SQLite's text as SQLAlchemy would (fromisoformat).

    SQLite text is naive UTC, so parsing it with an explicit +00:00 gives the same value as
    parsing then `replace(tzinfo=UTC)`, in one C call. Text that already carries an offset (or
    is no timestamp at all) fails that parse and takes the general route.
    """
    if type(value) is str:
        try:
            return _from_iso(value + "+00:00")
        except ValueError:
            return _ts(_from_iso(value))
    return _ts(value)


def opt_ts_value(value: Any) -> datetime | None:
    return None if value is None else ts_value(value)


@functools.cache
def _member_table(kind: type[Enum], epoch: int) -> dict[Any, Enum]:
    return {m.value: m for m in kind if EPOCH_ONLY.get(m, epoch) == epoch}


def _members(kind: type[E], epoch: int) -> dict[Any, E]:
    """The stored values of `kind` legal in `epoch`, with their members."""
    return _member_table(kind, epoch)  # type: ignore[return-value]


def _constructor(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for a frozen slotted dataclass that sets its slots directly.

    Equivalent to `cls(*values)` for these classes (no defaults, no __post_init__); the
    instance is as frozen as any other.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    setters = {f"_set_{n}": getattr(cls, n).__set__ for n in names}
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    source = f"def new({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, namespace)
    return namespace["new"]  # type: ignore[no-any-return]


# How each converted field is read, per record type: "ts" / "opt_ts" timestamps, or an enum
# (optional when the column may be NULL) with the column name its error message uses. The
# record string of an error is built only when one is raised.
_Conversion = tuple[str, type[Enum] | None]
_CONVERSIONS: dict[type, dict[str, _Conversion]] = {
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

# The record string an error names, from the row (as in the mappers above).
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


def tuple_mapper(cls: type[T], epoch: int) -> Callable[[Any], T]:
    """row -> record for a row laid out as `COLUMNS[cls]`, with the conversions and checks of
    the record's `*_from_row`, in the same order."""
    return _tuple_mapper(cls, epoch)  # type: ignore[arg-type]


@functools.cache
def _tuple_mapper(cls: type, epoch: int) -> Callable[[Any], Any]:
    names = COLUMNS[cls]
    conversions = _CONVERSIONS.get(cls, {})
    namespace: dict[str, Any] = {
        "_new": _constructor(cls), "_ts": ts_value, "_opt_ts": opt_ts_value, "_enum": _enum,
        "_opt_enum": _opt_enum, "_epoch": epoch, "_rec": _RECORD_NAMES.get(cls),
    }
    lines: list[str] = []
    for i, name in enumerate(names):
        how, kind = conversions.get(name, ("", None))
        if how in ("ts", "opt_ts"):
            lines.append(f"    v{i} = _{how}(t[{i}])")
        elif how in ("enum", "opt_enum"):
            assert kind is not None
            namespace[f"_K{i}"], namespace[f"_M{i}"] = kind, _members(kind, epoch)
            slow = f"_{how}(_K{i}, t[{i}], _epoch, _rec(t), {name!r})"
            test = f"v{i} is None" + (f" and t[{i}] is not None" if how == "opt_enum" else "")
            lines.append(f"    v{i} = _M{i}.get(t[{i}])\n    if {test}:\n        v{i} = {slow}")
        else:
            lines.append(f"    v{i} = t[{i}]")
    args = ", ".join(f"v{i}" for i in range(len(names)))
    source = "def mapper(t):\n" + "\n".join(lines) + f"\n    return _new({args})\n"
    exec(source, namespace)
    return namespace["mapper"]  # type: ignore[no-any-return]


def token_from_tuple(t: Any, epoch: int) -> TokenRecord:
    if (t[3] is not None) + (t[4] is not None) + (t[5] is not None) > 1:
        raise AuditIntegrityError(
            f"tokens[{t[0]}]",
            "at most one of fork_group_id, join_group_id, expand_group_id may be set")
    return tuple_mapper(TokenRecord, epoch)(t)


def tokens_from_tuples(rows: Iterable[Any], epoch: int, offset: int = 0) -> list[TokenRecord]:
    """Tokens laid out as `COLUMNS[TokenRecord]` from column `offset` of each row."""
    mapper = tuple_mapper(TokenRecord, epoch)
    out = []
    for r in rows:
        t = r[offset:] if offset else r
        if (t[3] is not None) + (t[4] is not None) + (t[5] is not None) > 1:
            token_from_tuple(t, epoch)  # raises the integrity error
        out.append(mapper(t))
    return out


def call_from_tuple(t: Any, epoch: int) -> CallRecord:
    if (t[1] is None) == (t[2] is None):
        raise AuditIntegrityError(f"calls[{t[0]}]",
                                  "a call has exactly one parent: a node state or an operation")
    return tuple_mapper(CallRecord, epoch)(t)


def artifact_from_tuple(t: Any, epoch: int) -> ArtifactRecord:
    if (t[2] is None) == (t[3] is None):
        raise AuditIntegrityError(f"artifacts[{t[0]}]",
                                  "exactly one of produced_by_state_id and sink_effect_id is set")
    return tuple_mapper(ArtifactRecord, epoch)(t)


def record_mapper(cls: type[T], epoch: int) -> Callable[[Any], T]:
    """row -> record of `cls`, with its own integrity rules (`record_from_tuple`, looked up once)."""
    if cls is TokenRecord:
        return lambda t: token_from_tuple(t, epoch)  # type: ignore[return-value]
    if cls is CallRecord:
        return lambda t: call_from_tuple(t, epoch)  # type: ignore[return-value]
    if cls is ArtifactRecord:
        return lambda t: artifact_from_tuple(t, epoch)  # type: ignore[return-value]
    return tuple_mapper(cls, epoch)


def record_from_tuple(cls: type[T], t: Any, epoch: int) -> T:
    """Any record type laid out as `COLUMNS[cls]`, with its own integrity rules."""
    if cls is TokenRecord:
        return token_from_tuple(t, epoch)  # type: ignore[return-value]
    if cls is CallRecord:
        return call_from_tuple(t, epoch)  # type: ignore[return-value]
    if cls is ArtifactRecord:
        return artifact_from_tuple(t, epoch)  # type: ignore[return-value]
    return tuple_mapper(cls, epoch)(t)


class _OutcomeRow:
    """Attribute access to an outcome row laid out as OUTCOME_COLUMNS, for its rule checks."""

    __slots__ = ("_t",)

    def __init__(self, t: Any) -> None:
        self._t = t

    def __getattr__(self, name: str) -> Any:
        return self._t[_OUTCOME_INDEX[name]]


_new_outcome = _constructor(OutcomeRecord)


def outcome_from_tuple(t: Any, epoch: int, error_destinations: str | None = None) -> OutcomeRecord:
    """`outcome_from_row` for a row laid out as OUTCOME_COLUMNS (`terminal_flag` is epoch 29's
    `completed`, epoch 2's `is_terminal`). Rows that break a rule, and the epoch-2 values whose
    other view depends on the data, take `outcome_from_row` itself."""
    flag = t[5]
    if flag not in (0, 1, True, False):
        return _slow_outcome(t, epoch, error_destinations)
    terminal = bool(flag)
    if epoch >= 29:
        result = _members(TerminalResult, epoch).get(t[3])
        path = _members(TerminalPath, epoch).get(t[4])
        if (result is None and t[3] is not None) or path is None or terminal != (result is not None):
            return _slow_outcome(t, epoch, error_destinations)
        required = LEGAL_PAIRS.get((result, path))
        if required is None or any(t[_OUTCOME_INDEX[c]] is None for c in required):
            return _slow_outcome(t, epoch, error_destinations)
        row_outcome: RowOutcome | None = PATH_TO_ROW[path]
        stored = "RESULT_PATH"
    else:
        row_outcome = _members(RowOutcome, epoch).get(t[3])
        if row_outcome is None or terminal == (row_outcome is RowOutcome.BUFFERED):
            return _slow_outcome(t, epoch, error_destinations)
        mapped = ROW_TO_TERMINAL[row_outcome]
        if mapped is None:
            return _slow_outcome(t, epoch, error_destinations)
        result, path = mapped
        stored = "ROW_OUTCOME"
    return _new_outcome(t[0], t[1], t[2], terminal, row_outcome, result, path, stored,
                        ts_value(t[6]), t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14])


def _slow_outcome(t: Any, epoch: int, error_destinations: str | None) -> OutcomeRecord:
    """The general mapper, for epoch 2's derivations and for any row breaking a rule."""
    row = _OutcomeRow(t)
    terminal_column = "completed" if epoch >= 29 else "is_terminal"
    view = _OutcomeView(row, terminal_column)
    return outcome_from_row(view, epoch, error_destinations)


class _OutcomeView:
    __slots__ = ("_row", "_terminal_column")

    def __init__(self, row: _OutcomeRow, terminal_column: str) -> None:
        self._row = row
        self._terminal_column = terminal_column

    def __getattr__(self, name: str) -> Any:
        if name == self._terminal_column:
            return self._row.terminal_flag
        if name in ("completed", "is_terminal"):
            raise AttributeError(name)
        if name == "recorded_at":
            # outcome_from_row applies _ts, which needs a datetime; SQLite gives text.
            value = self._row.recorded_at
            return _from_iso(value) if isinstance(value, str) else value
        return getattr(self._row, name)
