"""A query's SQL cost grows with its depth, never with the number of objects it returns.

Statements are counted by a before_cursor_execute listener on the real engine (see conftest),
so nothing here trusts our own bookkeeping.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import Api, truth

NESTED = """
query ($run: String!, $ids: [String!]!) {
  explainTokens(runId: $run, tokenIds: $ids) {
    token {
      tokenId row { rowId rowIndex }
      parents { tokenId outcome { path } }
      nodeStates { stateId stepIndex routingEvents { edgeId edge { label } } node { pluginName } }
      outcome { terminal result path rowOutcome sinkName }
      memberOfBatches { batchId }
    }
    validationErrors { errorId }
    transformErrors { errorId }
  }
}
"""


async def _token_ids(api: Api, limit: int) -> tuple[str, list[str]]:
    tokens = api.landscape.tables.tokens
    async with api.landscape.engine.connect() as conn:
        rows = (await conn.execute(sa.select(tokens.c.run_id, tokens.c.token_id)
                                   .order_by(tokens.c.token_id).limit(limit))).all()
    return rows[0][0], [r[1] for r in rows]


async def test_nested_explain_costs_the_same_for_1_and_1000_tokens(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    run_id, ids = await _token_ids(api, 1000)
    assert len(ids) == 1000
    # A coalesced token reaches every relation of the query (parents, gate routing, outcome),
    # so the single-token query runs every level the 1,000-token one does.
    coalesced = truth(2, "fork-coalesce")["runs"][0]["cases"]["coalesced_multi_parent"]["token_id"]
    one = await api.run(NESTED, {"run": run_id, "ids": [coalesced]})
    many = await api.run(NESTED, {"run": run_id, "ids": [coalesced, *ids[:999]]})
    assert not one.errors and not many.errors, (one.errors, many.errors)
    assert len(many.data["explainTokens"]) == 1000
    assert many.cost["rowsRead"] > one.cost["rowsRead"] * 100
    assert one.statements == many.statements
    # One statement per relation and level: run, tokens, rows, parents, parent outcomes,
    # states, routing events, edges, nodes, outcomes, batches, validation and transform errors.
    assert many.statements == 13, many.statements


async def test_connection_page_of_1_and_500_tokens_costs_the_same(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    query = """query ($run: String!, $n: Int!) { run(runId: $run) { tokens(first: $n) { totalCount
      nodes { tokenId parents { tokenId } children { tokenId } nodeStates { stateId status }
              calls { callId } outcome { path } row { rowId } } } } }"""
    run_id, _ = await _token_ids(api, 1)
    one = await api.run(query, {"run": run_id, "n": 1})
    page = await api.run(query, {"run": run_id, "n": 500})
    assert not one.errors and not page.errors
    assert len(page.data["run"]["tokens"]["nodes"]) == 500
    assert one.statements == page.statements
    assert one.statements == 9  # run, page, count, parents, children, states, calls, outcomes, rows


async def test_cost_is_reported_in_every_response(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "llm-calls")]
    result = await api.run("{ runs { nodes { runId } } }")
    assert result.cost["sqlStatements"] == result.statements == 1
    assert result.cost["rowsRead"] == 1
