"""Records mapped by position (the queries' path) equal those the reference mappers below map
by column name, written out field by field; both call the package's integrity rules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import null, select

from landscape_graphql.db import records as R
from landscape_graphql.db._rowmap import enum_value as _enum
from landscape_graphql.db._rowmap import opt_enum_value as _opt_enum
from landscape_graphql.db._rowmap import ts_value
from landscape_graphql.db._rowmap import utc as _ts
from landscape_graphql.db.engine import open_landscape
from landscape_graphql.db.enums import (
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
    RunStatus,
    TriggerType,
)
from landscape_graphql.errors import AuditIntegrityError
from tests.conftest import SQLITE_FIXTURES

Row = Any  # a SQLAlchemy Row: attribute access by column name


def _opt_ts(value: Any) -> datetime | None:
    return None if value is None else _ts(value)


def _get(row: Row, column: str) -> Any:
    # Epoch-specific columns are absent from the other epoch's rows.
    return getattr(row, column, None)


def run_from_row(r: Row, epoch: int) -> R.RunRecord:
    rec = f"runs[{r.run_id}]"
    return R.RunRecord(
        run_id=r.run_id, status=_enum(RunStatus, r.status, epoch, rec, "status"),
        started_at=_ts(r.started_at), completed_at=_opt_ts(r.completed_at),
        config_hash=r.config_hash, settings_json=r.settings_json,
        reproducibility_grade=r.reproducibility_grade, canonical_version=r.canonical_version,
        export_status=r.export_status, export_error=r.export_error,
        exported_at=_opt_ts(r.exported_at), export_format=r.export_format,
        export_sink=r.export_sink, llm_call_count=_get(r, "llm_call_count"),
    )


def node_from_row(r: Row, epoch: int) -> R.NodeRecord:
    rec = f"nodes[{r.run_id}/{r.node_id}]"
    return R.NodeRecord(
        node_id=r.node_id, run_id=r.run_id, plugin_name=r.plugin_name,
        node_type=_enum(NodeType, r.node_type, epoch, rec, "node_type"),
        plugin_version=r.plugin_version,
        determinism=_enum(Determinism, r.determinism, epoch, rec, "determinism"),
        config_hash=r.config_hash, config_json=r.config_json, schema_hash=r.schema_hash,
        sequence_in_pipeline=r.sequence_in_pipeline, registered_at=_ts(r.registered_at),
        schema_mode=r.schema_mode,
    )


def edge_from_row(r: Row, epoch: int) -> R.EdgeRecord:
    return R.EdgeRecord(
        edge_id=r.edge_id, run_id=r.run_id, from_node_id=r.from_node_id, to_node_id=r.to_node_id,
        label=r.label,
        default_mode=_enum(RoutingMode, r.default_mode, epoch, f"edges[{r.edge_id}]", "default_mode"),
        created_at=_ts(r.created_at),
    )


def row_from_row(r: Row, epoch: int) -> R.RowRecord:
    return R.RowRecord(
        row_id=r.row_id, run_id=r.run_id, source_node_id=r.source_node_id, row_index=r.row_index,
        source_row_index=_get(r, "source_row_index"), ingest_sequence=_get(r, "ingest_sequence"),
        source_data_hash=r.source_data_hash, source_data_ref=r.source_data_ref,
        created_at=_ts(r.created_at),
    )


def token_from_row(r: Row, epoch: int) -> R.TokenRecord:
    R.check_token_group(r.token_id, r.fork_group_id, r.join_group_id, r.expand_group_id)
    return R.TokenRecord(
        token_id=r.token_id, row_id=r.row_id, run_id=r.run_id, fork_group_id=r.fork_group_id,
        join_group_id=r.join_group_id, expand_group_id=r.expand_group_id,
        branch_name=r.branch_name, step_in_pipeline=r.step_in_pipeline,
        token_data_ref=_get(r, "token_data_ref"), created_at=_ts(r.created_at),
    )


def node_state_from_row(r: Row, epoch: int) -> R.NodeStateRecord:
    return R.NodeStateRecord(
        state_id=r.state_id, token_id=r.token_id, run_id=r.run_id, node_id=r.node_id,
        step_index=r.step_index, attempt=r.attempt,
        status=_enum(NodeStateStatus, r.status, epoch, f"node_states[{r.state_id}]", "status"),
        input_hash=r.input_hash, output_hash=r.output_hash,
        context_before_json=r.context_before_json, context_after_json=r.context_after_json,
        duration_ms=r.duration_ms, error_json=r.error_json,
        success_reason_json=r.success_reason_json, started_at=_ts(r.started_at),
        completed_at=_opt_ts(r.completed_at),
    )


def routing_event_from_row(r: Row, epoch: int) -> R.RoutingEventRecord:
    return R.RoutingEventRecord(
        event_id=r.event_id, state_id=r.state_id, edge_id=r.edge_id,
        routing_group_id=r.routing_group_id, ordinal=r.ordinal,
        mode=_enum(RoutingMode, r.mode, epoch, f"routing_events[{r.event_id}]", "mode"),
        reason_hash=r.reason_hash, reason_ref=r.reason_ref, created_at=_ts(r.created_at),
    )


def call_from_row(r: Row, epoch: int) -> R.CallRecord:
    rec = f"calls[{r.call_id}]"
    R.check_call_parent(r.call_id, r.state_id, r.operation_id)
    return R.CallRecord(
        call_id=r.call_id, state_id=r.state_id, operation_id=r.operation_id,
        call_index=r.call_index, call_type=_enum(CallType, r.call_type, epoch, rec, "call_type"),
        status=_enum(CallStatus, r.status, epoch, rec, "status"), request_hash=r.request_hash,
        request_ref=r.request_ref, response_hash=r.response_hash, response_ref=r.response_ref,
        resolved_prompt_template_hash=_get(r, "resolved_prompt_template_hash"),
        error_json=r.error_json, latency_ms=r.latency_ms, created_at=_ts(r.created_at),
    )


def operation_from_row(r: Row, epoch: int) -> R.OperationRecord:
    rec = f"operations[{r.operation_id}]"
    return R.OperationRecord(
        operation_id=r.operation_id, run_id=r.run_id, node_id=r.node_id,
        operation_type=_enum(OperationType, r.operation_type, epoch, rec, "operation_type"),
        sink_effect_id=_get(r, "sink_effect_id"), started_at=_ts(r.started_at),
        completed_at=_opt_ts(r.completed_at),
        status=_enum(OperationStatus, r.status, epoch, rec, "status"),
        input_data_ref=r.input_data_ref, input_data_hash=r.input_data_hash,
        output_data_ref=r.output_data_ref, output_data_hash=r.output_data_hash,
        error_message=r.error_message, duration_ms=r.duration_ms,
    )


def artifact_from_row(r: Row, epoch: int) -> R.ArtifactRecord:
    R.check_artifact_producer(r.artifact_id, r.produced_by_state_id, _get(r, "sink_effect_id"))
    return R.ArtifactRecord(
        artifact_id=r.artifact_id, run_id=r.run_id, produced_by_state_id=r.produced_by_state_id,
        sink_effect_id=_get(r, "sink_effect_id"), sink_node_id=r.sink_node_id,
        artifact_type=r.artifact_type, path_or_uri=r.path_or_uri, content_hash=r.content_hash,
        size_bytes=r.size_bytes, idempotency_key=r.idempotency_key, created_at=_ts(r.created_at),
    )


def batch_from_row(r: Row, epoch: int) -> R.BatchRecord:
    rec = f"batches[{r.batch_id}]"
    return R.BatchRecord(
        batch_id=r.batch_id, run_id=r.run_id, aggregation_node_id=r.aggregation_node_id,
        aggregation_state_id=r.aggregation_state_id,
        expansion_group_id=_get(r, "expansion_group_id"),
        retry_of_batch_id=_get(r, "retry_of_batch_id"), trigger_reason=r.trigger_reason,
        trigger_type=_opt_enum(TriggerType, r.trigger_type, epoch, rec, "trigger_type"),
        attempt=r.attempt, status=_enum(BatchStatus, r.status, epoch, rec, "status"),
        created_at=_ts(r.created_at), completed_at=_opt_ts(r.completed_at),
    )


def validation_error_from_row(r: Row, epoch: int) -> R.ValidationErrorRecord:
    return R.ValidationErrorRecord(
        error_id=r.error_id, run_id=r.run_id, node_id=r.node_id, row_id=_get(r, "row_id"),
        row_hash=r.row_hash, row_data_json=r.row_data_json, error=r.error,
        schema_mode=r.schema_mode, destination=r.destination, created_at=_ts(r.created_at),
        violation_type=r.violation_type, original_field_name=r.original_field_name,
        normalized_field_name=r.normalized_field_name, expected_type=r.expected_type,
        actual_type=r.actual_type,
    )


def transform_error_from_row(r: Row, epoch: int) -> R.TransformErrorRecord:
    return R.TransformErrorRecord(
        error_id=r.error_id, run_id=r.run_id, token_id=r.token_id, transform_id=r.transform_id,
        row_hash=r.row_hash, row_data_json=r.row_data_json,
        error_details_json=r.error_details_json, destination=r.destination,
        created_at=_ts(r.created_at),
    )


def checkpoint_from_row(r: Row, epoch: int) -> R.CheckpointRecord:
    return R.CheckpointRecord(
        checkpoint_id=r.checkpoint_id, run_id=r.run_id, token_id=_get(r, "token_id"),
        node_id=_get(r, "node_id"), sequence_number=r.sequence_number,
        created_at=_ts(r.created_at), upstream_topology_hash=r.upstream_topology_hash,
        format_version=r.format_version,
    )


def preflight_from_row(r: Row, epoch: int) -> R.PreflightResultRecord:
    return R.PreflightResultRecord(
        result_id=r.result_id, run_id=r.run_id,
        result_type=_enum(PreflightResultType, r.result_type, epoch,
                          f"preflight_results[{r.result_id}]", "result_type"),
        name=r.name, result_json=r.result_json, created_at=_ts(r.created_at),
    )


def scheduler_event_from_row(r: Row, epoch: int) -> R.SchedulerEventRecord:
    return R.SchedulerEventRecord(
        event_id=r.event_id, run_id=r.run_id, token_id=r.token_id, work_item_id=r.work_item_id,
        node_id=r.node_id, event_type=r.event_type, from_status=r.from_status,
        to_status=r.to_status, from_attempt=r.from_attempt, to_attempt=r.to_attempt,
        recorded_at=_ts(r.recorded_at), context_json=r.context_json,
    )


MAPPERS = [
    (R.RunRecord, "runs", run_from_row), (R.NodeRecord, "nodes", node_from_row),
    (R.EdgeRecord, "edges", edge_from_row), (R.RowRecord, "rows", row_from_row),
    (R.TokenRecord, "tokens", token_from_row), (R.NodeStateRecord, "node_states", node_state_from_row),
    (R.RoutingEventRecord, "routing_events", routing_event_from_row), (R.CallRecord, "calls", call_from_row),
    (R.OperationRecord, "operations", operation_from_row), (R.ArtifactRecord, "artifacts", artifact_from_row),
    (R.BatchRecord, "batches", batch_from_row),
    (R.ValidationErrorRecord, "validation_errors", validation_error_from_row),
    (R.TransformErrorRecord, "transform_errors", transform_error_from_row),
    (R.CheckpointRecord, "checkpoints", checkpoint_from_row),
    (R.PreflightResultRecord, "preflight_results", preflight_from_row),
    (R.SchedulerEventRecord, "scheduler_events", scheduler_event_from_row),
]


@pytest.mark.parametrize(("epoch", "name"), sorted(SQLITE_FIXTURES))
async def test_every_record_of_every_fixture(fixture_copies: Path, epoch: int, name: str) -> None:
    landscape = await open_landscape(str(fixture_copies / f"epoch{epoch}" / f"{name}.db"))
    compared = 0
    try:
        async with landscape.engine.connect() as conn:
            for cls, table_name, by_name in MAPPERS:
                table = getattr(landscape.tables, table_name)
                if table is None:
                    continue
                rows = (await conn.execute(select(table))).all()
                columns = [table.c[c] if c in table.c else null().label(c) for c in R.COLUMNS[cls]]
                sql = str(select(*columns).compile(dialect=landscape.engine.dialect))
                raw = (await conn.exec_driver_sql(sql)).all()  # text timestamps, as the queries get them
                expected = [by_name(r, landscape.epoch) for r in rows]
                got = [R.record_from_tuple(cls, tuple(r), landscape.epoch) for r in raw]
                assert got == expected, table_name
                # equal and of the same types (an aware datetime is not equal to a naive one)
                assert [repr(g) for g in got] == [repr(e) for e in expected], table_name
                compared += len(got)
    finally:
        await landscape.dispose()
    assert compared > 100


def test_broken_rows_raise_the_same_errors() -> None:
    token = ("t1", "r1", "run", "f", "j", None, None, None, None, "2026-01-01 00:00:00.000000")
    with pytest.raises(AuditIntegrityError) as positional:
        R.record_from_tuple(R.TokenRecord, token, 29)
    assert "at most one of fork_group_id" in positional.value.message

    state = ("s1", "t1", "run", "n", 1, 0, "exploded", "h", None, None, None, None, None, None,
             "2026-01-01 00:00:00.000000", None)
    with pytest.raises(AuditIntegrityError) as err:
        R.record_from_tuple(R.NodeStateRecord, state, 29)
    assert err.value.record == "node_states[s1]" and "status must be one of" in err.value.rule

    call = ("c1", None, None, 0, "http", "success", "h", None, None, None, None, None, None,
            "2026-01-01 00:00:00.000000")
    with pytest.raises(AuditIntegrityError, match="exactly one parent"):
        R.record_from_tuple(R.CallRecord, call, 29)

    # a timestamp with an offset is parsed as written, not forced to UTC
    assert ts_value("2026-01-01 01:00:00+01:00").isoformat() == "2026-01-01T01:00:00+01:00"
    assert ts_value("2026-01-01 01:00:00.000001").isoformat() == "2026-01-01T01:00:00.000001+00:00"
