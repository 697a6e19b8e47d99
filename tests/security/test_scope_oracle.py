"""For a caller scoped to some runs, an id of another run must be indistinguishable from an id
that does not exist: the same data, errors, codes and cost figures (rowsRead, sqlStatements),
over every root field that takes an id, on both backends.

The ids of invisible records are read from the database itself, so the comparison covers
records that really exist (a random id of the same shape is the control).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.auth import build_authenticator, hash_token
from landscape_graphql.db.engine import Landscape
from landscape_graphql.schema.relay import to_global_id

SCOPED = "scoped-oracle-token"
TIMINGS = ("milliseconds", "dbMilliseconds")


async def _first(landscape: Landscape, sql: str, **params: Any) -> Any:
    async with landscape.engine.connect() as conn:
        row = (await conn.execute(text(sql), params)).first()
    assert row is not None, sql
    return row


def _like(value: str) -> str:
    """A random id of the same length (and prefix) as `value`: the control."""
    prefix = value[:-16] if len(value) > 16 else ""
    return prefix + secrets.token_hex(16)[: len(value) - len(prefix)]


async def _client(landscape: Landscape, tmp_path: Path, runs: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    tokens = tmp_path / "tokens.json"

    tokens.write_text(json.dumps({"tokens": [{"name": "auditor", "sha256": hash_token(SCOPED), "runs": runs}]}))
    app = create_app(AppConfig(database="(given)", authenticator=build_authenticator(tokens_file=tokens)),
                     landscape=landscape)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {SCOPED}"}) as client:
        yield client


async def _answer(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    body["status"] = response.status_code
    for key in TIMINGS:
        body.get("extensions", {}).get("landscape", {}).pop(key, None)
    return body


# (root field, query, the variable holding the id, how to find a real id of another run)
_CASES: list[tuple[str, str]] = [
    ("run", "query ($id: String!) { x: run(runId: $id) { runId status } }"),
    ("row", "query ($id: String!) { x: row(rowId: $id) { rowId runId } }"),
    ("rowInMine", "query ($id: String!, $mine: String!) { x: row(rowId: $id, runId: $mine) { rowId } }"),
    ("token", "query ($id: String!) { x: token(tokenId: $id) { tokenId runId } }"),
    ("tokenInMine", "query ($id: String!, $mine: String!) { x: token(tokenId: $id, runId: $mine) { tokenId } }"),
    ("nodeState", "query ($id: String!) { x: nodeState(stateId: $id) { stateId } }"),
    ("nodeStateInMine", "query ($id: String!, $mine: String!) { x: nodeState(stateId: $id, runId: $mine) { stateId } }"),
    ("operation", "query ($id: String!) { x: operation(operationId: $id) { operationId } }"),
    ("operationInMine", "query ($id: String!, $mine: String!) { x: operation(operationId: $id, runId: $mine) { operationId } }"),
    ("call", "query ($id: String!) { x: call(callId: $id) { callId } }"),
    ("callInMine", "query ($id: String!, $mine: String!) { x: call(callId: $id, runId: $mine) { callId } }"),
    ("batch", "query ($id: String!) { x: batch(batchId: $id) { batchId } }"),
    ("batchInMine", "query ($id: String!, $mine: String!) { x: batch(batchId: $id, runId: $mine) { batchId } }"),
    ("explainRun", "query ($id: String!, $tok: String!) { x: explain(runId: $id, tokenId: $tok) { token { tokenId } } }"),
    ("explainToken", "query ($id: String!, $mine: String!) { x: explain(runId: $mine, tokenId: $id) { token { tokenId } } }"),
    ("explainRow", "query ($id: String!, $mine: String!) { x: explain(runId: $mine, rowId: $id) { token { tokenId } } }"),
    ("explainTokens", "query ($id: String!, $mine: String!) { x: explainTokens(runId: $mine, tokenIds: [$id]) { token { tokenId } } }"),
    ("explainTokensRun", "query ($id: String!, $tok: String!) { x: explainTokens(runId: $id, tokenIds: [$tok]) { token { tokenId } } }"),
    ("lineagePathTo", "query ($id: String!, $mineTok: String!) { x: lineagePath(fromTokenId: $mineTok, toTokenId: $id) { tokens { tokenId } } }"),
    ("lineagePathFrom", "query ($id: String!, $mineTok: String!) { x: lineagePath(fromTokenId: $id, toTokenId: $mineTok) { tokens { tokenId } } }"),
    ("nodeToken", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeRun", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeRow", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeState2", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeCall", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeOperation", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeBatch", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodeEdge", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodePipelineNode", "query ($gid: ID!) { x: node(id: $gid) { id } }"),
    ("nodes", "query ($gid: ID!) { x: nodes(ids: [$gid]) { id } }"),
]

# root field -> (global id kind, the id it is made of)
_GLOBAL = {"nodeToken": "Token", "nodeRun": "Run", "nodeRow": "Row", "nodeState2": "NodeState",
           "nodeCall": "Call", "nodeOperation": "Operation", "nodeBatch": "Batch", "nodeEdge": "PipelineEdge",
           "nodePipelineNode": "PipelineNode", "nodes": "Token"}
_ID_OF = {"run": "run", "row": "row", "rowInMine": "row", "token": "token", "tokenInMine": "token",
          "nodeState": "state", "nodeStateInMine": "state", "operation": "operation",
          "operationInMine": "operation", "call": "call", "callInMine": "call", "batch": "batch",
          "batchInMine": "batch", "explainRun": "run", "explainToken": "token", "explainRow": "row",
          "explainTokens": "token", "explainTokensRun": "run", "lineagePathTo": "token",
          "lineagePathFrom": "token", "nodeToken": "token", "nodeRun": "run", "nodeRow": "row",
          "nodeState2": "state", "nodeCall": "call", "nodeOperation": "operation", "nodeBatch": "batch",
          "nodeEdge": "edge", "nodePipelineNode": "node", "nodes": "token"}


async def _hidden_ids(landscape: Landscape, mine: str) -> dict[str, str]:
    """A real id of each kind, in a run other than `mine`."""
    q = {
        "run": "SELECT run_id FROM runs WHERE run_id <> :mine",
        "row": "SELECT row_id FROM rows WHERE run_id <> :mine",
        "token": "SELECT token_id FROM tokens WHERE run_id <> :mine",
        "state": "SELECT state_id FROM node_states WHERE run_id <> :mine",
        "operation": "SELECT operation_id FROM operations WHERE run_id <> :mine",
        "call": "SELECT c.call_id FROM calls c JOIN operations o ON o.operation_id = c.operation_id "
                "WHERE o.run_id <> :mine",
        "batch": "SELECT batch_id FROM batches WHERE run_id <> :mine",
        "edge": "SELECT edge_id FROM edges WHERE run_id <> :mine",
    }
    found = {kind: str((await _first(landscape, sql + " ORDER BY 1", mine=mine))[0]) for kind, sql in q.items()}
    node = await _first(landscape, "SELECT run_id, node_id FROM nodes WHERE run_id <> :mine ORDER BY 1, 2", mine=mine)
    found["node"] = f"{node[0]}\x00{node[1]}"
    return found


def _variables(field: str, real: str, mine: str, mine_token: str, hidden_token: str) -> dict[str, Any]:
    if field in _GLOBAL:
        key = real.split("\x00")
        return {"gid": to_global_id(_GLOBAL[field], *key)}
    variables: dict[str, Any] = {"id": real}
    if "$mine:" in dict(_CASES)[field]:
        variables["mine"] = mine
    if "$tok:" in dict(_CASES)[field]:
        variables["tok"] = hidden_token
    if "$mineTok:" in dict(_CASES)[field]:
        variables["mineTok"] = mine_token
    return variables


def _control(real: str) -> str:
    if "\x00" in real:
        run, node = real.split("\x00")
        return f"{_like(run)}\x00{_like(node)}"
    return _like(real)


@pytest.mark.parametrize("field", [name for name, _ in _CASES])
async def test_an_invisible_id_answers_exactly_like_a_random_one(
        field: str, landscapes: dict[tuple[int, str], Landscape], tmp_path: Path) -> None:
    landscape = landscapes[(2, "examples-multirun")]
    mine_row = await _first(landscape, "SELECT t.run_id, t.token_id FROM tokens t ORDER BY 1, 2")
    mine, mine_token = str(mine_row[0]), str(mine_row[1])
    hidden = await _hidden_ids(landscape, mine)
    real = hidden[_ID_OF[field]]
    query = dict(_CASES)[field]
    async for client in _client(landscape, tmp_path, [mine]):
        seen = await _answer(client, query, _variables(field, real, mine, mine_token, hidden["token"]))
        control = await _answer(client, query, _variables(field, _control(real), mine, mine_token, hidden["token"]))
    assert seen == control, f"{field}: an id of another run answers differently from a random id"
    assert seen["data"]["x"] in (None, [None]), seen
