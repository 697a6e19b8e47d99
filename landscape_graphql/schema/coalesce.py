"""GraphQL type of coalesce evidence: CoalesceBranchLoss (epoch 29)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry import Parent

from ..context import Info
from ..db import records as R
from ..db.coalesce import CoalesceBranchLossRecord

if TYPE_CHECKING:
    from .tokens import Token

TokenT = Annotated["Token", strawberry.lazy("landscape_graphql.schema.tokens")]


@strawberry.type(description=(
    "epoch 29: a fork branch of a row that never reached its coalesce, and why "
    "(coalesce_branch_losses). A require-all coalesce fails for the row when a branch is lost."))
class CoalesceBranchLoss:
    loss_id: str
    run_id: str
    coalesce_name: str = strawberry.field(description="The coalesce's name in the pipeline settings.")
    row_id: str
    branch_name: str = strawberry.field(description="The branch that never arrived.")
    token_id: str = strawberry.field(description="That branch's token.")
    reason: str = strawberry.field(description=(
        "Why, as ELSPETH recorded it: a kind, then ':' and its details, e.g. "
        "error_routed:{'reason': 'blocked_content', ...} when the branch's token was routed to an error sink."))
    recorded_by: str = strawberry.field(description="The worker that recorded the loss.")
    recorded_at: datetime
    adopted_epoch: int | None

    @strawberry.field(description="The reason's kind: its text before the first ':' (e.g. error_routed).")
    @staticmethod
    def reason_kind(parent: Parent[CoalesceBranchLossRecord]) -> str:
        return parent.reason.partition(":")[0]

    @strawberry.field(description="The reason's details: its text after the first ':', as recorded; null if none.")
    @staticmethod
    def reason_detail(parent: Parent[CoalesceBranchLossRecord]) -> str | None:
        _kind, colon, detail = parent.reason.partition(":")
        return detail if colon else None

    @strawberry.field(description="The branch's token that never arrived (checked to be of this row, on this branch).")
    @staticmethod
    async def token(parent: Parent[CoalesceBranchLossRecord], info: Info) -> TokenT | None:
        token: R.TokenRecord | None = await info.context.loaders.token_by_id.load(parent.token_id)
        return cast("Token | None", token)


async def losses_of_row(info: Info, row: R.RowRecord) -> list[CoalesceBranchLoss] | None:
    """`Row.coalesceBranchLosses`: null where the database cannot record losses (epoch 2)."""
    if info.context.db.tables.coalesce_branch_losses is None:
        return None
    losses: list[CoalesceBranchLossRecord] = await info.context.loaders.coalesce_branch_losses_by_row_id.load(row.row_id)
    return cast("list[CoalesceBranchLoss]", losses)
