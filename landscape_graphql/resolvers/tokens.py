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
    return found  # type: ignore[no-any-return]


async def row(ctx: Context, row_id: str, run_id: str | None = None) -> R.RowRecord | None:
    found = await ctx.loaders.row_by_id.load(row_id)
    if found is None or not visible(ctx, found.run_id):
        return None
    check_run("Row", row_id, found.run_id, run_id)
    return found  # type: ignore[no-any-return]


async def parents(ctx: Context, tok: R.TokenRecord) -> list[R.TokenRecord]:
    links = await ctx.loaders.parent_links_by_token_id.load(tok.token_id)
    return R.check_parent_links(tok, links)


async def parent_links(ctx: Context, tok: R.TokenRecord) -> list[R.ParentLink]:
    links: list[R.ParentLink] = await ctx.loaders.parent_links_by_token_id.load(tok.token_id)
    R.check_parent_links(tok, links)
    return links


async def children(ctx: Context, tok: R.TokenRecord) -> list[R.TokenRecord]:
    return R.check_children(tok, await ctx.loaders.children_by_token_id.load(tok.token_id))


async def outcomes(ctx: Context, tok: R.TokenRecord) -> list[R.OutcomeRecord]:
    return await ctx.loaders.outcomes_by_token_id.load(tok.token_id)  # type: ignore[no-any-return]


async def outcome(ctx: Context, tok: R.TokenRecord) -> R.OutcomeRecord | None:
    return R.current_outcome(await outcomes(ctx, tok))


async def node_states(ctx: Context, tok: R.TokenRecord) -> list[R.NodeStateRecord]:
    return await ctx.loaders.node_states_by_token_id.load(tok.token_id)  # type: ignore[no-any-return]


async def calls(ctx: Context, tok: R.TokenRecord) -> list[R.CallRecord]:
    return await ctx.loaders.calls_by_token_id.load(tok.token_id)  # type: ignore[no-any-return]


async def routing_events(ctx: Context, tok: R.TokenRecord) -> list[R.RoutingEventRecord]:
    return await ctx.loaders.routing_events_by_token_id.load(tok.token_id)  # type: ignore[no-any-return]


async def transform_errors(ctx: Context, tok: R.TokenRecord) -> list[R.TransformErrorRecord]:
    return await ctx.loaders.transform_errors_by_token_id.load(tok.token_id)  # type: ignore[no-any-return]


async def member_of_batches(ctx: Context, tok: R.TokenRecord) -> list[R.BatchRecord]:
    found = await ctx.loaders.batches_by_member_token_id.load(tok.token_id)
    return [batch for _, _, batch in found]


async def produced_by_batch(ctx: Context, tok: R.TokenRecord) -> R.BatchRecord | None:
    found: list[R.BatchRecord] = await ctx.loaders.producing_batches_by_token_id.load(tok.token_id)
    if len({b.batch_id for b in found}) > 1:
        raise AuditIntegrityError(f"tokens[{tok.token_id}]",
                                  "an aggregation output is produced by one batch",
                                  f"{len(found)} batches claim it")
    return found[0] if found else None
