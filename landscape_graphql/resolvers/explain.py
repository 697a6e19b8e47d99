"""explain(): ELSPETH's lineage question, answered with ELSPETH's own semantics.

By token, or by row with an optional sink. A row resolves to its single terminal token; several
terminal tokens (or several at the asked sink) is an ambiguity error listing candidates, as in
ELSPETH. Unlike ELSPETH, an id that belongs to another run is an error, not an empty answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Context
from ..db import records as R
from ..errors import AmbiguousLineage, BadArgument
from . import tokens as T


@dataclass(frozen=True, slots=True)
class Explanation:
    run_id: str
    token: R.TokenRecord


async def explain(ctx: Context, run_id: str, token_id: str | None, row_id: str | None,
                  sink: str | None) -> Explanation | None:
    if token_id is None and row_id is None:
        raise BadArgument("tokenId", "explain needs a tokenId or a rowId")
    if token_id is not None and row_id is not None:
        raise BadArgument("rowId", "give either tokenId or rowId, not both")
    if sink is not None and row_id is None:
        raise BadArgument("sink", "only disambiguates a rowId")
    # Visibility first: a run the caller cannot see is not even looked up.
    if not T.visible(ctx, run_id) or await ctx.loaders.run_by_id.load(run_id) is None:
        return None
    if token_id is None:
        assert row_id is not None
        row = await T.row(ctx, row_id, run_id)
        if row is None:
            return None
        token_id = await _token_of_row(ctx, row, sink)
        if token_id is None:
            return None
    tok = await T.token(ctx, token_id, run_id)
    if tok is None:
        return None
    return Explanation(run_id=run_id, token=tok)


async def _token_of_row(ctx: Context, row: R.RowRecord, sink: str | None) -> str | None:
    terminal = await ctx.loaders.terminal_outcomes_by_row_id.load(row.row_id)
    if not terminal:
        return None  # no outcome yet, or only buffered: ELSPETH answers nothing too
    if sink is not None:
        at_sink = [token_id for _, token_id, sink_name in terminal if sink_name == sink]
        if not at_sink:
            return None
        if len(at_sink) > 1:
            raise AmbiguousLineage(
                f"Row {row.row_id} has {len(at_sink)} tokens at sink '{sink}' (fork paths reaching "
                f"the same sink); explain one by tokenId", at_sink)
        return str(at_sink[0])
    if len(terminal) > 1:
        sinks = sorted({s for _, _, s in terminal if s})
        raise AmbiguousLineage(
            f"Row {row.row_id} has {len(terminal)} terminal tokens across sinks {sinks}; give sink "
            "to disambiguate, or explain one by tokenId", [t for _, t, _ in terminal])
    return str(terminal[0][1])


async def explain_many(ctx: Context, run_id: str, token_ids: list[str]) -> list[Explanation | None]:
    if len(token_ids) > ctx.settings.max_explain_batch:
        raise BadArgument("tokenIds", f"{len(token_ids)} ids exceed the maximum of "
                                      f"{ctx.settings.max_explain_batch}")
    if not T.visible(ctx, run_id) or await ctx.loaders.run_by_id.load(run_id) is None:
        return [None] * len(token_ids)
    # Scoped callers' lookups never return a token of a run they cannot see (db/_keys.in_runs),
    # so RUN_MISMATCH below only ever names a visible run.
    found = await ctx.loaders.token_by_id.load_many(token_ids)
    result: list[Explanation | None] = []
    for tok in found:
        if tok is None or not T.visible(ctx, tok.run_id):
            result.append(None)
        else:
            T.check_run("Token", tok.token_id, tok.run_id, run_id)
            result.append(Explanation(run_id=run_id, token=tok))
    return result
