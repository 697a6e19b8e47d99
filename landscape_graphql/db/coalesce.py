"""Epoch 29's coalesce branch losses: a fork branch that never reached its coalesce, and why.

ELSPETH writes one `coalesce_branch_losses` row per (run, coalesce, row, branch) when a branch
token is lost before the coalesce (e.g. routed to an error sink: reason `error_routed:{...}`),
which is what makes a require-all coalesce fail for that row. Epoch 2 has no such table.

Each loss is read with the token it names and the run of its row, so that the rules ELSPETH
guarantees are checked where the record is made: the lost token exists, belongs to the loss's
run and row and is on the lost branch, and the row belongs to the loss's run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select

from ..errors import AuditIntegrityError
from ._keys import in_keys
from ._rowmap import ts_value
from ._statements import fetch_by_keys
from .session import DbSession


@dataclass(frozen=True, slots=True)
class CoalesceBranchLossRecord:
    loss_id: str
    run_id: str
    coalesce_name: str
    row_id: str
    branch_name: str
    token_id: str
    reason: str
    recorded_by: str
    recorded_at: datetime
    adopted_epoch: int | None


def _loss(t: Any) -> CoalesceBranchLossRecord:
    """A loss from (its 10 columns, the lost token's run, row and branch, the row's run)."""
    record = f"coalesce_branch_losses[{t[0]}]"
    token_run, token_row, token_branch, row_run = t[10:14]
    if token_run is None:
        raise AuditIntegrityError(record, "the lost branch's token must exist in its run", f"token {t[5]}")
    if token_row != t[3]:
        raise AuditIntegrityError(record, "the lost branch's token must be a token of the loss's row",
                                  f"token {t[5]} is of row {token_row}")
    if token_branch != t[4]:
        raise AuditIntegrityError(record, "the lost token must be on the lost branch",
                                  f"token {t[5]} is on branch {token_branch!r}, the loss names {t[4]!r}")
    if row_run != t[1]:
        raise AuditIntegrityError(record, "the loss's row must belong to the loss's run", f"row {t[3]}")
    if not t[6]:
        raise AuditIntegrityError(record, "a branch loss must record its reason")
    return CoalesceBranchLossRecord(
        loss_id=t[0], run_id=t[1], coalesce_name=t[2], row_id=t[3], branch_name=t[4], token_id=t[5],
        reason=t[6], recorded_by=t[7], recorded_at=ts_value(t[8]), adopted_epoch=t[9])


async def coalesce_branch_losses_of_rows(db: DbSession, row_ids: Sequence[str]) -> list[CoalesceBranchLossRecord]:
    """The losses recorded for each row, by (row, time recorded, loss id); none in epoch 2."""
    if db.tables.coalesce_branch_losses is None:
        return []

    def build() -> Select[Any]:
        loss, tokens, rows = db.tables.coalesce_branch_losses, db.tables.tokens, db.tables.rows
        assert loss is not None
        # The token is joined within the loss's run: a token id of another run reads as missing.
        joined = (loss.outerjoin(tokens, and_(tokens.c.token_id == loss.c.token_id, tokens.c.run_id == loss.c.run_id))
                  .outerjoin(rows, rows.c.row_id == loss.c.row_id))
        return (select(loss.c.loss_id, loss.c.run_id, loss.c.coalesce_name, loss.c.row_id, loss.c.branch_name,
                       loss.c.token_id, loss.c.reason, loss.c.recorded_by, loss.c.recorded_at,
                       loss.c.adopted_epoch, tokens.c.run_id, tokens.c.row_id, tokens.c.branch_name,
                       rows.c.run_id)
                .select_from(joined)
                .where(in_keys(db.dialect, loss.c.row_id))
                .order_by(loss.c.row_id, loss.c.recorded_at, loss.c.loss_id))

    rows = await fetch_by_keys(db, "coalesce_branch_losses_of_rows", build, row_ids)
    return [_loss(r) for r in rows]
