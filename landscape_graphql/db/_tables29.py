"""The tables only epoch 29 has, apart from `sink_effects` (declared in tables.py beside the
lineage tables its members point into): its schema marker, the sink effects' members (epoch 29's
token -> artifact link), coalesce effects and branch losses, and the scheduler's events.
"""

from __future__ import annotations

from sqlalchemy import (
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

from ._columns import id_column as _id
from ._columns import time_column as _ts

EPOCH_29_ONLY = ("schema_identity", "sink_effect_members", "coalesce_effects", "coalesce_effect_members",
                 "coalesce_branch_losses", "scheduler_events")


def epoch29_tables(md: MetaData) -> dict[str, Table | None]:
    """The epoch-29-only tables, added to `md`, by their `LandscapeTables` attribute names."""
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
    return {"schema_identity": schema_identity, "sink_effect_members": sink_effect_members,
            "coalesce_effects": coalesce_effects, "coalesce_effect_members": coalesce_effect_members,
            "coalesce_branch_losses": coalesce_branch_losses, "scheduler_events": scheduler_events}
