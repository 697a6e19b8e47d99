"""One pipeline run: its nodes and edges, the tokens waiting for their sinks, and the sink phase.

ELSPETH processes every row first and writes the sinks at the end of the run, so tokens bound
for a sink are queued here and written (sink node states, outcomes, operations, artifacts and,
in epoch 29, sink effects) by `Run.finish`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from landscape_graphql.db.contracts import ContractField, FieldOrigin, version_hash

from ._core import compact, sha256
from ._recorder import Recorder, Work

_ENGINE_VERSION = {2: "engine:0.3.3", 29: "engine:0.7.1"}
_DETERMINISM = {"source": "io_read", "sink": "io_write"}
_JSON_TYPES = {"int": "integer", "str": "string", "float": "number", "any": "array"}
# ELSPETH's contract type names: a field of any type is `object` there.
_CONTRACT_TYPES = {"any": "object"}
# Members per epoch-29 sink effect (one write batch); error sinks write each token on its own.
_EFFECT_CHUNK = 500
_EMPTY_SHA256 = sha256(b"")


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # source | transform | gate | aggregation | coalesce | sink
    plugin: str
    config: dict[str, Any]
    step: int | None = None
    determinism: str = "deterministic"


@dataclass(frozen=True)
class SinkItem:
    token_id: str
    row_id: str
    seq: int
    data_hash: str
    kind: str  # the outcome recorded when the sink has written it
    error: str | None = None
    lineage: str = "[]"  # sink_effect_members.lineage_json (epoch 29)
    work: Work | None = None
    unleased: bool = False


@dataclass
class Run:
    rec: Recorder
    label: str
    nodes: list[Node]
    edges: list[tuple[str, str, str, str]]  # (from, to, label, default_mode)
    source_fields: list[str]
    error_sinks: frozenset[str] = frozenset()
    run_id: str = ""
    worker: str = ""
    sink_step: int = 0
    node_ids: dict[str, str] = field(default_factory=dict)
    edge_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    queues: dict[str, list[SinkItem]] = field(default_factory=dict)
    started_at: str = ""
    source_started: str = ""
    config_hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rec = self.rec
        self.run_id = rec.rand.uuid()
        self.worker = f"worker:{self.run_id}:{rec.rand.uuid()}"
        self.started_at = rec.clock.tick(1000, 5000)
        self.sink_step = max(n.step or 0 for n in self.nodes if n.kind != "sink") + 1
        for node in self.nodes:
            self._register(node)
        for src, dst, label, mode in self.edges:
            edge_id = rec.rand.uuid()
            self.edge_ids[(src, label)] = edge_id
            rec.add("edges", edge_id=edge_id, run_id=self.run_id, from_node_id=self.node_ids[src],
                    to_node_id=self.node_ids[dst], label=label, default_mode=mode,
                    created_at=rec.clock.tick())
        self.source_started = rec.clock.tick(1000, 4000)

    def _register(self, node: Node) -> None:
        rec = self.rec
        config = dict(node.config)
        if node.kind == "source" and rec.e29:
            config["source_name"] = "primary"
        config_json = compact(config)
        config_hash = sha256(config_json.encode())
        engine = node.kind in ("gate", "coalesce")
        if node.kind == "source":
            prefix = "source_primary" if rec.e29 else f"source_{node.plugin}"
        elif node.kind == "gate":
            prefix = f"config_gate_{node.name}"
        else:
            prefix = f"{node.kind}_{node.name}"
        node_id = f"{prefix}_{config_hash[:12]}"
        self.node_ids[node.name] = node_id
        self.config_hashes[node.name] = config_hash
        fields = None
        if node.kind == "source":
            fields = compact([{"name": n, "required": True, "type": t}
                              for n, t in (f.split(": ") for f in self.source_fields)])
        extra: dict[str, Any] = {}
        if rec.e29:
            extra = {"source_file_hash": None if engine else "sha256:" + sha256(node.plugin.encode())[:16],
                     "output_contract_hash": None}
        rec.add("nodes", node_id=node_id, run_id=self.run_id,
                plugin_name=f"{'config_gate' if node.kind == 'gate' else 'coalesce'}:{node.name}"
                if engine else node.plugin,
                node_type=node.kind, plugin_version=_ENGINE_VERSION[rec.epoch] if engine else "1.0.0",
                determinism=_DETERMINISM.get(node.kind, node.determinism), config_hash=config_hash,
                config_json=config_json, registered_at=rec.clock.tick(300, 900),
                schema_mode="fixed" if node.kind == "source" else "observed", schema_fields_json=fields,
                **extra)

    # -- lookups -------------------------------------------------------------------------------

    def nid(self, name: str) -> str:
        return self.node_ids[name]

    def edge(self, src: str, label: str) -> str:
        return self.edge_ids[(src, label)]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def to_sink(self, sink: str, item: SinkItem) -> None:
        self.queues.setdefault(sink, []).append(item)

    # -- end of run ----------------------------------------------------------------------------

    def finish(self, *, status: str | None = None, crashed: bool = False, llm_calls: int | None = None) -> None:
        """Write the sinks (unless the run crashed first), the source load and the run row.

        The status defaults to what each ELSPETH version records for a run that finished:
        `completed` (epoch 2), or `completed_with_failures` when some row failed (epoch 29)."""
        rec = self.rec
        if not crashed:
            source = next(n for n in self.nodes if n.kind == "source")
            rec.operation(self.run_id, self.nid(source.name), "source_load", started=self.source_started,
                          input_obj={"source_plugin": source.plugin}, output_obj=None,
                          duration=rec.rand.ms(50.0, 9000.0))
            for node in self.nodes:
                if node.kind == "sink" and self.queues.get(node.name):
                    self._write_sink(node, self.queues[node.name])
        if status is None:
            status = "completed_with_failures" if rec.e29 and self.run_id in rec.failed_runs else "completed"
        self._run_row(status, None if crashed else rec.clock.tick(1000, 9000), llm_calls, crashed)

    def _write_sink(self, node: Node, items: list[SinkItem]) -> None:
        # Epoch 2 writes a sink once; epoch 29 in sink effects (write batches).
        size = 1 if node.name in self.error_sinks else _EFFECT_CHUNK
        if not self.rec.e29:
            size = len(items)
        for start in range(0, len(items), size):
            self._write_chunk(node, items[start:start + size])

    def _uri(self, node: Node) -> str:
        if node.plugin == "database":
            return f"db://{node.name}@sqlite:////srv/elspeth/{self.label}/out/{node.name}.db"
        return f"file:///srv/elspeth/{self.label}/out/{node.name}.jsonl"

    def _write_chunk(self, node: Node, items: list[SinkItem]) -> None:
        """One write batch: states, calls, artifact, operation and the tokens' outcomes."""
        rec, run_id, node_id = self.rec, self.run_id, self.nid(node.name)
        e29 = rec.e29
        started = rec.clock.tick(2000, 9000)
        op_id = rec.rand.hex64() if e29 else "op_" + rec.rand.uuid()
        effect_id = rec.rand.hex64() if e29 else None
        artifact_id = rec.rand.hex64() if e29 else rec.rand.uuid()
        self._sink_calls(node, op_id, len(items))
        states = []
        outputs = []
        for item in items:
            out_hash = sha256(f"{item.data_hash}:{node.name}".encode())
            outputs.append(out_hash)
            states.append(rec.state(run_id, item.token_id, node_id, self.sink_step, item.data_hash,
                                    output_hash=out_hash, duration=0.0 if e29 else None))
        content_hash = sha256("".join(outputs).encode())
        size_bytes = 180 * len(items) + rec.rand.between(0, 90)
        uri = self._uri(node)
        kind = "database" if node.plugin == "database" else "file"
        if effect_id is not None:
            self._effect(node, items, effect_id, artifact_id, content_hash, size_bytes, uri)
            rec.add("artifacts", artifact_id=artifact_id, run_id=run_id, produced_by_state_id=None,
                    sink_effect_id=effect_id, sink_node_id=node_id, artifact_type=kind, path_or_uri=uri,
                    content_hash=content_hash, size_bytes=size_bytes, idempotency_key=rec.rand.hex64(),
                    publication_performed=1, publication_evidence_kind="returned",
                    created_at=rec.clock.tick())
            rec.operation(run_id, node_id, "sink_write", started=started, input_obj=None,
                          output_obj={"artifact_id": artifact_id, "content_hash": content_hash},
                          op_id=op_id, duration=0.0, sink_effect_id=effect_id, refs=False)
        else:
            rec.add("artifacts", artifact_id=artifact_id, run_id=run_id, produced_by_state_id=states[0],
                    sink_node_id=node_id, artifact_type=kind, path_or_uri=uri, content_hash=content_hash,
                    size_bytes=size_bytes, created_at=rec.clock.tick())
            rec.operation(run_id, node_id, "sink_write", started=started,
                          input_obj={"row_count": len(items), "sink_plugin": node.plugin},
                          output_obj={"artifact_path": uri, "content_hash": content_hash}, op_id=op_id)
        for item in items:
            rec.outcome(run_id, item.token_id, item.kind, sink=node.name, error=item.error)
            rec.sched(item.work, "mark_pending_sink_terminal", unleased=item.unleased)

    def _sink_calls(self, node: Node, op_id: str, count: int) -> None:
        rec = self.rec
        new_id = rec.rand.hex64 if rec.e29 else None
        if node.plugin == "database":
            table = node.config.get("table", node.name)
            exchanges = [({"if_not_exists": True, "operation": "CREATE_TABLE", "table": table},
                          {"table_created": table}),
                         ({"operation": "INSERT", "row_count": count, "table": table},
                          {"rows_inserted": count})]
            for i, (req, resp) in enumerate(exchanges):
                rec.call(operation_id=op_id, index=i, call_type="sql", request=req, response=resp,
                         call_id=new_id() if new_id else f"call_{op_id}_{i}")
        elif rec.e29 and new_id is not None:
            # ELSPETH 0.7.1's local-file publication: stage, fsync, atomic replace; hashes only.
            for i, action in enumerate(("stage", "fsync", "replace")):
                rec.call(operation_id=op_id, index=i, call_type="filesystem", call_id=new_id(), refs=False,
                         request={"action": action, "sink": node.name, "op": op_id},
                         response={"ok": True, "action": action}, latency=rec.rand.ms(0.4, 1.7))

    def _effect(self, node: Node, items: list[SinkItem], effect_id: str, artifact_id: str,
                content_hash: str, size_bytes: int, uri: str) -> None:
        rec, run_id, node_id = self.rec, self.run_id, self.nid(node.name)
        h = rec.rand.hex64
        plan = {"descriptor_mode": "precomputed", "effect_id": effect_id, "input_kind": "pipeline_members",
                "payload_hash": content_hash, "protocol_version": "sink-effect-v1", "target": uri,
                "expected_descriptor": {"artifact_type": "file", "content_hash": content_hash,
                                        "path_or_uri": uri, "size_bytes": size_bytes}}
        plan_json = compact(plan)
        descriptor = h()
        now = rec.clock.tick()
        rec.add("sink_effects", effect_id=effect_id, run_id=run_id, sink_node_id=node_id, role="primary",
                state="finalized", protocol_version="sink-effect-v1", input_kind="pipeline_members",
                required_member_ordinal=0, config_hash=h(), membership_or_manifest_hash=h(),
                group_payload_hash=h(), artifact_id=artifact_id, artifact_idempotency_key=h(),
                target_json=compact({"resolved_target": uri}), inspection_mode="inspected",
                inspection_attempt_id=h(), plan_json=plan_json, plan_hash=sha256(plan_json.encode()),
                descriptor_mode="precomputed", expected_descriptor_hash=descriptor, precondition_hash=h(),
                prepared_at=now, generation=2, result_descriptor_hash=descriptor, publication_performed=1,
                # No stream: sink_effect_streams is not modelled, and ELSPETH's DDL makes a
                # stream_id a reference into it.
                publication_evidence_kind="returned", stream_id=None, stream_sequence=None,
                predecessor_effect_id=None, created_at=now, updated_at=rec.clock.tick(),
                finalized_at=rec.clock.now())
        evidence = h()
        for ordinal, item in enumerate(items):
            rec.add("sink_effect_members", effect_id=effect_id, input_kind="pipeline_members",
                    ordinal=ordinal, run_id=run_id, sink_node_id=node_id, role="primary",
                    token_id=item.token_id, row_id=item.row_id, ingest_sequence=item.seq,
                    lineage_json=item.lineage, lineage_hash=sha256(item.lineage.encode()),
                    payload_hash=item.data_hash, prepared_disposition="accepted", member_effect_id=h(),
                    member_state="finalized", descriptor_hash=descriptor, evidence_hash=evidence)

    def _contract(self) -> tuple[str, str]:
        """The source's schema contract as ELSPETH stores it (canonical JSON with its verified
        version hash), and that hash."""
        fields = [ContractField(normalized_name=n, original_name=n, python_type=_CONTRACT_TYPES.get(t, t),
                                required=True, nullable=False, origin=FieldOrigin.DECLARED)
                  for n, t in sorted(f.split(": ") for f in self.source_fields)]
        digest = version_hash("FIXED", True, fields)
        body = {"fields": [{"normalized_name": f.normalized_name, "nullable": f.nullable,
                            "original_name": f.original_name, "python_type": f.python_type,
                            "required": f.required, "source": f.origin.value} for f in fields],
                "locked": True, "mode": "FIXED", "version_hash": digest}
        return compact(body), digest

    def _run_row(self, status: str, completed_at: str | None, llm_calls: int | None, crashed: bool) -> None:
        rec = self.rec
        settings = self._settings()
        settings_json = compact(settings)
        names = [f.split(": ") for f in self.source_fields]
        schema = {"additionalProperties": False,
                  "properties": {n: {"title": n.replace("_", " ").title(), "type": _JSON_TYPES.get(t, "string")}
                                 for n, t in names},
                  "required": [n for n, _ in names], "title": "RowSchema", "type": "object"}
        resolution = {"normalization_version": "1.0.1" if rec.e29 else "1.0.0",
                      "resolution_mapping": {n: n for n, _ in names}}
        contract, digest = self._contract()
        extra: dict[str, Any]
        if rec.e29:
            extra = {"runtime_val_manifest_json": compact({"declaration_contracts": [], "tier_1_errors": []}),
                     "llm_call_count": llm_calls or 0, "seeded_from_cache": 0, "cache_key": None,
                     "openrouter_catalog_sha256": _EMPTY_SHA256, "openrouter_catalog_source": "bundled"}
            # Epoch 29 records the contract per source (the demo's pipelines have one).
            source = next(n for n in self.nodes if n.kind == "source")
            rec.add("run_sources", run_id=self.run_id, source_node_id=self.nid(source.name), source_name="primary",
                    plugin_name=source.plugin, lifecycle_state="loading" if crashed else "exhausted",
                    config_hash=self.config_hashes[source.name], schema_json=json.dumps(schema),
                    schema_contract_json=contract, schema_contract_hash=digest,
                    field_resolution_json=compact(resolution), recorded_at=self.source_started)
        else:
            extra = {"schema_contract_json": contract, "schema_contract_hash": digest}
        rec.add("runs", run_id=self.run_id, started_at=self.started_at, completed_at=completed_at,
                config_hash=sha256(settings_json.encode()), settings_json=settings_json,
                reproducibility_grade="replay_reproducible", canonical_version="sha256-rfc8785-v1",
                source_schema_json=json.dumps(schema), source_field_resolution_json=compact(resolution),
                status=status, **extra)

    def _settings(self) -> dict[str, Any]:
        # Where the pipeline ran, not where this file lives: like ELSPETH's, the recorded
        # settings say nothing reliable about the payload store's current location.
        base = f"/srv/elspeth/{self.label}"
        out: dict[str, Any] = {
            "concurrency": {"max_workers": 4}, "run_mode": "live",
            "landscape": {"backend": "sqlite", "enabled": True, "url": f"sqlite:///{base}/audit.db"},
            "payload_store": {"backend": "filesystem", "base_path": f"{base}/payloads", "retention_days": 90},
            "retry": {"exponential_base": 2, "initial_delay_seconds": 1, "max_attempts": 3,
                      "max_delay_seconds": 60},
            "transforms": [], "gates": [], "aggregations": [], "coalesce": [], "sinks": {},
        }
        for node in self.nodes:
            if node.kind == "source":
                out["source"] = {"plugin": node.plugin, "options": node.config}
            elif node.kind == "sink":
                out["sinks"][node.name] = {"plugin": node.plugin, "options": node.config}
            elif node.kind == "transform":
                out["transforms"].append({"name": node.name, "plugin": node.plugin, "options": node.config})
            elif node.kind == "gate":
                out["gates"].append({"name": node.name, **node.config})
            elif node.kind == "aggregation":
                out["aggregations"].append({"name": node.name, "plugin": node.plugin, **node.config})
            else:
                out["coalesce"].append({"name": node.name, **node.config})
        return out
