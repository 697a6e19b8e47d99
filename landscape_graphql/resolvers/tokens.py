"""Resolvers of tokens and what hangs off them."""

from __future__ import annotations

from ..context import Context
from ..db import records as R
from ..errors import AuditIntegrityError, RunMismatch


def check_run(kind: str, record_id: str, actual_run: str, asked_run: str | None) -> None:
    if asked_run is not None and asked_run != actual_run:
        raise RunMismatch(kind, record_id, asked_run, actual_run)


def visible(ctx: Context, run_id: str) -> bool:
    return ctx.allowed_runs is None or run_id in ctx.allowed_runs


async def token(ctx: Context, token_id: str, run_id: str | None = None) -> R.TokenRecord | None:
    found = await ctx.loaders.token_by_id.load(token_id)
    if found is None or not visible(ctx, found.run_id):
        return None
    check_run("Token", token_id, found.run_id, run_id)
    return found


async def row(ctx: Context, row_id: str, run_id: str | None = None) -> R.RowRecord | None:
    found = await ctx.loaders.row_by_id.load(row_id)
    if found is None or not visible(ctx, found.run_id):
        return None
    check_run("Row", row_id, found.run_id, run_id)
    return found


def current_outcome(_tok: R.TokenRecord, outcomes: list[R.OutcomeRecord]) -> R.OutcomeRecord | None:
    return R.current_outcome(outcomes)


def batches_of(_tok: R.TokenRecord, found: list[tuple[str, int, R.BatchRecord]]) -> list[R.BatchRecord]:
    return [batch for _, _, batch in found]


async def produced_by_batch(ctx: Context, tok: R.TokenRecord) -> R.BatchRecord | None:
    found = await ctx.loaders.producing_batches_by_token_id.load(tok.token_id)
    if len({b.batch_id for b in found}) > 1:
        raise AuditIntegrityError(f"tokens[{tok.token_id}]",
                                  "an aggregation output is produced by one batch",
                                  f"{len(found)} batches claim it")
    return found[0] if found else None
