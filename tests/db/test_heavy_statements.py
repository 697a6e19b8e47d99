"""Statements that scan a whole run (a DAG's edge counts) never run on the event loop's thread and
take turns on a share of the pool, so cheap requests and the probes are not starved by them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from landscape_graphql.context import Context
from landscape_graphql.db import engine as engine_module
from landscape_graphql.db.engine import Landscape
from landscape_graphql.db.session import DbSession
from landscape_graphql.schema import build_schema
from landscape_graphql.settings import Settings
from tests.conftest import truth

RUN = truth(2, "fork-coalesce")["runs"][0]["run_id"]
DAG = "query ($r: String!) { run(runId: $r) { dag { edges { tokenCount } } } }"


async def test_dag_counts_take_turns_off_the_loop(landscapes: dict[tuple[int, str], Landscape],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    landscape = landscapes[(2, "fork-coalesce")]
    running = peak = inline = most_checked_out = 0
    real_off_loop = DbSession._execute_off_loop
    real_inline = DbSession._try_inline

    async def off_loop(self: DbSession, *args: Any) -> Any:
        nonlocal running, peak, most_checked_out
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.3)  # long enough for every request to be waiting at once
            # The waiting requests hold no connection: only the statements running do.
            most_checked_out = max(most_checked_out, landscape.engine.pool.checkedout())
            return await real_off_loop(self, *args)
        finally:
            running -= 1

    def try_inline(self: DbSession, conn: Any, sqlite_conn: Any, sql: str, *args: Any) -> Any:
        nonlocal inline
        inline += "lag(" in sql.lower()
        return real_inline(self, conn, sqlite_conn, sql, *args)

    monkeypatch.setattr(DbSession, "_execute_off_loop", off_loop)
    monkeypatch.setattr(DbSession, "_try_inline", try_inline)
    schema = build_schema(Settings())

    async def one() -> Any:
        ctx = Context.create(landscape, Settings())
        return await schema.execute(DAG, variable_values={"r": RUN}, context_value=ctx)

    results = await asyncio.gather(*(one() for _ in range(6)))
    assert all(not r.errors for r in results), [r.errors for r in results]
    counts = {tuple(e["tokenCount"] for e in r.data["run"]["dag"]["edges"]) for r in results}
    assert len(counts) == 1 and sum(next(iter(counts))) > 0
    assert peak == engine_module.HEAVY_STATEMENTS
    assert most_checked_out <= engine_module.HEAVY_STATEMENTS
    assert inline == 0
