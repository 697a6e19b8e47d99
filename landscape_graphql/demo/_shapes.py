"""Runs built for readers' edge cases rather than copied from a fixture: a crashed run, a deep
expansion chain and a very wide expansion."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from ._core import compact, hash_obj
from ._recorder import Recorder, Work
from ._run import Node, Run, SinkItem
from ._steps import lineage_of, token_ref

_OBSERVED = {"schema": {"mode": "observed"}}
_EXPLODED = '{"action":"transformed","fields_added":["item","item_index"],"fields_removed":["items"]}'


def _source(path: str, fields: list[str], plugin: str = "json") -> Node:
    return Node("source", "source", plugin, {"on_validation_failure": "discard", "path": path,
                                             "schema": {"fields": fields, "mode": "fixed"}}, 0)


def run_crashed(rec: Recorder, n_rows: int, label: str = "crashed") -> tuple[Run, dict[str, str]]:
    """A run that died mid-way: status running (epoch 2) / interrupted (29), no completed_at, no
    sink writes. Flushed batches' outputs have no outcome, the members of the last, never flushed
    batch have only `buffered`, and the last row's token is stuck in an open node state."""
    fields = ["id: int", "amount: int"]
    nodes = [
        _source("payments.csv", fields, "csv"),
        Node("normalize", "transform", "field_mapper", {"mapping": {"amount": "amount_cents"}, **_OBSERVED}, 1),
        Node("totals", "aggregation", "batch_stats",
             {"options": {"value_field": "amount_cents", **_OBSERVED}, "output_mode": "transform",
              "trigger": {"condition": None, "count": 4, "timeout_seconds": None}, **_OBSERVED}, 2),
        Node("output", "sink", "csv", {"path": "out/totals.csv", **_OBSERVED}),
    ]
    edges = [("source", "normalize", "continue", "move"), ("normalize", "totals", "continue", "move"),
             ("totals", "output", "on_success", "move")]
    run = Run(rec, label, nodes, edges, fields)
    rid, rand, n = run.run_id, rec.rand, run.nid
    cases: dict[str, str] = {}
    members: list[tuple[str, str, dict[str, Any], Work | None]] = []
    batch_id, batch_created = rand.uuid(), ""
    last = max(n_rows - 1, 1)
    for i in range(last + 1):
        row = {"amount": rand.between(1, 900), "id": i + 1}
        row_id, h0 = rec.row(rid, n("source"), i, row)
        token = rec.token(rid, row_id)
        rec.state(rid, token, n("source"), 0, h0, duration=0.0)
        work = rec.work(rid, token, n("source"), run.worker)
        if i == last:
            # The crash: the transform started on this token and never finished.
            rec.state(rid, token, n("normalize"), 1, h0, status="open", open_=True)
            cases.setdefault("no_outcome", token)
            break
        data = {"amount_cents": row["amount"] * 100, "id": row["id"]}
        rec.state(rid, token, n("normalize"), 1, h0, output_hash=hash_obj(data),
                  reason='{"action":"mapped","fields_added":["amount_cents"],"fields_modified":[]}')
        if not members:
            batch_created = rec.clock.tick()
        rec.add("batch_members", batch_id=batch_id, token_id=token, ordinal=len(members),
                **({"run_id": rid} if rec.e29 else {}))
        rec.outcome(rid, token, "buffered", batch=batch_id)
        rec.sched(work, "mark_blocked", compact({"barrier_key": n("totals")}))
        members.append((token, row_id, data, work))
        # The batch filled by the last processed row is never flushed: the run died first.
        if len(members) == 4 and i < last - 1:
            _flush(run, batch_id, batch_created, members, i, cases)
            members, batch_id = [], rand.uuid()
    if members:
        extra: dict[str, Any] = {"expansion_group_id": None} if rec.e29 else {}
        rec.add("batches", batch_id=batch_id, run_id=rid, aggregation_node_id=n("totals"), aggregation_state_id=None,
                trigger_type=None, attempt=0, status="draft", created_at=batch_created, completed_at=None, **extra)
        cases.setdefault("buffered_only", members[-1][0])
    run.finish(status="interrupted" if rec.e29 else "running", crashed=True)
    return run, cases


def _flush(run: Run, batch_id: str, created: str, members: list[tuple[str, str, dict[str, Any], Work | None]],
           seq: int, cases: dict[str, str]) -> None:
    rec, rid = run.rec, run.run_id
    total = sum(m[2]["amount_cents"] for m in members)
    output = {"batch_size": len(members), "count": len(members), "sum": total}
    state = rec.state(rid, members[0][0], run.nid("totals"), 2, hash_obj([m[2] for m in members]),
                      output_hash=hash_obj(output),
                      after=compact({"batch_id": batch_id, "buffer_size": len(members), "trigger_type": "count"}),
                      reason='{"action":"processed","fields_added":["count","sum","batch_size"]}')
    parent = members[0] if rec.e29 else members[-1]
    expand = rec.rand.uuid()
    token = rec.token(rid, parent[1], expand=expand, step=2, data_ref=token_ref(run, output, frozenset()))
    rec.parents(rid, token, [parent[0]])
    extra = {"expansion_group_id": expand} if rec.e29 else {}
    rec.add("batches", batch_id=batch_id, run_id=rid, aggregation_node_id=run.nid("totals"),
            aggregation_state_id=state, trigger_type="count", attempt=0, status="completed", created_at=created,
            completed_at=rec.clock.tick(), **extra)
    barrier = compact({"barrier_key": run.nid("totals"), "consumed_count": len(members)})
    for member_token, _, _, work in members:
        rec.outcome(rid, member_token, "consumed_in_batch", batch=batch_id)
        rec.sched(work, "mark_blocked_barrier_terminal", barrier)
    # Bound for a sink the crashed run never wrote: no sink state, no outcome.
    work_out = rec.work(rid, token, None, run.worker, claim=False)
    rec.sched(work_out, "mark_pending_sink", barrier, unleased=True)
    cases.setdefault("crashed_unwritten_output", token)


def run_deep_chain(rec: Recorder, depth: int, label: str = "deep-chain") -> tuple[Run, dict[str, str]]:
    """One source row unwrapped `depth` times, each level an expansion with a single child, so
    the leaf's ancestry is a chain of `depth` token_parents links."""
    nodes = [_source("documents.json", ["doc_id: int", "levels: int"])]
    nodes += [Node(f"unwrap_{k:04d}", "transform", "json_explode",
                   {"array_field": "inner", "include_index": True, "level": k, "output_field": "inner", **_OBSERVED}, k)
              for k in range(1, depth + 1)]
    nodes.append(Node("output", "sink", "json", {"format": "jsonl", "path": "out/leaves.jsonl", **_OBSERVED}))
    names = [node.name for node in nodes]
    edges = [(a, b, "continue", "move") for a, b in pairwise(names)]
    run = Run(rec, label, nodes, edges, ["doc_id: int", "levels: int"])
    rid = run.run_id
    data: dict[str, Any] = {"doc_id": 1, "levels": depth}
    row_id, h = rec.row(rid, run.nid("source"), 0, data)
    token = root = rec.token(rid, row_id)
    rec.state(rid, token, run.nid("source"), 0, h, duration=0.0)
    lineage = "[]"
    for k in range(1, depth + 1):
        work = rec.work(rid, token, run.nid(names[k]), run.worker)
        child_data = {"doc_id": 1, "level": k}
        h_child = hash_obj(child_data)
        rec.state(rid, token, run.nid(names[k]), k, h, output_hash=h_child, reason=_EXPLODED)
        expand = rec.rand.uuid()
        child = rec.token(rid, row_id, expand=expand, step=k, data_ref=token_ref(run, child_data, frozenset()))
        rec.parents(rid, child, [token])
        rec.outcome(rid, token, "expanded", expand=expand)
        rec.sched(work, "mark_terminal")
        token, h, lineage = child, h_child, lineage_of([(0, lineage)])
    work = rec.work(rid, token, run.nid("output"), run.worker)
    rec.sched(work, "mark_pending_sink")
    run.to_sink("output", SinkItem(token, row_id, 0, h, "completed", lineage=lineage, work=work))
    run.finish()
    return run, {"deep_chain_root": root, "deep_chain_leaf": token}


def run_wide_fan(rec: Recorder, width: int, label: str = "wide-fan") -> tuple[Run, dict[str, str]]:
    """One source row exploded into `width` children (one expand group, ordinals 0..width-1)."""
    nodes = [_source("batches.json", ["batch_id: int", "items: any"]),
             Node("explode_lines", "transform", "json_explode",
                  {"array_field": "items", "include_index": True, "output_field": "item", **_OBSERVED}, 1),
             Node("output", "sink", "json", {"format": "jsonl", "path": "out/lines.jsonl", **_OBSERVED})]
    edges = [("source", "explode_lines", "continue", "move"), ("explode_lines", "output", "continue", "move")]
    run = Run(rec, label, nodes, edges, ["batch_id: int", "items: any"])
    rid, rand = run.run_id, rec.rand
    items = [{"line": k, "qty": rand.between(1, 9)} for k in range(width)]
    row_id, h0 = rec.row(rid, run.nid("source"), 0, {"batch_id": 1, "items": items})
    root = rec.token(rid, row_id)
    rec.state(rid, root, run.nid("source"), 0, h0, duration=0.0)
    work = rec.work(rid, root, run.nid("explode_lines"), run.worker)
    children = [{"batch_id": 1, "item": item, "item_index": k} for k, item in enumerate(items)]
    rec.state(rid, root, run.nid("explode_lines"), 1, h0, output_hash=hash_obj(children), reason=_EXPLODED)
    expand = rand.uuid()
    first = ""
    for k, data in enumerate(children):
        child = rec.token(rid, row_id, expand=expand, step=1, data_ref=token_ref(run, data, frozenset()))
        rec.parents(rid, child, [root], first=k)
        child_work = rec.work(rid, child, run.nid("output"), run.worker)
        rec.sched(child_work, "mark_pending_sink")
        run.to_sink("output", SinkItem(child, row_id, 0, hash_obj(data), "completed",
                                       lineage=lineage_of([(k, "[]")]), work=child_work))
        first = first or child
    rec.outcome(rid, root, "expanded", expand=expand)
    rec.sched(work, "mark_terminal")
    run.finish()
    return run, {"wide_fan_root": root, "wide_fan_child": first}
