"""node(id:) / nodes(ids:): refetching any object by its global id."""

from __future__ import annotations

from typing import Any

from ..context import Context
from . import tokens as T

# kind -> (loader attribute, run id of a record); a record outside the caller's runs is hidden.
_LOADERS = {
    "Run": "run_by_id",
    "PipelineEdge": "edge_by_id",
    "Row": "row_by_id",
    "Token": "token_by_id",
    "NodeState": "node_state_by_id",
    "Call": "call_by_id",
    "Operation": "operation_by_id",
    "Batch": "batch_by_id",
}


async def lookup(ctx: Context, kind: str, record_id: str, run_id: str | None = None) -> Any:
    """One record by id: None when unknown or outside the caller's runs; with `run_id`, an
    error when it belongs to another run."""
    record = await getattr(ctx.loaders, _LOADERS[kind]).load(record_id)
    if record is None:
        return None
    actual = await _run_of(ctx, record)
    if actual is None or not T.visible(ctx, actual):
        return None
    T.check_run(kind, record_id, actual, run_id)
    return record


async def node(ctx: Context, kind: str, key: list[str]) -> Any:
    if kind == "PipelineNode" and len(key) == 2:
        record = await ctx.loaders.node_by_key.load((key[0], key[1]))
    elif kind in _LOADERS and len(key) == 1:
        record = await getattr(ctx.loaders, _LOADERS[kind]).load(key[0])
    else:
        return None  # kinds not refetchable on their own (errors, artifacts) or malformed keys
    if record is None:
        return None
    run_id = await _run_of(ctx, record)
    if run_id is not None and not T.visible(ctx, run_id):
        return None
    return record


async def _run_of(ctx: Context, record: Any) -> str | None:
    run_id = getattr(record, "run_id", None)
    if run_id is not None:
        return str(run_id)
    # calls carry no run id: their state or operation does.
    if getattr(record, "state_id", None) is not None:
        state = await ctx.loaders.node_state_by_id.load(record.state_id)
        return None if state is None else str(state.run_id)
    if getattr(record, "operation_id", None) is not None:
        op = await ctx.loaders.operation_by_id.load(record.operation_id)
        return None if op is None else str(op.run_id)
    return None
