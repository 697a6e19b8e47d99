"""`--format elspeth-v1`: ELSPETH 0.4.1's signed export, record for record.

ELSPETH 0.4.1 (`elspeth/core/landscape/exporter.py`, commit de732358) exports a run as flat
records, each with `record_type`, and when signing adds to each `signature` =
HMAC-SHA256(key, canonical_json(record without signature)), the key being the UTF-8 bytes of
`ELSPETH_SIGNING_KEY` and canonical_json RFC 8785 (the `rfc8785` package). A final
`manifest` record holds `record_count`, `final_hash` = SHA-256 over the records' hex
signatures concatenated in file order, the algorithms, and its own signature.

The record fields, their order of computation and their value forms (`datetime.isoformat()`
of the value as the database driver returns it, JSON columns parsed for `settings`/`config`/
`schema_fields`, node-state fields nulled by status) are ELSPETH's, so an auditor's existing
checker accepts the file. Two differences, neither seen by a checker: records come table by
table (ELSPETH nests a row's tokens, states and calls under it, holding the whole run in
memory: 1.7 GB on 25,000 rows), and `exported_at` is the run's `completed_at` instead of the
wall clock, so the same run always gives the same bytes. Only epoch 2 (the schema 0.4.1
writes) is accepted; ELSPETH 0.4.1 has a `secret_resolution` record type, for a table this
tool does not model (no fixture has one), and it is not exported.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import rfc8785

from .manifest import ExportError

FORMAT = "elspeth-v1"


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _json(raw: Any, field: str, context: str) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ExportError(f"corrupt {field} for {context}: {exc} (audit integrity)") from None


def _pick(v: dict[str, Any], rt: str, names: str) -> dict[str, Any]:
    out: dict[str, Any] = {"record_type": rt, "run_id": None}
    for name in names.split():
        out[name] = v[name]
    return out


_STATE_NULLS = {
    "open": ("output_hash", "duration_ms", "completed_at", "context_after_json", "error_json", "success_reason_json"),
    "pending": ("output_hash", "error_json", "success_reason_json"),
    "completed": ("error_json",),
    "failed": ("success_reason_json",),
}


def render_record(run_id: str) -> Callable[[str, dict[str, Any]], dict[str, Any] | None]:
    """ELSPETH's record for a stored row, or None for a type ELSPETH 0.4.1 does not export."""

    def render(rt: str, v: dict[str, Any]) -> dict[str, Any] | None:
        r: dict[str, Any]
        if rt == "run":
            return {"record_type": "run", "run_id": v["run_id"], "status": v["status"],
                    "started_at": _iso(v["started_at"]), "completed_at": _iso(v["completed_at"]),
                    "canonical_version": v["canonical_version"], "config_hash": v["config_hash"],
                    "settings": _json(v["settings_json"], "settings_json", f"run {run_id}"),
                    "reproducibility_grade": v["reproducibility_grade"]}
        if rt == "node":
            ctx = f"node {v['node_id']} in run {run_id}"
            return {"record_type": "node", "run_id": run_id, "node_id": v["node_id"],
                    "plugin_name": v["plugin_name"], "node_type": v["node_type"],
                    "plugin_version": v["plugin_version"], "determinism": v["determinism"],
                    "config_hash": v["config_hash"], "config": _json(v["config_json"], "config_json", ctx),
                    "schema_hash": v["schema_hash"], "schema_mode": v["schema_mode"],
                    "schema_fields": (_json(v["schema_fields_json"], "schema_fields_json", ctx)
                                      if v["schema_fields_json"] is not None else None),
                    "sequence_in_pipeline": v["sequence_in_pipeline"]}
        if rt == "edge":
            r = _pick(v, rt, "edge_id from_node_id to_node_id label default_mode")
        elif rt == "operation":
            r = _pick(v, rt, "operation_id node_id operation_type status started_at completed_at duration_ms "
                             "error_message input_data_ref input_data_hash output_data_ref output_data_hash")
            r["started_at"], r["completed_at"] = _iso(r["started_at"]), _iso(r["completed_at"])
        elif rt == "call":
            r = _pick(v, rt, "call_id state_id operation_id call_index call_type status request_hash response_hash "
                             "latency_ms request_ref response_ref error_json created_at")
            if r["operation_id"] is not None:
                r["state_id"] = None
            else:
                r["operation_id"] = None
            r["created_at"] = _iso(r["created_at"])
        elif rt == "row":
            r = _pick(v, rt, "row_id row_index source_node_id source_data_hash")
        elif rt == "token":
            r = _pick(v, rt, "token_id row_id step_in_pipeline branch_name fork_group_id join_group_id "
                             "expand_group_id")
        elif rt == "token_parent":
            r = _pick(v, rt, "token_id parent_token_id ordinal")
        elif rt == "token_outcome":
            r = _pick(v, rt, "outcome_id token_id outcome is_terminal recorded_at sink_name batch_id fork_group_id "
                             "join_group_id expand_group_id error_hash context_json expected_branches_json")
            if r["is_terminal"] not in (0, 1):
                raise ExportError(f"token outcome {v['outcome_id']} has is_terminal={v['is_terminal']!r} "
                                  "(audit integrity)")
            r["is_terminal"] = r["is_terminal"] == 1
            r["recorded_at"] = _iso(r["recorded_at"])
        elif rt == "node_state":
            r = _pick(v, rt, "state_id token_id node_id step_index attempt status input_hash output_hash "
                             "duration_ms started_at completed_at context_before_json context_after_json "
                             "error_json success_reason_json")
            for name in _STATE_NULLS.get(str(v["status"]), ()):
                r[name] = None
            r["started_at"], r["completed_at"] = _iso(r["started_at"]), _iso(r["completed_at"])
        elif rt == "routing_event":
            r = _pick(v, rt, "event_id state_id edge_id routing_group_id ordinal mode reason_hash reason_ref "
                             "created_at")
            r["created_at"] = _iso(r["created_at"])
        elif rt == "batch":
            r = _pick(v, rt, "batch_id aggregation_node_id attempt status trigger_type trigger_reason "
                             "created_at completed_at")
            r["created_at"], r["completed_at"] = _iso(r["created_at"]), _iso(r["completed_at"])
        elif rt == "batch_member":
            r = _pick(v, rt, "batch_id token_id ordinal")
        elif rt == "artifact":
            r = _pick(v, rt, "artifact_id sink_node_id produced_by_state_id artifact_type path_or_uri "
                             "content_hash size_bytes")
        else:
            return None
        r["run_id"] = run_id
        return r

    return render


def sign_record(key: bytes, record: dict[str, Any]) -> str:
    return hmac.new(key, rfc8785.dumps(record), hashlib.sha256).hexdigest()


class Signer:
    """Adds ELSPETH's per-record signature and keeps the running hash for its manifest."""

    def __init__(self, key: bytes, run_id: str) -> None:
        self.key = key
        self.run_id = run_id
        self.running = hashlib.sha256()
        self.count = 0

    def sign(self, record: dict[str, Any]) -> bytes:
        record["signature"] = sign_record(self.key, record)
        self.running.update(record["signature"].encode())
        self.count += 1
        return rfc8785.dumps(record)

    def manifest(self, exported_at: str | None) -> bytes:
        manifest: dict[str, Any] = {"record_type": "manifest", "run_id": self.run_id, "record_count": self.count,
                                    "final_hash": self.running.hexdigest(), "hash_algorithm": "sha256",
                                    "signature_algorithm": "hmac-sha256", "exported_at": exported_at}
        manifest["signature"] = sign_record(self.key, manifest)
        return rfc8785.dumps(manifest)
