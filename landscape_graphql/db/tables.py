"""SQLAlchemy Core models of the Landscape tables this API reads, per schema epoch.

The two supported epochs share most of their lineage tables, so one builder declares each
table once and adds the columns that only one epoch has (see `tests/fixtures/schema-reference/
epoch2-to-29.md`). Reading only needs the columns, keys and indexes; the constraints are
declared too because the demo generator creates its databases from these same models, and
those databases should refuse the same bad data ELSPETH's would.

Tables ELSPETH 0.7.1 added for its scheduler, exports and web front end are not modelled:
no lineage question needs them. Those it added that are read (sink and coalesce effects,
`scheduler_events` because explain() returns it, `run_sources` for the source contracts) are
declared in `_tables_epoch29.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.sql.schema import SchemaItem

from ._table_columns import id_column as _id
from ._table_columns import ts_column as _ts
from ._tables_epoch29 import Epoch29Tables, build_epoch29_tables

EPOCH_2 = 2
EPOCH_29 = 29
SUPPORTED_EPOCHS = (EPOCH_2, EPOCH_29)

# Modelled tables a Landscape of their epoch may lack altogether: ELSPETH always writes
# run_sources, but the demo generator did not before it modelled the table, and such a database
# (the benchmark's among them) reads as having no source contracts rather than being refused.
OPTIONAL_TABLES = frozenset({"run_sources"})


@dataclass(frozen=True, slots=True)
class LandscapeTables:
    """The tables of one epoch. Attributes absent from an epoch are None."""

    epoch: int
    metadata: MetaData
    runs: Table
    nodes: Table
    edges: Table
    rows: Table
    tokens: Table
    token_parents: Table
    token_outcomes: Table
    node_states: Table
    routing_events: Table
    calls: Table
    operations: Table
    artifacts: Table
    batches: Table
    batch_members: Table
    batch_outputs: Table
    validation_errors: Table
    transform_errors: Table
    checkpoints: Table
    preflight_results: Table
    # epoch 29 only
    schema_identity: Table | None
    sink_effects: Table | None
    sink_effect_members: Table | None
    coalesce_effects: Table | None
    coalesce_effect_members: Table | None
    coalesce_branch_losses: Table | None
    scheduler_events: Table | None
    run_sources: Table | None


def build_tables(epoch: int, *, ddl: bool = False) -> LandscapeTables:
    """The models of an epoch; `ddl` adds what only creating tables needs (partial indexes).

    Reading never needs the partial unique indexes, and their dialect options make SQLAlchemy
    import every dialect they name (PostgreSQL's costs ~120 ms of a SQLite server's start-up).
    """
    if epoch not in SUPPORTED_EPOCHS:
        raise ValueError(f"no table models for epoch {epoch}")
    new = epoch >= EPOCH_29
    md = MetaData()

    def partial_unique(name: str, *columns: str, where: str) -> list[SchemaItem]:
        if not ddl:
            return []
        return [Index(name, *columns, unique=True, sqlite_where=text(where), postgresql_where=text(where))]

    def only29(*items: SchemaItem) -> list[SchemaItem]:
        return list(items) if new else []

    def only2(*items: SchemaItem) -> list[SchemaItem]:
        return [] if new else list(items)

    runs = Table(
        "runs", md,
        _id("run_id"),
        _ts("started_at"),
        _ts("completed_at", nullable=True),
        _id("config_hash"),
        Column("settings_json", Text, nullable=False),
        Column("reproducibility_grade", String(32)),
        Column("canonical_version", String(64), nullable=False),
        Column("source_schema_json", Text),
        Column("source_field_resolution_json", Text),
        # 0.7.1 adds completed_with_failures and empty; the row mapper rejects anything else.
        Column("status", String(32), nullable=False),
        Column("export_status", String(32)),
        Column("export_error", Text),
        _ts("exported_at", nullable=True),
        Column("export_format", String(16)),
        Column("export_sink", String(128)),
        # epoch 2 kept one schema contract per run; epoch 29 moved it per source to run_sources.
        # ELSPETH declares VARCHAR(16) but writes 32 characters here; SQLite does not check, and
        # db/pgload.py widens such columns when it copies a Landscape into PostgreSQL.
        *only2(Column("schema_contract_json", Text), Column("schema_contract_hash", String(16))),
        *only29(
            Column("runtime_val_manifest_json", Text),
            Column("llm_call_count", Integer),
            Column("seeded_from_cache", Boolean, nullable=False, server_default=false()),
            Column("cache_key", String(64)),
            Column("openrouter_catalog_sha256", String(64), nullable=False),
            Column("openrouter_catalog_source", String(8), nullable=False),
            CheckConstraint("openrouter_catalog_source IN ('live', 'bundled')",
                            name="ck_runs_openrouter_catalog_source"),
        ),
        PrimaryKeyConstraint("run_id"),
    )

    # Nodes are keyed per run: the same node id recurs in every run of a pipeline.
    nodes = Table(
        "nodes", md,
        _id("node_id"),
        _id("run_id"),
        Column("plugin_name", String(128), nullable=False),
        Column("node_type", String(32), nullable=False),
        Column("plugin_version", String(32), nullable=False),
        *only29(Column("source_file_hash", String(32))),
        Column("determinism", String(32), nullable=False),
        _id("config_hash"),
        Column("config_json", Text, nullable=False),
        Column("schema_hash", String(64)),
        Column("sequence_in_pipeline", Integer),
        _ts("registered_at"),
        Column("schema_mode", String(16)),
        Column("schema_fields_json", Text),
        Column("input_contract_json", Text),
        Column("output_contract_json", Text),
        *only29(Column("output_contract_hash", String(32))),
        PrimaryKeyConstraint("node_id", "run_id"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_nodes_run_id", "run_id"),
    )

    edges = Table(
        "edges", md,
        _id("edge_id"),
        _id("run_id"),
        _id("from_node_id"),
        _id("to_node_id"),
        Column("label", String(64), nullable=False),
        Column("default_mode", String(16), nullable=False),
        _ts("created_at"),
        PrimaryKeyConstraint("edge_id"),
        # A gate's route labels are unique per node: the label names the edge.
        UniqueConstraint("run_id", "from_node_id", "label"),
        *only29(UniqueConstraint("edge_id", "run_id")),
        ForeignKeyConstraint(["from_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["to_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_edges_run_id", "run_id"),
    )

    rows = Table(
        "rows", md,
        _id("row_id"),
        _id("run_id"),
        _id("source_node_id"),
        # epoch 29: a per-source display index that repeats in multi-source runs; order by
        # ingest_sequence instead.
        Column("row_index", Integer, nullable=new),
        *only29(
            Column("source_row_index", Integer, nullable=False),
            Column("ingest_sequence", Integer, nullable=False),
        ),
        _id("source_data_hash"),
        Column("source_data_ref", String(256)),
        _ts("created_at"),
        PrimaryKeyConstraint("row_id"),
        *only2(UniqueConstraint("run_id", "row_index")),
        *only29(
            UniqueConstraint("row_id", "run_id"),
            UniqueConstraint("run_id", "source_node_id", "source_row_index"),
            UniqueConstraint("run_id", "ingest_sequence"),
        ),
        ForeignKeyConstraint(["source_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_rows_run_id", "run_id"),
    )

    tokens = Table(
        "tokens", md,
        _id("token_id"),
        _id("row_id"),
        _id("run_id"),
        # At most one of the three group ids is set, and it is set exactly when the token
        # has parents; ELSPETH checks this on read (LineageIntegrityValidator), so do we.
        _id("fork_group_id", nullable=True),
        _id("join_group_id", nullable=True),
        _id("expand_group_id", nullable=True, length=32),
        Column("branch_name", String(64)),
        Column("step_in_pipeline", Integer),
        *only29(Column("token_data_ref", String(64))),
        _ts("created_at"),
        PrimaryKeyConstraint("token_id"),
        UniqueConstraint("token_id", "run_id"),
        *only29(
            UniqueConstraint("token_id", "row_id", "run_id"),
            UniqueConstraint("token_id", "run_id", "join_group_id"),
            ForeignKeyConstraint(["row_id", "run_id"], ["rows.row_id", "rows.run_id"]),
        ),
        ForeignKeyConstraint(["row_id"], ["rows.row_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_tokens_row_id", "row_id"),
        Index("ix_tokens_expand_group_id", "expand_group_id"),
    )

    token_parents = Table(
        "token_parents", md,
        _id("token_id"),
        _id("parent_token_id"),
        *only29(_id("run_id")),
        # Coalesced tokens have one parent per arriving branch, in arrival order.
        Column("ordinal", Integer, nullable=False),
        PrimaryKeyConstraint("token_id", "parent_token_id"),
        UniqueConstraint("token_id", "ordinal"),
        *only2(
            ForeignKeyConstraint(["token_id"], ["tokens.token_id"]),
            ForeignKeyConstraint(["parent_token_id"], ["tokens.token_id"]),
        ),
        # epoch 29 scopes ancestry by run: a parent in another run cannot be referenced.
        *only29(
            ForeignKeyConstraint(["token_id", "run_id"], ["tokens.token_id", "tokens.run_id"]),
            ForeignKeyConstraint(["parent_token_id", "run_id"], ["tokens.token_id", "tokens.run_id"]),
        ),
        # Children are the reverse direction of this table.
        Index("ix_token_parents_parent", "parent_token_id"),
    )

    node_states = Table(
        "node_states", md,
        _id("state_id"),
        _id("token_id"),
        _id("run_id"),
        _id("node_id"),
        Column("step_index", Integer, nullable=False),
        # Retries repeat a step with attempt 1, 2, ...; each failed attempt keeps its calls.
        Column("attempt", Integer, nullable=False),
        Column("status", String(32), nullable=False),
        _id("input_hash"),
        _id("output_hash", nullable=True),
        Column("context_before_json", Text),
        Column("context_after_json", Text),
        Column("duration_ms", Float),
        Column("error_json", Text),
        Column("success_reason_json", Text),
        _ts("started_at"),
        _ts("completed_at", nullable=True),
        *only29(_id("resume_checkpoint_id", nullable=True)),
        PrimaryKeyConstraint("state_id"),
        UniqueConstraint("token_id", "node_id", "attempt"),
        UniqueConstraint("token_id", "step_index", "attempt"),
        *only29(
            UniqueConstraint("state_id", "run_id"),
            ForeignKeyConstraint(["token_id", "run_id"], ["tokens.token_id", "tokens.run_id"]),
            Index("uq_node_states_coalesce_member_identity", "state_id", "run_id", "token_id",
                  unique=True),
        ),
        *only2(ForeignKeyConstraint(["token_id"], ["tokens.token_id"])),
        ForeignKeyConstraint(["node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_node_states_node", "node_id"),
        Index("ix_node_states_token", "token_id"),
    )

    routing_events = Table(
        "routing_events", md,
        _id("event_id"),
        _id("state_id"),
        _id("edge_id"),
        *only29(_id("run_id")),
        # One routing decision (e.g. a fork to three paths) shares a group id, ordered by ordinal.
        _id("routing_group_id"),
        Column("ordinal", Integer, nullable=False),
        Column("mode", String(16), nullable=False),
        _id("reason_hash", nullable=True),
        Column("reason_ref", String(256)),
        _ts("created_at"),
        PrimaryKeyConstraint("event_id"),
        UniqueConstraint("routing_group_id", "ordinal"),
        *only2(
            ForeignKeyConstraint(["state_id"], ["node_states.state_id"]),
            ForeignKeyConstraint(["edge_id"], ["edges.edge_id"]),
        ),
        *only29(
            ForeignKeyConstraint(["state_id", "run_id"], ["node_states.state_id", "node_states.run_id"]),
            ForeignKeyConstraint(["edge_id", "run_id"], ["edges.edge_id", "edges.run_id"]),
            ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
            Index("ix_routing_events_run_state", "run_id", "state_id"),
        ),
        Index("ix_routing_events_group", "routing_group_id"),
        Index("ix_routing_events_state", "state_id"),
    )

    calls = Table(
        "calls", md,
        _id("call_id"),
        _id("state_id", nullable=True),
        _id("operation_id", nullable=True),
        Column("call_index", Integer, nullable=False),
        Column("call_type", String(32), nullable=False),
        Column("status", String(32), nullable=False),
        _id("request_hash"),
        Column("request_ref", String(256)),
        _id("response_hash", nullable=True),
        Column("response_ref", String(256)),
        *only29(_id("resolved_prompt_template_hash", nullable=True)),
        Column("error_json", Text),
        Column("latency_ms", Float),
        _ts("created_at"),
        PrimaryKeyConstraint("call_id"),
        # A call belongs to exactly one parent: a node state (transform calls) or an operation
        # (source load, sink write, runtime preflight).
        CheckConstraint(
            "(state_id IS NOT NULL AND operation_id IS NULL) OR "
            "(state_id IS NULL AND operation_id IS NOT NULL)",
            name="calls_has_parent",
        ),
        ForeignKeyConstraint(["state_id"], ["node_states.state_id"]),
        ForeignKeyConstraint(["operation_id"], ["operations.operation_id"]),
        Index("ix_calls_state", "state_id"),
        Index("ix_calls_operation", "operation_id"),
        *partial_unique("ix_calls_state_call_index_unique", "state_id", "call_index",
                        where="state_id IS NOT NULL"),
        *partial_unique("ix_calls_operation_call_index_unique", "operation_id", "call_index",
                        where="operation_id IS NOT NULL"),
    )

    operations = Table(
        "operations", md,
        _id("operation_id"),
        _id("run_id"),
        _id("node_id"),
        Column("operation_type", String(32), nullable=False),
        # epoch 29: one sink_write operation per sink effect (write batch).
        *only29(_id("sink_effect_id", nullable=True)),
        _ts("started_at"),
        _ts("completed_at", nullable=True),
        Column("status", String(16), nullable=False),
        Column("input_data_ref", String(256)),
        _id("input_data_hash", nullable=True),
        Column("output_data_ref", String(256)),
        _id("output_data_hash", nullable=True),
        Column("error_message", Text),
        Column("duration_ms", Float),
        PrimaryKeyConstraint("operation_id"),
        ForeignKeyConstraint(["node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        *only29(ForeignKeyConstraint(["sink_effect_id"], ["sink_effects.effect_id"])),
        Index("ix_operations_run_id", "run_id"),
        Index("ix_operations_node_run", "node_id", "run_id"),
    )

    artifacts = Table(
        "artifacts", md,
        _id("artifact_id"),
        _id("run_id"),
        # epoch 2 ties an artifact to the sink state that wrote it; epoch 29 to a sink effect,
        # exactly one of the two (ck_artifacts_producer_xor).
        _id("produced_by_state_id", nullable=new),
        *only29(_id("sink_effect_id", nullable=True)),
        _id("sink_node_id"),
        Column("artifact_type", String(64), nullable=False),
        Column("path_or_uri", String(512), nullable=False),
        _id("content_hash"),
        Column("size_bytes", Integer, nullable=False),
        Column("idempotency_key", String(256)),
        *only29(
            Column("publication_performed", Boolean, nullable=False),
            Column("publication_evidence_kind", String(32), nullable=False),
            CheckConstraint(
                "(produced_by_state_id IS NOT NULL AND sink_effect_id IS NULL) OR "
                "(produced_by_state_id IS NULL AND sink_effect_id IS NOT NULL)",
                name="ck_artifacts_producer_xor",
            ),
            ForeignKeyConstraint(["sink_effect_id", "run_id", "sink_node_id"],
                                 ["sink_effects.effect_id", "sink_effects.run_id",
                                  "sink_effects.sink_node_id"]),
        ),
        _ts("created_at"),
        PrimaryKeyConstraint("artifact_id"),
        ForeignKeyConstraint(["sink_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        ForeignKeyConstraint(["produced_by_state_id"], ["node_states.state_id"]),
        Index("ix_artifacts_run", "run_id"),
    )

    batches = Table(
        "batches", md,
        _id("batch_id"),
        _id("run_id"),
        _id("aggregation_node_id"),
        # The one node state a batch has, recorded on its first member.
        _id("aggregation_state_id", nullable=True),
        # epoch 29: equals tokens.expand_group_id of the flush's output tokens.
        *only29(_id("expansion_group_id", nullable=True, length=32), _id("retry_of_batch_id", nullable=True)),
        Column("trigger_reason", String(128)),
        Column("trigger_type", String(32)),
        Column("attempt", Integer, nullable=False),
        Column("status", String(32), nullable=False),
        _ts("created_at"),
        _ts("completed_at", nullable=True),
        PrimaryKeyConstraint("batch_id"),
        *only29(UniqueConstraint("batch_id", "run_id"), UniqueConstraint("retry_of_batch_id")),
        ForeignKeyConstraint(["aggregation_node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        ForeignKeyConstraint(["aggregation_state_id"], ["node_states.state_id"]),
        Index("ix_batches_run_status", "run_id", "status"),
    )

    token_outcomes = Table(
        "token_outcomes", md,
        _id("outcome_id"),
        _id("run_id"),
        _id("token_id"),
        # epoch 2: one of ten RowOutcome values plus is_terminal. epoch 29: TerminalOutcome
        # (NULL exactly when completed = 0) x TerminalPath x completed.
        Column("outcome", String(32), nullable=new),
        *only2(Column("is_terminal", Integer, nullable=False)),
        *only29(Column("path", String(64), nullable=False), Column("completed", Integer, nullable=False)),
        _ts("recorded_at"),
        Column("sink_name", String(128)),
        _id("batch_id", nullable=True),
        _id("fork_group_id", nullable=True),
        _id("join_group_id", nullable=True),
        _id("expand_group_id", nullable=True),
        _id("error_hash", nullable=True),
        Column("context_json", Text),
        Column("expected_branches_json", Text),
        PrimaryKeyConstraint("outcome_id"),
        ForeignKeyConstraint(["token_id", "run_id"], ["tokens.token_id", "tokens.run_id"]),
        ForeignKeyConstraint(["batch_id"], ["batches.batch_id"]),
        Index("ix_token_outcomes_token_id", "token_id"),
        Index("ix_token_outcomes_run_id", "run_id"),
        # A token has at most one terminal outcome (a buffered one may precede it).
        *partial_unique("ix_token_outcomes_terminal_unique", "token_id",
                        where="completed = 1" if new else "is_terminal = 1"),
    )

    batch_members = Table(
        "batch_members", md,
        _id("batch_id"),
        *only29(_id("run_id")),
        _id("token_id"),
        Column("ordinal", Integer, nullable=False),
        PrimaryKeyConstraint("batch_id", "token_id"),
        UniqueConstraint("batch_id", "ordinal"),
        ForeignKeyConstraint(["batch_id"], ["batches.batch_id"]),
        ForeignKeyConstraint(["token_id"], ["tokens.token_id"]),
        Index("ix_batch_members_batch", "batch_id"),
    )

    # Never written by any ELSPETH version seen; modelled so an API answer can say so.
    batch_outputs = Table(
        "batch_outputs", md,
        _id("batch_output_id"),
        _id("batch_id"),
        Column("output_type", String(32), nullable=False),
        _id("output_id"),
        PrimaryKeyConstraint("batch_output_id"),
        UniqueConstraint("batch_id", "output_type", "output_id"),
        ForeignKeyConstraint(["batch_id"], ["batches.batch_id"]),
        Index("ix_batch_outputs_batch", "batch_id"),
    )

    validation_errors = Table(
        "validation_errors", md,
        _id("error_id", length=32),
        _id("run_id"),
        _id("node_id", nullable=True),
        # epoch 2 links a validation error to its row only through row_hash =
        # rows.source_data_hash, so identical rows share errors; epoch 29 adds row_id.
        *only29(_id("row_id", nullable=True)),
        _id("row_hash"),
        Column("row_data_json", Text),
        Column("error", Text, nullable=False),
        Column("schema_mode", String(16), nullable=False),
        Column("destination", String(255), nullable=False),
        _ts("created_at"),
        Column("violation_type", String(32)),
        Column("original_field_name", String(256)),
        Column("normalized_field_name", String(256)),
        Column("expected_type", String(32)),
        Column("actual_type", String(32)),
        PrimaryKeyConstraint("error_id"),
        ForeignKeyConstraint(["node_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_validation_errors_node", "node_id"),
        Index("ix_validation_errors_run", "run_id"),
    )

    transform_errors = Table(
        "transform_errors", md,
        _id("error_id", length=32),
        _id("run_id"),
        _id("token_id"),
        _id("transform_id"),
        _id("row_hash"),
        Column("row_data_json", Text),
        Column("error_details_json", Text),
        # The sink the failing token was routed to (on_error), or "discard".
        Column("destination", String(255), nullable=False),
        _ts("created_at"),
        PrimaryKeyConstraint("error_id"),
        ForeignKeyConstraint(["token_id", "run_id"], ["tokens.token_id", "tokens.run_id"]),
        ForeignKeyConstraint(["transform_id", "run_id"], ["nodes.node_id", "nodes.run_id"]),
        Index("ix_transform_errors_run", "run_id"),
        Index("ix_transform_errors_token", "token_id"),
        Index("ix_transform_errors_transform", "transform_id"),
    )

    checkpoints = Table(
        "checkpoints", md,
        _id("checkpoint_id"),
        _id("run_id"),
        # epoch 2 anchored a checkpoint to a token at a node; epoch 29 no longer does.
        *only2(_id("token_id"), _id("node_id")),
        Column("sequence_number", Integer, nullable=False),
        *only2(Column("aggregation_state_json", Text), Column("coalesce_state_json", Text)),
        _ts("created_at"),
        _id("upstream_topology_hash"),
        *only2(_id("checkpoint_node_config_hash")),
        Column("format_version", Integer),
        *only29(Column("barrier_scalars_json", Text)),
        PrimaryKeyConstraint("checkpoint_id"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_checkpoints_run_seq", "run_id", "sequence_number"),
        Index("ix_checkpoints_run", "run_id"),
    )

    preflight_results = Table(
        "preflight_results", md,
        _id("result_id"),
        _id("run_id"),
        Column("result_type", String(32), nullable=False),
        Column("name", String(256), nullable=False),
        Column("result_json", Text, nullable=False),
        _ts("created_at"),
        PrimaryKeyConstraint("result_id"),
        CheckConstraint("result_type IN ('dependency_run', 'commencement_gate', 'readiness_check')",
                        name="ck_preflight_result_type"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
        Index("ix_preflight_results_run", "run_id"),
    )

    e29 = build_epoch29_tables(md) if new else Epoch29Tables()

    return LandscapeTables(
        epoch=epoch, metadata=md, runs=runs, nodes=nodes, edges=edges, rows=rows, tokens=tokens,
        token_parents=token_parents, token_outcomes=token_outcomes, node_states=node_states,
        routing_events=routing_events, calls=calls, operations=operations, artifacts=artifacts,
        batches=batches, batch_members=batch_members, batch_outputs=batch_outputs,
        validation_errors=validation_errors, transform_errors=transform_errors,
        checkpoints=checkpoints, preflight_results=preflight_results,
        schema_identity=e29.schema_identity, sink_effects=e29.sink_effects,
        sink_effect_members=e29.sink_effect_members, coalesce_effects=e29.coalesce_effects,
        coalesce_effect_members=e29.coalesce_effect_members,
        coalesce_branch_losses=e29.coalesce_branch_losses,
        scheduler_events=e29.scheduler_events, run_sources=e29.run_sources,
    )


_CACHE: dict[tuple[int, bool, frozenset[str]], LandscapeTables] = {}


def tables_for(epoch: int, *, ddl: bool = False, absent: frozenset[str] = frozenset()) -> LandscapeTables:
    """The (immutable, shared) table models of an epoch; `ddl=True` to create tables from.

    `absent` names OPTIONAL_TABLES a database lacks: their attribute is None, as in an epoch
    without them, so every reader takes the path it takes there.
    """
    if not absent <= OPTIONAL_TABLES:
        raise ValueError(f"only {sorted(OPTIONAL_TABLES)} may be absent, not {sorted(absent - OPTIONAL_TABLES)}")
    key = (epoch, ddl, absent)
    if key not in _CACHE:
        tables = build_tables(epoch, ddl=ddl)
        if "run_sources" in absent:
            tables = replace(tables, run_sources=None)
        _CACHE[key] = tables
    return _CACHE[key]
