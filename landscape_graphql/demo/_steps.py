"""Recording steps several pipelines share: quarantine at the source, a transform error routed
to its on_error sink, per-token payloads and sink lineage strings."""

from __future__ import annotations

import json
from typing import Any

from ._core import compact, hash_obj
from ._recorder import Work
from ._run import Run, SinkItem

_PY_TYPES = {bool: "bool", int: "int", float: "float", str: "str", dict: "object", list: "list"}


def validation_message(e29: bool, field: str, value: str) -> str:
    """The pydantic message each ELSPETH version stores for a non-integer field."""
    if e29:
        return f"1 validation error: {field}: Input should be a valid integer, unable to parse string as an integer [int_parsing]"
    return (f"1 validation error for RowSchema\n{field}\n  Input should be a valid integer, unable to parse "
            f"string as an integer [type=int_parsing, input_value='{value}', input_type=str]\n"
            f"    For further information visit https://errors.pydantic.dev/2.14/v/int_parsing")


def quarantine(run: Run, token_id: str, row_id: str, seq: int, row_hash: str, raw: dict[str, Any],
               field: str) -> None:
    """A row that failed source validation: failed source state, validation_errors row, a divert
    to the quarantine sink; its outcome is written with the sink."""
    rec = run.rec
    source = run.nid(run.nodes[0].name)
    msg = validation_message(rec.e29, field, str(raw[field]))
    extra = {"row_id": row_id} if rec.e29 else {}
    rec.add("validation_errors", error_id="verr_" + rec.rand.hex12(), run_id=run.run_id, node_id=source,
            row_hash=row_hash, row_data_json=compact(raw), error=msg, schema_mode="fixed",
            destination="quarantine", created_at=rec.clock.tick(), **extra)
    state = rec.state(run.run_id, token_id, source, 0, row_hash, status="failed", duration=0.0,
                      error=compact({"exception": msg, "type": "ValidationError"}))
    rec.route(run.run_id, state, [run.edge(run.nodes[0].name, "__quarantine__")], "divert",
              {"quarantine_error": msg})
    run.to_sink("quarantine", SinkItem(token_id, row_id, seq, row_hash, "quarantined", error=msg))


def transform_error(run: Run, token_id: str, row_id: str, seq: int, node: str, step: int, row_hash: str,
                    raw: dict[str, Any], details: dict[str, Any], sink: str, work: Work | None,
                    lineage: str = "[]", *, state_id: str | None = None, started: str | None = None) -> str:
    """A transform failure routed on_error: failed state, transform_errors row, a divert to `sink`."""
    rec = run.rec
    details_json = compact(details)
    state = rec.state(run.run_id, token_id, run.nid(node), step, row_hash, status="failed", error=details_json,
                      state_id=state_id, started=started)
    rec.add("transform_errors", error_id="terr_" + rec.rand.hex12(), run_id=run.run_id, token_id=token_id,
            transform_id=run.nid(node), row_hash=row_hash, row_data_json=compact(raw),
            error_details_json=details_json, destination=sink, created_at=rec.clock.tick())
    rec.route(run.run_id, state, [run.edge(node, f"__error_{node}__")], "divert", details)
    rec.sched(work, "mark_pending_sink")
    run.to_sink(sink, SinkItem(token_id, row_id, seq, row_hash, "error_routed", error=details_json,
                               lineage=lineage, work=work))
    return state


_CONTRACTS: dict[tuple[tuple[str, str], ...], bytes] = {}


def token_ref(run: Run, data: dict[str, Any], declared: frozenset[str]) -> str | None:
    """Epoch 29's per-token payload `{"data": …, "contract": …}` (None in epoch 2, which has no
    token_data_ref). Serialised with json.dumps defaults like ELSPETH does for this payload."""
    if not run.rec.e29:
        return None
    shape = tuple((k, _PY_TYPES.get(type(v), "object")) for k, v in data.items())
    contract = _CONTRACTS.get(shape)
    if contract is None:
        # The contract depends only on the field names and types, so cache its bytes.
        fields = [{"normalized_name": k, "original_name": k, "python_type": t, "required": k in declared,
                   "source": "declared" if k in declared else "inferred", "nullable": False}
                  for k, t in shape]
        body = {"mode": "OBSERVED", "locked": True, "version_hash": hash_obj(shape)[:32], "fields": fields}
        contract = json.dumps(body).encode()
        _CONTRACTS[shape] = contract
    return run.rec.store.put(b'{"data": ' + json.dumps(data).encode() + b', "contract": ' + contract + b"}")


def lineage_of(parents: list[tuple[int, str]]) -> str:
    """sink_effect_members.lineage_json: per parent, [ordinal, the parent's own lineage]."""
    return "[" + ",".join(f"[{ordinal},{sub}]" for ordinal, sub in parents) + "]"
