"""The tables only epoch 29 (ELSPETH 0.7.1) has, that this API reads: sink effects (the token ->
artifact link), coalesce evidence, scheduler events (explain() returns them), the schema
identity marker and the per-source contracts (`run_sources`).

Declared once here and added to an epoch 29 `LandscapeTables` by `tables.build_tables`; an
epoch 2 `LandscapeTables` has None for each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ._table_columns import id_column as _id
from ._table_columns import ts_column as _ts


@dataclass(frozen=True, slots=True)
class Epoch29Tables:
    """Epoch 29's own tables; all None for an epoch that lacks them."""

    schema_identity: Table | None = None
    sink_effects: Table | None = None
    sink_effect_members: Table | None = None
    coalesce_effects: Table | None = None
    coalesce_effect_members: Table | None = None
    coalesce_branch_losses: Table | None = None
    scheduler_events: Table | None = None
    run_sources: Table | None = None


def build_epoch29_tables(md: MetaData) -> Epoch29Tables:
    """Declare epoch 29's own tables in `md` (which holds the shared ones they refer to)."""
    # Only the columns lineage needs carry meaning here; the rest keep the generator's
    # databases shaped like ELSPETH's. A sink effect is one write batch of one sink.
    sink_effects = Table(
        "sink_effects", md,
        _id("effect_id"),
        _id("run_id"),
        _id("sink_node_id"),
        Column("role", String(16), nullable=False),
        Column("state", String(16), nullable=False),
        Column("protocol_version", String(64), nullable=False),
        Column("input_kind", String(32), nullable=False),
        Column("required_member_ordinal", Integer),
        Column("required_snapshot_slot", Integer),
        _id("config_hash"),
        _id("membership_or_manifest_hash"),
        _id("group_payload_hash"),
        _id("artifact_id"),
        Column("artifact_idempotency_key", String(256), nullable=False),
        Column("target_json", Text, nullable=False),
        Column("inspection_mode", String(32)),
        _id("inspection_attempt_id", nullable=True),
        Column("plan_json", Text),
        _id("plan_hash", nullable=True),
        Column("descriptor_mode", String(32)),
        _id("expected_descriptor_hash", nullable=True),
        _id("precondition_hash", nullable=True),
        _ts("prepared_at", nullable=True),
        Column("lease_owner", String(128)),
        Column("generation", Integer, nullable=False),
        _ts("lease_expires_at", nullable=True),
        _ts("lease_heartbeat_at", nullable=True),
        Column("reconcile_kind", String(48)),
        _id("reconcile_evidence_hash", nullable=True),
        _id("result_descriptor_hash", nullable=True),
        Column("publication_performed", Boolean),
        Column("publication_evidence_kind", String(32)),
        _id("primary_effect_id", nullable=True),
        _id("stream_id", nullable=True),
        Column("stream_sequence", Integer),
        _id("predecessor_effect_id", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finalized_at", nullable=True),
        PrimaryKeyConstraint("effect_id"),
        UniqueConstraint("effect_id", "input_kind"),
        UniqueConstraint("effect_id", "run_id"),
        UniqueConstraint("effect_id", "run_id", "sink_node_id"),
        UniqueConstraint("effect_id", "stream_id"),
        CheckConstraint("role IN ('primary','failsink')", name="ck_sink_effects_role"),
        CheckConstraint("state IN ('reserved','prepared','in_flight','finalized')",
                        name="ck_sink_effects_state"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        ForeignKeyConstraint(["sink_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
    )
    # The epoch marker PostgreSQL has (it has no user_version); a singleton row.
    schema_identity = Table(
        "elspeth_schema_identity", md,
        Column("singleton_id", Integer, nullable=False),
        Column("application_id", String(64), nullable=False),
        Column("store_kind", String(32), nullable=False),
        Column("schema_epoch", Integer, nullable=False),
        PrimaryKeyConstraint("singleton_id"),
        CheckConstraint("singleton_id = 1", name="ck_elspeth_schema_identity_singleton"),
    )
    # One row per token a sink effect wrote: the token -> artifact link of epoch 29.
    sink_effect_members = Table(
        "sink_effect_members", md,
        _id("effect_id"),
        Column("input_kind", String(32), nullable=False),
        Column("ordinal", Integer, nullable=False),
        _id("run_id"),
        _id("sink_node_id"),
        Column("role", String(16), nullable=False),
        _id("token_id"),
        _id("row_id"),
        Column("ingest_sequence", Integer, nullable=False),
        Column("lineage_json", Text, nullable=False),
        _id("lineage_hash"),
        _id("payload_hash"),
        _id("primary_effect_id", nullable=True),
        Column("prepared_disposition", String(16)),
        _id("reason_hash", nullable=True),
        _id("member_effect_id", nullable=True),
        Column("member_state", String(16)),
        _id("descriptor_hash", nullable=True),
        _id("evidence_hash", nullable=True),
        PrimaryKeyConstraint("effect_id", "ordinal"),
        UniqueConstraint("effect_id", "input_kind", "ordinal"),
        ForeignKeyConstraint(["effect_id", "input_kind"], ["sink_effects.effect_id", "sink_effects.input_kind"]),
        ForeignKeyConstraint(["token_id", "row_id", "run_id"],
                             ["tokens.token_id", "tokens.row_id", "tokens.run_id"]),
        Index("ix_sink_effect_members_token", "token_id"),
    )
    coalesce_effects = Table(
        "coalesce_effects", md,
        _id("effect_id"),
        _id("run_id"),
        _id("coalesce_node_id"),
        _id("row_id"),
        _id("parent_set_hash"),
        _id("effect_hash"),
        _id("expected_token_data_ref"),
        Column("step_in_pipeline", Integer),
        Column("status", String(16), nullable=False),
        _id("result_token_id"),
        _id("result_join_group_id"),
        _ts("created_at"),
        _ts("completed_at", nullable=True),
        PrimaryKeyConstraint("effect_id"),
        UniqueConstraint("effect_id", "run_id", name="uq_coalesce_effects_run_identity"),
        UniqueConstraint("result_token_id", name="uq_coalesce_effects_result_token"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
    )
    coalesce_effect_members = Table(
        "coalesce_effect_members", md,
        _id("effect_id"),
        _id("run_id"),
        Column("ordinal", Integer, nullable=False),
        _id("parent_token_id"),
        _id("parent_state_id", nullable=True),
        PrimaryKeyConstraint("effect_id", "ordinal"),
        ForeignKeyConstraint(["effect_id", "run_id"], ["coalesce_effects.effect_id", "coalesce_effects.run_id"]),
    )
    # A fork branch that never reached its coalesce, and why.
    coalesce_branch_losses = Table(
        "coalesce_branch_losses", md,
        _id("loss_id"),
        _id("run_id"),
        Column("coalesce_name", String(128), nullable=False),
        _id("row_id"),
        Column("branch_name", String(128), nullable=False),
        _id("token_id"),
        # declared VARCHAR(64) by ELSPETH, which writes longer reasons (error_routed:{...})
        Column("reason", String(64), nullable=False),
        Column("recorded_by", String(128), nullable=False),
        _ts("recorded_at"),
        Column("adopted_epoch", Integer),
        PrimaryKeyConstraint("loss_id"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
    )
    scheduler_events = Table(
        "scheduler_events", md,
        _id("event_id"),
        _id("run_id"),
        _id("token_id"),
        _id("work_item_id"),
        _id("node_id", nullable=True),
        Column("event_type", String(64), nullable=False),
        Column("from_status", String(32)),
        Column("to_status", String(32), nullable=False),
        Column("from_lease_owner", String(128)),
        Column("to_lease_owner", String(128)),
        _ts("from_lease_expires_at", nullable=True),
        _ts("to_lease_expires_at", nullable=True),
        Column("from_attempt", Integer),
        Column("to_attempt", Integer, nullable=False),
        _ts("recorded_at"),
        Column("caller_owner", String(128)),
        Column("context_json", Text, nullable=False, server_default=text("'{}'")),
        PrimaryKeyConstraint("event_id"),
        ForeignKeyConstraint(["token_id", "run_id"], ["tokens.token_id", "tokens.run_id"]),
        Index("ix_scheduler_events_run_token_time", "run_id", "token_id", "recorded_at", "event_id"),
    )
    # One row per source of a run: its name, plugin, lifecycle and the schema contract it
    # recorded (NULL until an observed/flexible source locks it at its first row).
    run_sources = Table(
        "run_sources", md,
        _id("run_id"),
        _id("source_node_id"),
        Column("source_name", String(64), nullable=False),
        Column("plugin_name", String(128), nullable=False),
        Column("lifecycle_state", String(32), nullable=False),
        _id("config_hash"),
        Column("schema_json", Text),
        Column("schema_contract_json", Text),
        Column("schema_contract_hash", String(32)),
        Column("field_resolution_json", Text),
        _ts("recorded_at"),
        PrimaryKeyConstraint("run_id", "source_node_id"),
        UniqueConstraint("run_id", "source_name"),
        CheckConstraint("lifecycle_state IN ('ready', 'loading', 'exhausted', 'loaded', 'interrupted')",
                        name="ck_run_sources_lifecycle_state"),
        ForeignKeyConstraint(["source_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_run_sources_source_name", "run_id", "source_name"),
        Index("ix_run_sources_run", "run_id"),
    )
    return Epoch29Tables(
        schema_identity=schema_identity, sink_effects=sink_effects, sink_effect_members=sink_effect_members,
        coalesce_effects=coalesce_effects, coalesce_effect_members=coalesce_effect_members,
        coalesce_branch_losses=coalesce_branch_losses, scheduler_events=scheduler_events,
        run_sources=run_sources,
    )
