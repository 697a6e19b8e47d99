"""Buffered, epoch-aware writers for the Landscape tables.

The pipelines describe what happened to a token (a state, an outcome, a routing decision);
this module turns that into the row shape the target epoch stores, so the epoch differences
live in one place. Rows are buffered per table and handed to a row sink in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from landscape_graphql.db.tables import EPOCH_29, tables_for

from ._core import Clock, PayloadStore, Rand, compact, error_hash, hash_obj
from ._sinks import RowSink

# Old single-axis RowOutcome names (plus the two "routed" flavours the old name hid) mapped to
# epoch 29's (outcome, path). Which discriminator columns each pair carries is the caller's job;
# the tests check it against the table in epoch2-to-29.md.
_OUTCOME29: dict[str, tuple[str | None, str]] = {
    "completed": ("success", "default_flow"),
    "routed": ("success", "gate_routed"),
    "error_routed": ("failure", "on_error_routed"),
    "coalesced": ("success", "coalesced"),
    "failed": ("failure", "unrouted"),
    "quarantined": ("failure", "quarantined_at_source"),
    "forked": ("transient", "fork_parent"),
    "expanded": ("transient", "expand_parent"),
    "consumed_in_batch": ("transient", "batch_consumed"),
    "buffered": (None, "buffered"),
}
_OUTCOME2 = {kind: ("routed" if kind == "error_routed" else kind) for kind in _OUTCOME29}

# event type -> (from_status, to_status) of ELSPETH 0.7.1's token work-item state machine.
_SCHED: dict[str, tuple[str | None, str]] = {
    "enqueue": (None, "ready"),
    "claim_ready": ("ready", "leased"),
    "mark_terminal": ("leased", "terminal"),
    "mark_blocked": ("leased", "blocked"),
    "mark_blocked_barrier_terminal": ("blocked", "terminal"),
    "mark_pending_sink": ("leased", "pending_sink"),
    "mark_pending_sink_terminal": ("pending_sink", "terminal"),
}
_LEASE_US = 300_000_000

_TOKEN = ("token_id", "row_id", "run_id", "fork_group_id", "join_group_id", "expand_group_id",
          "branch_name", "step_in_pipeline", "created_at")
_STATE = ("state_id", "token_id", "run_id", "node_id", "step_index", "attempt", "status",
          "input_hash", "output_hash", "context_before_json", "context_after_json", "duration_ms",
          "error_json", "success_reason_json", "started_at", "completed_at")
_OUT = ("outcome_id", "run_id", "token_id", "outcome", "recorded_at", "sink_name", "batch_id",
        "fork_group_id", "join_group_id", "expand_group_id", "error_hash", "context_json",
        "expected_branches_json")
_ROUTE = ("event_id", "state_id", "edge_id", "routing_group_id", "ordinal", "mode", "reason_hash",
          "reason_ref", "created_at")
_SCHED_COLS = ("event_id", "run_id", "token_id", "work_item_id", "node_id", "event_type",
               "from_status", "to_status", "from_lease_owner", "to_lease_owner",
               "from_lease_expires_at", "to_lease_expires_at", "from_attempt", "to_attempt",
               "recorded_at", "caller_owner", "context_json")

Work = tuple[str, str, str, str | None, str, str]
"""A token's scheduler work item: (run_id, token_id, work_item_id, node_id, lease expiry, worker)."""


class Recorder:
    """Buffers rows per table and hands them to the row sink in batches."""

    def __init__(self, sink: RowSink, epoch: int, rand: Rand, clock: Clock,
                 store: PayloadStore, *, scheduler_events: bool = True, flush_at: int = 10_000) -> None:
        self.sink = sink
        self.epoch = epoch
        self.e29 = epoch >= EPOCH_29
        self.rand = rand
        self.clock = clock
        self.store = store
        self._flush_at = flush_at
        self._cols = {name: tuple(c.name for c in t.columns)
                      for name, t in tables_for(epoch).metadata.tables.items()}
        self._buf: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._reasons: dict[str, str] = {}
        e29 = self.e29
        self._k_token = self._key("tokens", _TOKEN + (("token_data_ref",) if e29 else ()))
        self._k_parent = self._key("token_parents", ("token_id", "parent_token_id", "ordinal")
                                   + (("run_id",) if e29 else ()))
        self._k_state = self._key("node_states", _STATE)
        self._k_out = self._key("token_outcomes", _OUT + (("path", "completed") if e29 else ("is_terminal",)))
        self._k_route = self._key("routing_events", _ROUTE + (("run_id",) if e29 else ()))
        self._k_sched = self._key("scheduler_events", _SCHED_COLS) if e29 and scheduler_events else None
        # Runs that recorded a failure outcome: epoch 29 then ends them completed_with_failures.
        self.failed_runs: set[str] = set()

    # -- buffering ---------------------------------------------------------------------------

    def _key(self, table: str, cols: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        key = (table, cols)
        if key not in self._buf:
            unknown = set(cols) - set(self._cols[table])
            if unknown:
                raise KeyError(f"{table} (epoch {self.epoch}) has no column(s) {sorted(unknown)}")
            self._buf[key] = []
            self._sql[key] = f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
        return key

    def _put(self, key: tuple[str, tuple[str, ...]], row: tuple[Any, ...]) -> None:
        buf = self._buf[key]
        buf.append(row)
        if len(buf) >= self._flush_at:
            self._write(key)

    def _write(self, key: tuple[str, tuple[str, ...]]) -> None:
        rows = self._buf[key]
        if rows:
            self.sink.insert(self._sql[key], rows)
            self._buf[key] = []

    def close(self, *, commit: bool = True) -> None:
        """Write every buffered row and finish the database (or abandon the load)."""
        if commit:
            for key in self._buf:
                self._write(key)
        self.sink.close(commit=commit)

    def add(self, table: str, **values: Any) -> None:
        """Insert one row given by column name (for the less frequent tables)."""
        self._put(self._key(table, tuple(values)), tuple(values.values()))

    # -- lineage rows ------------------------------------------------------------------------

    def row(self, run_id: str, source_node_id: str, index: int, data: Any) -> tuple[str, str]:
        """A source row and its payload; returns (row_id, source_data_hash)."""
        digest = self.store.put_json(data)
        row_id = self.rand.uuid()
        extra = {"source_row_index": index, "ingest_sequence": index} if self.e29 else {}
        self.add("rows", row_id=row_id, run_id=run_id, source_node_id=source_node_id, row_index=index,
                 source_data_hash=digest, source_data_ref=digest, created_at=self.clock.tick(), **extra)
        return row_id, digest

    def token(self, run_id: str, row_id: str, *, fork: str | None = None, join: str | None = None,
              expand: str | None = None, branch: str | None = None, step: int | None = None,
              data_ref: str | None = None) -> str:
        token_id = self.rand.uuid()
        row = (token_id, row_id, run_id, fork, join, expand, branch, step, self.clock.tick())
        self._put(self._k_token, (*row, data_ref) if self.e29 else row)
        return token_id

    def parents(self, run_id: str, token_id: str, parent_ids: Sequence[str], first: int = 0) -> None:
        """token_parents rows; `first` is the ordinal of the first parent (expand siblings count up)."""
        for i, parent in enumerate(parent_ids, first):
            self._put(self._k_parent, (token_id, parent, i, run_id) if self.e29 else (token_id, parent, i))

    def state(self, run_id: str, token_id: str, node_id: str, step: int, input_hash: str, *,
              status: str = "completed", output_hash: str | None = None, attempt: int = 0,
              before: str | None = None, after: str | None = None, error: str | None = None,
              reason: str | None = None, duration: float | None = None, open_: bool = False,
              state_id: str | None = None, started: str | None = None) -> str:
        """A node state; JSON arguments are already-serialised text. Returns the state id.

        Pass `state_id`/`started` taken before recording the state's calls, so the calls fall
        inside the state's time span as they do in ELSPETH."""
        state_id = state_id or self.rand.uuid()
        started = started or self.clock.tick()
        if duration is None:
            duration = self.rand.ms(0.01, 0.4)
        completed = None if open_ else self.clock.tick(20, int(duration * 1000) + 40)
        if status == "completed" and output_hash is None:
            output_hash = input_hash
        self._put(self._k_state, (state_id, token_id, run_id, node_id, step, attempt, status, input_hash,
                                  output_hash, before, after, None if open_ else duration, error, reason,
                                  started, completed))
        return state_id

    def outcome(self, run_id: str, token_id: str, kind: str, *, sink: str | None = None,
                batch: str | None = None, fork: str | None = None, join: str | None = None,
                expand: str | None = None, error: str | None = None,
                expected: Sequence[str] | None = None) -> None:
        """A token outcome given as an old RowOutcome name (`error_routed` = routed by on_error).

        `error` is the error text; the row stores its 16-hex hash where the epoch records one
        (epoch 2 kept none for an on_error route).
        """
        at = self.clock.tick()
        err = error_hash(error) if error is not None else None
        if kind in ("error_routed", "failed", "quarantined"):
            self.failed_runs.add(run_id)
        # json.dumps defaults, as ELSPETH writes this one column.
        exp = None if expected is None else "[" + ", ".join(f'"{b}"' for b in expected) + "]"
        ctx = None
        if self.e29:
            outcome, path = _OUTCOME29[kind]
            if kind == "buffered":
                ctx = compact({"adopted_at": self.clock.iso(self.clock.us + 2_000), "adopted_epoch": 1})
            tail: tuple[Any, ...] = (path, 0 if kind == "buffered" else 1)
        else:
            outcome = _OUTCOME2[kind]
            if kind == "error_routed":
                err = None
            tail = (0 if kind == "buffered" else 1,)
        self._put(self._k_out, ("out_" + self.rand.hex12(), run_id, token_id, outcome, at, sink, batch,
                                fork, join, expand, err, ctx, exp, *tail))

    def route(self, run_id: str, state_id: str, edge_ids: Sequence[str], mode: str, reason: Any) -> None:
        """One routing decision: an event per edge sharing a group id and the reason payload.

        `reason` is an object, or its canonical JSON text (stored once per distinct text, for
        the few reasons gates repeat on every row)."""
        if isinstance(reason, str):
            ref = self._reasons.get(reason)
            if ref is None:
                ref = self._reasons[reason] = self.store.put(reason.encode())
        else:
            ref = self.store.put_json(reason)
        new_id = self.rand.hex64 if self.e29 else self.rand.uuid
        group = new_id()
        at = self.clock.tick()
        for ordinal, edge_id in enumerate(edge_ids):
            row = (new_id(), state_id, edge_id, group, ordinal, mode, ref, ref, at)
            self._put(self._k_route, (*row, run_id) if self.e29 else row)

    # -- calls and operations ----------------------------------------------------------------

    def call(self, *, state_id: str | None = None, operation_id: str | None = None, index: int,
             call_type: str, request: Any, response: Any | None, status: str = "success",
             error: Any | None = None, call_id: str | None = None, refs: bool = True,
             latency: float | None = None) -> str:
        """A call with exactly one parent. With refs=False only hashes are kept (no payload file),
        as epoch 29 records its filesystem calls."""
        call_id = call_id or self.rand.uuid()
        keep = self.store.put_json if refs else hash_obj
        req = keep(request)
        resp = None if response is None else keep(response)
        req_ref, resp_ref = (req, resp) if refs else (None, None)
        self.add("calls", call_id=call_id, state_id=state_id, operation_id=operation_id, call_index=index,
                 call_type=call_type, status=status, request_hash=req, request_ref=req_ref,
                 response_hash=resp, response_ref=resp_ref,
                 error_json=None if error is None else compact(error),
                 latency_ms=latency if latency is not None else self.rand.ms(0.3, 40.0),
                 created_at=self.clock.tick())
        return call_id

    def operation(self, run_id: str, node_id: str, op_type: str, *, started: str, input_obj: Any,
                  output_obj: Any | None, op_id: str | None = None, duration: float | None = None,
                  sink_effect_id: str | None = None, refs: bool = True) -> str:
        op_id = op_id or "op_" + self.rand.uuid()
        keep = self.store.put_json if refs else hash_obj
        in_ref = None if input_obj is None else keep(input_obj)
        out_ref = None if output_obj is None else keep(output_obj)
        extra: dict[str, Any] = {"sink_effect_id": sink_effect_id} if self.e29 else {}
        self.add("operations", operation_id=op_id, run_id=run_id, node_id=node_id, operation_type=op_type,
                 started_at=started, completed_at=self.clock.tick(), status="completed",
                 input_data_ref=in_ref if refs else None, input_data_hash=in_ref,
                 output_data_ref=out_ref if refs else None, output_data_hash=out_ref,
                 duration_ms=duration if duration is not None else self.rand.ms(0.2, 12.0), **extra)
        return op_id

    # -- scheduler (epoch 29) ----------------------------------------------------------------

    def work(self, run_id: str, token_id: str, node_id: str | None, worker: str,
             context: str = "{}", *, claim: bool = True) -> Work | None:
        """A token's work item, enqueued and claimed unless claim=False (batch outputs go
        straight to pending_sink). None, and no rows, in epoch 2. `context` is JSON text."""
        if self._k_sched is None:
            return None
        work: Work = (run_id, token_id, self.rand.hex64(), node_id,
                      self.clock.fmt(self.clock.us + _LEASE_US), worker)
        if claim:
            self.sched(work, "enqueue", context)
            self.sched(work, "claim_ready")
        return work

    def sched(self, work: Work | None, event: str, context: str = "{}", *, unleased: bool = False) -> None:
        """One scheduler transition (context is JSON text). `unleased`: the item never held a
        lease (batch outputs)."""
        if work is None or self._k_sched is None:
            return
        run_id, token_id, work_id, node_id, exp, worker = work
        src, dst = _SCHED[event]
        at = self.clock.tick(10, 200)
        # (from/to lease owner, from/to lease expiry, from/to attempt, caller) per transition.
        head = (self.rand.hex64(), run_id, token_id, work_id, node_id, event)
        row: tuple[Any, ...]
        if event == "enqueue":
            row = (*head, src, dst, None, None, None, None, None, 1, at, None, context)
        elif event == "claim_ready":
            row = (*head, src, dst, None, worker, None, exp, 1, 1, at, worker, context)
        elif unleased and event == "mark_pending_sink":
            row = (*head, None, dst, None, worker, None, None, None, 1, at, None, context)
        elif unleased:
            row = (*head, src, dst, worker, None, None, None, 1, 1, at, worker, context)
        elif dst == "terminal":
            row = (*head, src, dst, worker, None, exp, None, 1, 1, at, worker, context)
        else:
            row = (*head, src, dst, worker, worker, exp, None, 1, 1, at, worker, context)
        self._put(self._k_sched, row)
