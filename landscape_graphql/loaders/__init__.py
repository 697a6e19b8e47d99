"""The per-request set of DataLoaders.

`Loaders` is created once per request from its `DbSession` (never at import time, never shared
between requests, so one caller's cached records can never answer another's question); each
loader is built on first use.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cached_property

from ..db.session import DbSession
from ..payloads import ByteBudget, PayloadStore
from . import coalesce, row_errors, runs, states, tokens
from ._base import BatchGate, batch_gate
from .analytics import AnalyticsLoaders
from .payloads import PayloadByRefLoader


class Loaders:
    def __init__(self, db: DbSession, payload_store: PayloadStore | None = None,
                 payload_budget: ByteBudget | None = None) -> None:
        self.db = db
        self._payload_store = payload_store or PayloadStore.unconfigured()
        self._payload_budget = payload_budget or ByteBudget()

    def gated(self, gate: BatchGate) -> AbstractContextManager[None]:
        """While in this context, loads queue their batches with `gate` (see `Loader`)."""
        return batch_gate(gate)

    @cached_property
    def payload_by_ref(self) -> PayloadByRefLoader:
        return PayloadByRefLoader(self._payload_store, self._payload_budget)

    @cached_property
    def analytics(self) -> AnalyticsLoaders:
        return AnalyticsLoaders(self.db)

    # runs
    @cached_property
    def run_by_id(self) -> runs.RunByIdLoader:
        return runs.RunByIdLoader(self.db)

    @cached_property
    def node_by_key(self) -> runs.NodeByKeyLoader:
        return runs.NodeByKeyLoader(self.db)

    @cached_property
    def nodes_by_run_id(self) -> runs.NodesByRunIdLoader:
        return runs.NodesByRunIdLoader(self.db)

    @cached_property
    def edges_by_run_id(self) -> runs.EdgesByRunIdLoader:
        return runs.EdgesByRunIdLoader(self.db)

    @cached_property
    def edge_by_id(self) -> runs.EdgeByIdLoader:
        return runs.EdgeByIdLoader(self.db)

    @cached_property
    def edge_counts_by_run_id(self) -> runs.EdgeCountsByRunIdLoader:
        return runs.EdgeCountsByRunIdLoader(self.db)

    @cached_property
    def operation_by_id(self) -> runs.OperationByIdLoader:
        return runs.OperationByIdLoader(self.db)

    @cached_property
    def operations_by_run_id(self) -> runs.OperationsByRunIdLoader:
        return runs.OperationsByRunIdLoader(self.db)

    @cached_property
    def checkpoints_by_run_id(self) -> runs.CheckpointsByRunIdLoader:
        return runs.CheckpointsByRunIdLoader(self.db)

    @cached_property
    def preflight_results_by_run_id(self) -> runs.PreflightResultsByRunIdLoader:
        return runs.PreflightResultsByRunIdLoader(self.db)

    # rows and tokens
    @cached_property
    def row_by_id(self) -> tokens.RowByIdLoader:
        return tokens.RowByIdLoader(self.db)

    @cached_property
    def tokens_by_row_id(self) -> tokens.TokensByRowIdLoader:
        return tokens.TokensByRowIdLoader(self.db)

    @cached_property
    def token_by_id(self) -> tokens.TokenByIdLoader:
        return tokens.TokenByIdLoader(self.db)

    @cached_property
    def parent_links_by_token_id(self) -> tokens.ParentLinksByTokenIdLoader:
        return tokens.ParentLinksByTokenIdLoader(self.db)

    @cached_property
    def children_by_token_id(self) -> tokens.ChildrenByTokenIdLoader:
        return tokens.ChildrenByTokenIdLoader(self.db)

    @cached_property
    def outcomes_by_token_id(self) -> tokens.OutcomesByTokenIdLoader:
        return tokens.OutcomesByTokenIdLoader(self.db)

    @cached_property
    def terminal_outcomes_by_row_id(self) -> tokens.TerminalOutcomesByRowIdLoader:
        return tokens.TerminalOutcomesByRowIdLoader(self.db)

    @cached_property
    def parent_edges_by_token_id(self) -> tokens.ParentEdgesByTokenIdLoader:
        return tokens.ParentEdgesByTokenIdLoader(self.db)

    @cached_property
    def child_edges_by_token_id(self) -> tokens.ChildEdgesByTokenIdLoader:
        return tokens.ChildEdgesByTokenIdLoader(self.db)

    # batches
    @cached_property
    def batch_by_id(self) -> tokens.BatchByIdLoader:
        return tokens.BatchByIdLoader(self.db)

    @cached_property
    def members_by_batch_id(self) -> tokens.MembersByBatchIdLoader:
        return tokens.MembersByBatchIdLoader(self.db)

    @cached_property
    def batches_by_member_token_id(self) -> tokens.BatchesByMemberTokenIdLoader:
        return tokens.BatchesByMemberTokenIdLoader(self.db)

    @cached_property
    def outputs_by_batch_id(self) -> tokens.OutputsByBatchIdLoader:
        return tokens.OutputsByBatchIdLoader(self.db)

    @cached_property
    def producing_batches_by_token_id(self) -> tokens.ProducingBatchesByTokenIdLoader:
        return tokens.ProducingBatchesByTokenIdLoader(self.db)

    @cached_property
    def coalesce_branch_losses_by_row_id(self) -> coalesce.CoalesceBranchLossesByRowIdLoader:
        return coalesce.CoalesceBranchLossesByRowIdLoader(self.db)

    # node states, calls, routing
    @cached_property
    def node_state_by_id(self) -> states.NodeStateByIdLoader:
        return states.NodeStateByIdLoader(self.db)

    @cached_property
    def node_states_by_token_id(self) -> states.NodeStatesByTokenIdLoader:
        return states.NodeStatesByTokenIdLoader(self.db)

    @cached_property
    def call_by_id(self) -> states.CallByIdLoader:
        return states.CallByIdLoader(self.db)

    @cached_property
    def calls_by_state_id(self) -> states.CallsByStateIdLoader:
        return states.CallsByStateIdLoader(self.db)

    @cached_property
    def calls_by_token_id(self) -> states.CallsByTokenIdLoader:
        return states.CallsByTokenIdLoader(self.db)

    @cached_property
    def calls_by_operation_id(self) -> states.CallsByOperationIdLoader:
        return states.CallsByOperationIdLoader(self.db)

    @cached_property
    def routing_events_by_state_id(self) -> states.RoutingEventsByStateIdLoader:
        return states.RoutingEventsByStateIdLoader(self.db)

    @cached_property
    def routing_events_by_token_id(self) -> states.RoutingEventsByTokenIdLoader:
        return states.RoutingEventsByTokenIdLoader(self.db)

    @cached_property
    def scheduler_events_by_token_id(self) -> states.SchedulerEventsByTokenIdLoader:
        return states.SchedulerEventsByTokenIdLoader(self.db)

    # errors and artifacts
    @cached_property
    def validation_errors_by_row_id(self) -> row_errors.ValidationErrorsByRowIdLoader:
        return row_errors.ValidationErrorsByRowIdLoader(self.db)

    @cached_property
    def transform_errors_by_token_id(self) -> row_errors.TransformErrorsByTokenIdLoader:
        return row_errors.TransformErrorsByTokenIdLoader(self.db)

    @cached_property
    def artifacts_by_token_id(self) -> row_errors.ArtifactsByTokenIdLoader:
        return row_errors.ArtifactsByTokenIdLoader(self.db)
