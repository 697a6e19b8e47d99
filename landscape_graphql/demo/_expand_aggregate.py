"""The fixture expand/aggregate pipeline: JSON orders → json_explode (one token per item) →
flatten → region gate → count-triggered aggregations (batch_stats N→1 on 5, batch_replicate N→M
on 3) → sinks; what is left in a buffer at the end is flushed by an end_of_source trigger.

Each epoch's aggregation quirk is reproduced: the flush's outputs have ONE token_parents parent
(epoch 2: the last member for a count trigger and the first for end-of-source; epoch 29: always
the first), the other members are linked only through batch_members and their outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._core import compact, hash_obj
from ._recorder import Recorder, Work
from ._run import Node, Run, SinkItem
from ._steps import lineage_of, quarantine, token_ref

_FIELDS = ["order_id: int", "region: str", "copies: int", "items: any"]
_DECLARED = frozenset(("order_id", "region", "copies"))
_REGIONS = ("north", "south", "east", "west")
_SKUS = ("A-100", "B-200", "C-300", "D-400")
_GATE = "row['region'] == 'north' or row['region'] == 'south'"
_P_QUARANTINE = 3 / 120
_EXPLODED = '{"action":"transformed","fields_added":["item","item_index"],"fields_removed":["items"]}'
_FLATTENED = '{"action":"mapped","fields_added":["sku","qty","price"],"fields_modified":[]}'


@dataclass
class _Member:
    token_id: str
    row_id: str
    seq: int
    data: dict[str, Any]
    data_hash: str
    expand_ordinal: int
    work: Work | None


@dataclass
class _Batch:
    batch_id: str
    created_at: str
    members: list[_Member] = field(default_factory=list)


def _nodes() -> list[Node]:
    observed = {"schema": {"mode": "observed"}}

    def sink(name: str) -> Node:
        return Node(name, "sink", "json", {"format": "jsonl", "path": f"out/{name}.jsonl", **observed})

    def aggregation(name: str, plugin: str, count: int, options: dict[str, Any], step: int) -> Node:
        return Node(name, "aggregation", plugin, {"options": {**options, **observed}, "output_mode": "transform",
                                                  "trigger": {"condition": None, "count": count,
                                                              "timeout_seconds": None}, **observed}, step)

    return [
        Node("source", "source", "json", {"on_validation_failure": "quarantine", "path": "orders.json",
                                          "schema": {"fields": _FIELDS, "mode": "fixed"}}, 0),
        Node("explode_items", "transform", "json_explode",
             {"array_field": "items", "include_index": True, "output_field": "item", **observed}, 1),
        sink("quarantine"),
        Node("flatten_item", "transform", "field_mapper",
             {"mapping": {"item.price": "price", "item.qty": "qty", "item.sku": "sku"}, **observed}, 2),
        Node("region_gate", "gate", "config_gate",
             {"condition": _GATE, "routes": {"false": "replicate_in", "true": "stats_in"}, **observed}, 3),
        aggregation("price_stats", "batch_stats", 5, {"compute_mean": True, "value_field": "price"}, 4),
        aggregation("replicate", "batch_replicate", 3,
                    {"copies_field": "copies", "default_copies": 1, "include_copy_index": True}, 5),
        sink("stats_out"),
        sink("replicated_out"),
    ]


_EDGES = [
    ("source", "explode_items", "continue", "move"),
    ("source", "quarantine", "__quarantine__", "divert"),
    ("explode_items", "flatten_item", "continue", "move"),
    ("flatten_item", "region_gate", "continue", "move"),
    ("price_stats", "stats_out", "on_success", "move"),
    ("replicate", "replicated_out", "on_success", "move"),
    ("region_gate", "price_stats", "true", "move"),
    ("region_gate", "replicate", "false", "move"),
]


class _Aggregator:
    """Buffers members per aggregation node and records each flush."""

    def __init__(self, run: Run, cases: dict[str, str]) -> None:
        self.run = run
        self.cases = cases
        self.open: dict[str, _Batch] = {}
        self.flushes: dict[str, int] = {}
        self.seen: dict[str, int] = {}

    def add(self, agg: str, member: _Member) -> None:
        rec, run = self.run.rec, self.run
        batch = self.open.get(agg)
        if batch is None:
            batch = self.open[agg] = _Batch(rec.rand.uuid(), rec.clock.tick())
        ordinal = len(batch.members)
        batch.members.append(member)
        extra = {"run_id": run.run_id} if rec.e29 else {}
        rec.add("batch_members", batch_id=batch.batch_id, token_id=member.token_id, ordinal=ordinal, **extra)
        rec.outcome(run.run_id, member.token_id, "buffered", batch=batch.batch_id)
        rec.sched(member.work, "mark_blocked", compact({"barrier_key": run.nid(agg)}))
        self.seen[agg] = self.seen.get(agg, 0) + 1
        if len(batch.members) == run.node(agg).config["trigger"]["count"]:
            self.flush(agg, "count")

    def flush(self, agg: str, trigger: str) -> None:
        rec, run, rid = self.run.rec, self.run, self.run.run_id
        batch = self.open.pop(agg)
        members = batch.members
        node = run.node(agg)
        assert node.step is not None
        n = len(members)
        self.flushes[agg] = self.flushes.get(agg, 0) + 1
        if node.plugin == "batch_stats":
            total = sum(m.data["price"] for m in members)
            outputs = [{"batch_size": n, "count": n, "mean": round(total / n, 4), "sum": total}]
            added = ["count", "sum", "batch_size", "mean"]
        else:
            outputs = [{**m.data, "copy_index": c} for m in members for c in range(m.data["copies"])]
            added = ["copy_index"]
        context: dict[str, Any] = {"batch_id": batch.batch_id, "buffer_size": n, "trigger_type": trigger}
        if rec.e29:
            seen = self.seen[agg]
            context.update(flush_index=self.flushes[agg], is_end_of_source=trigger == "end_of_source",
                           row_end=seen, row_start=seen - n + 1, rows_seen_total=seen)
        first = members[0]
        # The one node state of a batch sits on its first member.
        state = rec.state(rid, first.token_id, run.nid(agg), node.step, hash_obj([m.data for m in members]),
                          output_hash=hash_obj(outputs), after=compact(context),
                          reason=compact({"action": "processed", "fields_added": added}),
                          duration=rec.rand.ms(0.1, 2.0))
        parent = members[-1] if (trigger == "count" and not rec.e29) else first
        expand = rec.rand.uuid()
        out_tokens = []
        for k, data in enumerate(outputs):
            token = rec.token(rid, parent.row_id, expand=expand, step=node.step,
                              data_ref=token_ref(run, data, _DECLARED))
            rec.parents(rid, token, [parent.token_id], first=k)
            out_tokens.append((token, data))
        extra = {"expansion_group_id": expand} if rec.e29 else {}
        rec.add("batches", batch_id=batch.batch_id, run_id=rid, aggregation_node_id=run.nid(agg),
                aggregation_state_id=state, trigger_type=trigger, attempt=0, status="completed",
                created_at=batch.created_at, completed_at=rec.clock.tick(), **extra)
        barrier = compact({"barrier_key": run.nid(agg), "consumed_count": n})
        for m in members:
            rec.outcome(rid, m.token_id, "consumed_in_batch", batch=batch.batch_id)
            rec.sched(m.work, "mark_blocked_barrier_terminal", barrier)
        sink = "stats_out" if agg == "price_stats" else "replicated_out"
        for k, (token, data) in enumerate(out_tokens):
            work = rec.work(rid, token, None, run.worker, claim=False)
            rec.sched(work, "mark_pending_sink", barrier, unleased=True)
            run.to_sink(sink, SinkItem(token, parent.row_id, parent.seq, hash_obj(data), "completed",
                                       lineage=lineage_of([(k, lineage_of([(parent.expand_ordinal, "[]")]))]),
                                       work=work, unleased=True))
        self.cases.setdefault("batch_output_child", out_tokens[0][0])
        self.cases.setdefault("batch_parent_member", parent.token_id)
        other = next((m for m in members if m is not parent), None)
        if other is not None:
            self.cases.setdefault("consumed_in_batch", other.token_id)
        if trigger == "end_of_source":
            self.cases.setdefault("end_of_source_output", out_tokens[0][0])
        if len(outputs) > 1:
            self.cases.setdefault("batch_output_sibling_group", out_tokens[1][0])


def run_expand_aggregate(rec: Recorder, n_orders: int, label: str = "expand-aggregate") -> tuple[Run, dict[str, str]]:
    """Record one expand/aggregate run of `n_orders` source orders."""
    run = Run(rec, label, _nodes(), _EDGES, _FIELDS)
    rid, rand, n = run.run_id, rec.rand, run.nid
    cases: dict[str, str] = {}
    aggregator = _Aggregator(run, cases)
    for i in range(n_orders):
        bad = i == 1 or (i > 1 and rand.chance(_P_QUARANTINE))
        items = [{"price": rand.between(100, 500), "qty": rand.between(1, 9), "sku": rand.pick(_SKUS)}
                 for _ in range(rand.between(1, 5))]
        order: dict[str, Any] = {"copies": rand.between(1, 3), "items": items,
                                 "order_id": f"ORD-{i + 1}" if bad else i + 1, "region": rand.pick(_REGIONS)}
        row_id, h0 = rec.row(rid, n("source"), i, order)
        root = rec.token(rid, row_id)
        if bad:
            quarantine(run, root, row_id, i, h0, order, "order_id")
            cases.setdefault("validation_error", root)
            continue
        rec.state(rid, root, n("source"), 0, h0, duration=0.0)
        work = rec.work(rid, root, n("source"), run.worker)
        base = {"order_id": order["order_id"], "region": order["region"], "copies": order["copies"]}
        children = [{**base, "item": item, "item_index": k} for k, item in enumerate(items)]
        rec.state(rid, root, n("explode_items"), 1, h0, output_hash=hash_obj(children), reason=_EXPLODED)
        expand = rand.uuid()
        kids = []
        for k, data in enumerate(children):
            kid = rec.token(rid, row_id, expand=expand, step=1, data_ref=token_ref(run, data, _DECLARED))
            rec.parents(rid, kid, [root], first=k)
            kids.append(kid)
        rec.outcome(rid, root, "expanded", expand=expand)
        rec.sched(work, "mark_terminal")
        cases.setdefault("expand_parent", root)
        cases.setdefault("expand_child", kids[0])
        for k, (kid, data) in enumerate(zip(kids, children, strict=True)):
            kid_work = rec.work(rid, kid, n("flatten_item"), run.worker)
            flat = {**data, "sku": data["item"]["sku"], "qty": data["item"]["qty"], "price": data["item"]["price"]}
            h_in, h_flat = hash_obj(data), hash_obj(flat)
            rec.state(rid, kid, n("flatten_item"), 2, h_in, output_hash=h_flat, reason=_FLATTENED)
            north_south = data["region"] in ("north", "south")
            label_ = "true" if north_south else "false"
            gate = rec.state(rid, kid, n("region_gate"), 3, h_flat,
                             after=compact({"condition": _GATE, "result": str(north_south), "route_label": label_}))
            rec.route(rid, gate, [run.edge("region_gate", label_)], "move", {"condition": _GATE, "result": label_})
            aggregator.add("price_stats" if north_south else "replicate",
                           _Member(kid, row_id, i, flat, h_flat, k, kid_work))
    for agg in ("price_stats", "replicate"):
        if agg in aggregator.open:
            aggregator.flush(agg, "end_of_source")
    run.finish()
    return run, cases
