"""The fixture fork/coalesce pipeline: CSV source → keyword filter → fork to three branches →
require-all coalesce → amount gate → two sinks, with quarantine, rejected and branch-error sinks.

Row mix follows the 300-row fixture (8 quarantined, 13 rejected, 10 lost-branch rows), which is
what gives ~4.69 tokens and ~10.35 node states per source row.
"""

from __future__ import annotations

from typing import Any

from ._core import Rand, compact, hash_obj, sha256
from ._recorder import Recorder, Work
from ._run import Node, Run, SinkItem
from ._steps import lineage_of, quarantine, token_ref, transform_error

BRANCHES = ("path_a", "path_b", "path_c")
_P_QUARANTINE = 8 / 300
_P_REJECT = 13 / 300
_P_BRANCH_ERROR = 10 / 300
_WORDS = ("support", "migration", "renewal", "pilot", "upsell", "training", "audit", "expansion")
_CATEGORIES = ("commercial", "enterprise", "government", "consumer")
_FIELDS = ["id: int", "customer: str", "amount: int", "category: str", "notes: str"]
_DECLARED = frozenset(f.split(":")[0] for f in _FIELDS)
_MERGED_LINEAGE = lineage_of([(i, lineage_of([(i, "[]")])) for i in range(3)])
_LOST_LINEAGE = lineage_of([(2, "[]")])
_FORK_CTX = compact({"condition": "True", "result": "True", "route_label": "true"})
_FORK_REASON = compact({"condition": "True", "result": "true"})
_AMOUNT = "row['amount'] >= 2500"
# Per amount-gate decision: the state's context and the routing reason.
_AMOUNT_CTX = {high: (compact({"condition": _AMOUNT, "result": str(high), "route_label": str(high).lower()}),
                      compact({"condition": _AMOUNT, "result": str(high).lower()})) for high in (True, False)}
_BARRIER = compact({"barrier_key": "merge_branches"})
_CONSUMED = compact({"barrier_key": "merge_branches", "consumed_count": 3})
_LOST_FAILURE = compact({"branches_arrived": list(BRANCHES[:2]), "expected_branches": list(BRANCHES),
                         "failure_reason": "branch_lost:path_c", "merge_policy": "union"})


def _nodes(e29: bool) -> list[Node]:
    observed = {"schema": {"mode": "observed"}}

    def sink(name: str) -> Node:
        return Node(name, "sink", "json", {"format": "jsonl", "path": f"out/{name}.jsonl", **observed})

    branch_b = (Node("branch_b_enrich", "transform", "value_transform",
                     {"operations": ["amount_band", "segment"], **observed}, 4) if e29 else
                Node("branch_b_mapper", "transform", "field_mapper",
                     {"mapping": {"category": "segment", "customer": "customer_name"}, **observed}, 4))
    return [
        Node("source", "source", "csv", {"on_validation_failure": "quarantine", "path": "customers.csv",
                                         "schema": {"fields": _FIELDS, "mode": "fixed"}}, 0),
        Node("content_filter", "transform", "keyword_filter",
             {"blocked_patterns": ["(?i)\\bconfidential\\b"], "fields": ["notes"], **observed}, 1),
        sink("quarantine"),
        Node("fork_gate", "gate", "config_gate",
             {"condition": "True", "fork_to": list(BRANCHES), "routes": {"false": "low_value", "true": "fork"},
              **observed}, 2),
        sink("rejected"),
        Node("branch_a_truncate", "transform", "truncate", {"fields": {"notes": 20}, "suffix": "...", **observed}, 3),
        branch_b,
        Node("branch_c_escalation_filter", "transform", "keyword_filter",
             {"blocked_patterns": ["(?i)\\bescalate\\b"], "fields": ["notes"], **observed}, 5),
        Node("merge_branches", "coalesce", "coalesce",
             {"branches": {"path_a": "done_a", "path_b": "done_b", "path_c": "done_c"}, "merge": "union",
              "policy": "require_all", **observed}, 6),
        sink("branch_errors"),
        Node("amount_gate", "gate", "config_gate",
             {"condition": _AMOUNT, "routes": {"false": "low_value", "true": "high_value"}, **observed}, 7),
        sink("high_value"),
        sink("low_value"),
    ]


def _edges(branch_b: str) -> list[tuple[str, str, str, str]]:
    return [
        ("source", "content_filter", "continue", "move"),
        ("source", "quarantine", "__quarantine__", "divert"),
        ("content_filter", "fork_gate", "continue", "move"),
        ("content_filter", "rejected", "__error_content_filter__", "divert"),
        ("branch_a_truncate", "merge_branches", "continue", "move"),
        (branch_b, "merge_branches", "continue", "move"),
        ("branch_c_escalation_filter", "merge_branches", "continue", "move"),
        ("branch_c_escalation_filter", "branch_errors", "__error_branch_c_escalation_filter__", "divert"),
        ("fork_gate", "low_value", "false", "move"),
        ("fork_gate", "branch_a_truncate", "path_a", "move"),
        ("fork_gate", branch_b, "path_b", "move"),
        ("fork_gate", "branch_c_escalation_filter", "path_c", "move"),
        ("amount_gate", "high_value", "true", "move"),
        ("amount_gate", "low_value", "false", "move"),
        ("merge_branches", "amount_gate", "continue", "move"),
    ]


def _blocked(notes: str, word: str, pattern: str) -> dict[str, Any]:
    pos = notes.index(word)
    return {"field": "notes", "field_length": len(notes), "match_length": len(word), "match_position": pos,
            "matched_pattern": pattern, "reason": "blocked_content"}


def _kind(rand: Rand, i: int) -> str:
    # The first rows are pinned to one of each kind so even a tiny run shows every shape.
    if i < 4:
        return ("ok", "lost", "quarantine", "reject")[i]
    r = rand.rng.random()
    if r < _P_QUARANTINE:
        return "quarantine"
    if r < _P_QUARANTINE + _P_REJECT:
        return "reject"
    return "lost" if r < _P_QUARANTINE + _P_REJECT + _P_BRANCH_ERROR else "ok"


def run_fork_coalesce(rec: Recorder, n_rows: int, label: str = "fork-coalesce") -> tuple[Run, dict[str, str]]:
    """Record one fork/coalesce run of `n_rows` source rows; returns it and its notable tokens."""
    nodes = _nodes(rec.e29)
    run = Run(rec, label, nodes, _edges(nodes[6].name), _FIELDS, error_sinks=frozenset({"rejected", "branch_errors"}))
    pipeline = _Pipeline(run, nodes[6].name)
    for i in range(n_rows):
        pipeline.row(i, _kind(rec.rand, i))
    run.finish()
    return run, pipeline.cases


class _Pipeline:
    def __init__(self, run: Run, branch_b: str) -> None:
        self.run, self.rec, self.rid, self.n = run, run.rec, run.run_id, run.nid
        self.branch_b = branch_b
        self.cases: dict[str, str] = {}

    def row(self, i: int, kind: str) -> None:
        rec, rand, rid, n = self.rec, self.rec.rand, self.rid, self.n
        words = [rand.pick(_WORDS) for _ in range(rand.between(3, 12))]
        if kind == "reject":
            words.insert(rand.between(1, len(words)), "confidential")
        elif kind == "lost":
            words.append("escalate")
        notes = " ".join(words)
        row: dict[str, Any] = {"amount": rand.between(100, 5000), "category": rand.pick(_CATEGORIES),
                               "customer": f"Customer {i + 1:05d}", "id": i + 1, "notes": notes}
        if kind == "quarantine":
            row.update(amount="not-a-number", id=str(i + 1))
        row_id, h0 = rec.row(rid, n("source"), i, row)
        t0 = rec.token(rid, row_id)
        if kind == "quarantine":
            quarantine(self.run, t0, row_id, i, h0, row, "amount")
            self.cases.setdefault("validation_error", t0)
            return
        rec.state(rid, t0, n("source"), 0, h0, duration=0.0)
        w0 = rec.work(rid, t0, n("source"), self.run.worker)
        if kind == "reject":
            details = _blocked(notes, "confidential", "(?i)\\bconfidential\\b")
            transform_error(self.run, t0, row_id, i, "content_filter", 1, h0, row, details, "rejected", w0)
            self.cases.setdefault("transform_error", t0)
            return
        rec.state(rid, t0, n("content_filter"), 1, h0, reason='{"action":"filtered"}')
        gate_state = rec.state(rid, t0, n("fork_gate"), 2, h0, after=_FORK_CTX)
        rec.route(rid, gate_state, [self.run.edge("fork_gate", b) for b in BRANCHES], "copy", _FORK_REASON)
        fork = rand.uuid()
        kids = [rec.token(rid, row_id, fork=fork, branch=b, step=2) for b in BRANCHES]
        for k, kid in enumerate(kids):
            rec.parents(rid, kid, [t0], first=k)
        rec.outcome(rid, t0, "forked", fork=fork, expected=BRANCHES)
        rec.sched(w0, "mark_terminal")
        works = [rec.work(rid, kid, n(name), self.run.worker)
                 for kid, name in zip(kids, ("branch_a_truncate", self.branch_b, "branch_c_escalation_filter"),
                                      strict=True)]
        out_a = {**row, "notes": notes[:20] + "..." if len(notes) > 20 else notes}
        out_b = ({**row, "amount_band": row["amount"] // 1000, "segment": row["category"]} if rec.e29
                 else {**row, "customer_name": row["customer"], "segment": row["category"]})
        ha, hb = hash_obj(out_a), hash_obj(out_b)
        rec.state(rid, kids[0], n("branch_a_truncate"), 3, h0, output_hash=ha,
                  reason='{"action":"transformed","fields_modified":["notes"]}')
        rec.state(rid, kids[1], n(self.branch_b), 4, h0, output_hash=hb,
                  reason=compact({"action": "transformed" if rec.e29 else "mapped",
                                  "fields_added": sorted(set(out_b) - set(row)), "fields_modified": []}))
        if kind == "lost":
            self._lost(i, row_id, h0, row, notes, kids, works, (ha, hb))
            return
        rec.state(rid, kids[2], n("branch_c_escalation_filter"), 5, h0, reason='{"action":"filtered"}')
        self._merge(i, row_id, {**row, **out_a, **out_b}, kids, works, (ha, hb, h0))
        self.cases.setdefault("forked_parent", t0)
        self.cases.setdefault("fork_child", kids[0])

    def _lost(self, i: int, row_id: str, h0: str, row: dict[str, Any], notes: str, kids: list[str],
              works: list[Work | None], hashes: tuple[str, str]) -> None:
        """Branch c errors out, so the require-all coalesce fails for branches a and b."""
        rec, rid, n = self.rec, self.rid, self.n
        details = _blocked(notes, "escalate", "(?i)\\bescalate\\b")
        transform_error(self.run, kids[2], row_id, i, "branch_c_escalation_filter", 5, h0, row, details,
                        "branch_errors", works[2], _LOST_LINEAGE)
        for kid, h, w in zip(kids[:2], hashes, works[:2], strict=True):
            rec.state(rid, kid, n("merge_branches"), 6, h, status="failed", error=_LOST_FAILURE,
                      duration=rec.rand.ms(1.0, 30.0))
            rec.sched(w, "mark_blocked", _BARRIER)
        for kid, w in zip(kids[:2], works[:2], strict=True):
            rec.outcome(rid, kid, "failed", error="branch_lost:path_c")
            rec.sched(w, "mark_blocked_barrier_terminal", _BARRIER)
        if rec.e29:
            rec.add("coalesce_branch_losses", loss_id="loss_" + rec.rand.hex12(), run_id=rid,
                    coalesce_name="merge_branches", row_id=row_id, branch_name="path_c", token_id=kids[2],
                    reason=f"error_routed:{details!r}", recorded_by=self.run.worker,
                    recorded_at=rec.clock.tick(), adopted_epoch=1)
        self.cases.setdefault("failed_state", kids[0])
        self.cases.setdefault("branch_transform_error", kids[2])

    def _merge(self, i: int, row_id: str, merged: dict[str, Any], kids: list[str], works: list[Work | None],
               hashes: tuple[str, str, str]) -> None:
        """All three branches arrive: one merged token with three parents, then the amount gate."""
        rec, rand, rid, n = self.rec, self.rec.rand, self.rid, self.n
        hm = hash_obj(merged)
        offsets = [0, rand.ms(0.5, 15.0), rand.ms(15.0, 30.0)]
        context = compact({
            "arrival_order": [{"arrival_offset_ms": o, "branch": b} for o, b in zip(offsets, BRANCHES, strict=True)],
            "branches_arrived": list(BRANCHES), "branches_lost": {}, "expected_branches": list(BRANCHES),
            "merge_strategy": "union", "policy": "require_all", "wait_duration_ms": offsets[2] + 0.4})
        states = [rec.state(rid, kid, n("merge_branches"), 6, h, output_hash=hm, after=context,
                            duration=rand.ms(0.4, 30.0))
                  for kid, h in zip(kids, hashes, strict=True)]
        for w in works:
            rec.sched(w, "mark_blocked", _BARRIER)
        join = rand.uuid()
        data_ref = token_ref(self.run, merged, _DECLARED)
        merged_id = rec.token(rid, row_id, join=join, step=6, data_ref=data_ref)
        rec.parents(rid, merged_id, kids)
        for kid, w in zip(kids, works, strict=True):
            rec.outcome(rid, kid, "coalesced", join=join)
            rec.sched(w, "mark_blocked_barrier_terminal", _CONSUMED)
        if data_ref is not None:
            _coalesce_effect(self.run, row_id, kids, states, merged_id, join, data_ref)
        wm = rec.work(rid, merged_id, n("merge_branches"), self.run.worker, _CONSUMED)
        high = merged["amount"] >= 2500
        label = "true" if high else "false"
        after, reason = _AMOUNT_CTX[high]
        gate_state = rec.state(rid, merged_id, n("amount_gate"), 7, hm, after=after)
        rec.route(rid, gate_state, [self.run.edge("amount_gate", label)], "move", reason)
        rec.sched(wm, "mark_pending_sink")
        self.run.to_sink("high_value" if high else "low_value",
                         SinkItem(merged_id, row_id, i, hm, "routed", lineage=_MERGED_LINEAGE, work=wm))
        self.cases.setdefault("coalesced_multi_parent", merged_id)
        self.cases.setdefault("gate_routed", merged_id)


def _coalesce_effect(run: Run, row_id: str, kids: list[str], states: list[str], merged_id: str, join: str,
                     data_ref: str) -> None:
    rec = run.rec
    effect = rec.rand.uuid()
    created = rec.clock.tick()
    rec.add("coalesce_effects", effect_id=effect, run_id=run.run_id, coalesce_node_id=run.nid("merge_branches"),
            row_id=row_id, parent_set_hash=sha256(",".join(kids).encode()),
            effect_hash=sha256(",".join((effect, *states)).encode()),
            expected_token_data_ref=data_ref, step_in_pipeline=6, status="completed",
            result_token_id=merged_id, result_join_group_id=join, created_at=created,
            completed_at=rec.clock.tick())
    for ordinal, (kid, state) in enumerate(zip(kids, states, strict=True)):
        rec.add("coalesce_effect_members", effect_id=effect, run_id=run.run_id, ordinal=ordinal,
                parent_token_id=kid, parent_state_id=state)
