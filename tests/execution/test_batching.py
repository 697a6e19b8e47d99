"""The fast executor batches DataLoader loads at least as well as stock execution.

Two lineage walks of one request (a token's descendants at its level 1, its row's lineage at
level 0) reach the child-edges loader on different loop turns; stock execution's tasks sent
them in one statement, the fast path's driver resumed the second walk a turn later, after the
first walk's batch had gone (execution/_gate.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from landscape_graphql.db.engine import Landscape, open_landscape
from landscape_graphql.execution._gate import BatchGate
from landscape_graphql.settings import Settings
from tests.conftest import Api

QUERY = """{
  r0: explain(runId: "56c8298eb8e046f08b99a99d3a4f670f", rowId: "01fe084cad0e49e0b0513571fa58fd5a") {
    a1: artifacts { a2: artifactId } }
  r1: token(tokenId: "0046b6aac1bb42679a15a561f16c9c6b") {
    a3: descendants(maxDepth: 1) {
      a4: depthReached a5: edges { a6: childTokenId }
      a7: terminalTokens { a8: ancestors(maxDepth: 0) { a9: depthReached } } }
    a10: row { a11: lineage(maxDepth: 0) { a12: depthReached } } }
}"""

# The descendants level's statement (db/lineage.py): keyed by the parent token.
CHILD_LEVEL = 'SELECT token_parents.parent_token_id AS "key"'


@pytest.fixture
async def landscape(fixture_copies: Path) -> AsyncIterator[Landscape]:
    opened = await open_landscape(str(fixture_copies / "epoch29" / "fork-coalesce.db"))
    yield opened
    await opened.dispose()


async def test_walks_of_one_request_share_a_level_statement(landscape: Landscape) -> None:
    fast_api = Api(landscape, Settings(fast_execution=True))
    stock_api = Api(landscape, Settings(fast_execution=False))
    try:
        fast = await fast_api.run(QUERY)
        fast_levels = sum(s.startswith(CHILD_LEVEL) for s in fast_api.counter.statements)
        stock = await stock_api.run(QUERY)
        stock_levels = sum(s.startswith(CHILD_LEVEL) for s in stock_api.counter.statements)
    finally:
        fast_api.counter.close()
        stock_api.counter.close()
    assert fast.data == stock.data and fast.errors == stock.errors
    assert fast.data["r1"]["a3"]["a4"] == 1  # the descendants walk did reach level 1
    # Level 0 of the descendants walk, then its level 1 with the row's lineage level 0.
    assert fast_levels == stock_levels == 2
    assert fast.statements <= stock.statements, (fast.statements, stock.statements)


async def test_the_gate_sends_no_sooner_than_aiodataloader_and_not_while_a_driver_is_busy() -> None:
    gate = BatchGate()
    sent: list[int] = []
    busy = [True]
    gate.busy.append(lambda: busy[0])
    gate.schedule(lambda: sent.append(1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sent == []  # held while the driver has a finished future to resume from
    busy[0] = False
    for _ in range(2):
        await asyncio.sleep(0)
    assert sent == [1]

    gate.busy.clear()
    gate.schedule(lambda: sent.append(2))
    await asyncio.sleep(0)
    assert sent == [1]  # aiodataloader's own delay: two loop turns before the dispatch
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sent == [1, 2]
