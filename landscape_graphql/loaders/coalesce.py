"""Loaders of coalesce evidence: epoch 29's branch losses."""

from __future__ import annotations

from ..db.coalesce import CoalesceBranchLossRecord, coalesce_branch_losses_of_rows
from ._base import ManyByKey, fetcher


class CoalesceBranchLossesByRowIdLoader(ManyByKey[str, CoalesceBranchLossRecord]):
    """row -> the fork branches of that row that never reached their coalesce, and why."""

    fetch = fetcher(coalesce_branch_losses_of_rows)
    key_of = staticmethod(lambda loss: loss.row_id)
