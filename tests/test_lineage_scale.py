"""Lineage walks on generated extremes: a 50-deep chain and a 1,000-child fan, both epochs.

The statement count of a walk is one per level (plus one look past the depth bound), so it is
the same for 1 child as for 1,000, and grows by exactly one per level of depth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from landscape_graphql.db.engine import open_landscape
from landscape_graphql.demo import generate
from tests.conftest import Api

GRAPH = """query ($t: String!, $d: Int!) { token(tokenId: $t) {
  %s(maxDepth: $d) { depthReached truncated truncationReason tokens { tokenId } edges { kind } } } }"""


@pytest.fixture(scope="module", params=[2, 29])
async def shapes(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp(f"scale{request.param}")
    deep = generate(folder / "deep.db", epoch=request.param, rows=50, seed=3, shape="deep_chain")
    wide = generate(folder / "wide.db", epoch=request.param, rows=1000, seed=3, shape="wide_fan")
    small = generate(folder / "small.db", epoch=request.param, rows=1, seed=3, shape="wide_fan")
    opened = {name: await open_landscape(str(rep.db_path)) for name, rep in
              (("deep", deep), ("wide", wide), ("small", small))}
    apis = {name: Api(ls) for name, ls in opened.items()}
    yield {"apis": apis, "deep": deep.tokens, "wide": wide.tokens, "small": small.tokens}
    for api in apis.values():
        api.counter.close()
    for landscape in opened.values():
        await landscape.dispose()


async def test_a_50_deep_chain_costs_one_statement_per_level(shapes: dict[str, Any]) -> None:
    api = shapes["apis"]["deep"]
    leaf = shapes["deep"]["deep_chain_leaf"]
    full = await api.run(GRAPH % "ancestors", {"t": leaf, "d": 50})
    assert not full.errors, full.errors
    graph = full.data["token"]["ancestors"]
    assert graph["depthReached"] == 50 and graph["truncated"] is False
    assert len(graph["tokens"]) == 51 and len(graph["edges"]) == 50
    # token + 50 levels + the look past the last level (which finds nothing)
    assert full.statements == 1 + 50 + 1

    cut = await api.run(GRAPH % "ancestors", {"t": leaf, "d": 20})
    graph = cut.data["token"]["ancestors"]
    assert graph["truncated"] is True and graph["truncationReason"] == "DEPTH"
    assert graph["depthReached"] == 20 and len(graph["tokens"]) == 21
    assert cut.statements == 1 + 20 + 1

    root = shapes["deep"]["deep_chain_root"]
    down = await api.run(GRAPH % "descendants", {"t": root, "d": 50})
    assert down.data["token"]["descendants"]["depthReached"] == 50
    assert down.data["token"]["descendants"]["truncated"] is False
    assert down.statements == 1 + 50 + 1


async def test_a_1000_child_fan_costs_the_same_as_a_1_child_fan(shapes: dict[str, Any]) -> None:
    wide = await shapes["apis"]["wide"].run(GRAPH % "descendants", {"t": shapes["wide"]["wide_fan_root"], "d": 3})
    small = await shapes["apis"]["small"].run(GRAPH % "descendants", {"t": shapes["small"]["wide_fan_root"], "d": 3})
    assert not wide.errors and not small.errors
    graph = wide.data["token"]["descendants"]
    assert len(graph["tokens"]) == 1001 and {e["kind"] for e in graph["edges"]} == {"EXPAND"}
    assert graph["truncated"] is False and graph["depthReached"] == 1
    assert len(small.data["token"]["descendants"]["tokens"]) == 2
    assert wide.statements == small.statements == 1 + 1 + 1  # token, the children, their children


async def test_the_token_budget_cuts_a_wide_fan_and_says_so(shapes: dict[str, Any]) -> None:
    from landscape_graphql.limits import QueryLimits
    from landscape_graphql.settings import Settings
    api = Api(shapes["apis"]["wide"].landscape, Settings(limits=QueryLimits(traversal_token_budget=100)))
    try:
        result = await api.run(GRAPH % "descendants", {"t": shapes["wide"]["wide_fan_root"], "d": 3})
        graph = result.data["token"]["descendants"]
        assert graph["truncated"] is True and graph["truncationReason"] == "TOKEN_BUDGET"
        assert len(graph["tokens"]) == 101  # the root and the budget
    finally:
        api.counter.close()
