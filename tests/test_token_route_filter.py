"""Run.tokens filtered by where tokens went (a pipeline node, a pipeline edge): what the viewer
lists when someone clicks a node or an edge of a run's DAG."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.conftest import SQLITE_FIXTURES, Api

DAG = """query ($r: String!) { run(runId: $r) {
  dag { nodes { nodeId } edges { tokenCount edge { edgeId fromNodeId toNodeId } } } } }"""
STATES = """query ($r: String!, $after: String) { run(runId: $r) {
  nodeStates(first: 500, after: $after) { pageInfo { hasNextPage endCursor }
    nodes { tokenId nodeId routingEvents { edgeId } } } } }"""
BY_NODE = """query ($r: String!, $n: String!) { run(runId: $r) {
  tokens(first: 500, filter: {nodeId: $n}) { totalCount nodes { tokenId } } } }"""
BY_EDGE = """query ($r: String!, $e: String!) { run(runId: $r) {
  tokens(first: 500, filter: {edgeId: $e}) { totalCount nodes { tokenId } } } }"""


@pytest.mark.parametrize(("epoch", "name"), sorted(SQLITE_FIXTURES), ids=lambda v: str(v))
async def test_tokens_by_node_and_by_edge(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    api = apis[(epoch, name)]
    runs = await api.ok("{ runs(first: 50) { nodes { runId } } }")
    checked_edges = 0
    for run_id in [r["runId"] for r in runs["runs"]["nodes"]]:
        run = (await api.ok(DAG, {"r": run_id}))["run"]
        at_node: dict[str, set[str]] = defaultdict(set)
        routed: dict[str, set[str]] = defaultdict(set)
        after = None
        for _ in range(100):
            page = (await api.ok(STATES, {"r": run_id, "after": after}))["run"]["nodeStates"]
            for s in page["nodes"]:
                at_node[s["nodeId"]].add(s["tokenId"])
                for event in s["routingEvents"]:
                    routed[event["edgeId"]].add(s["tokenId"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        for node in run["dag"]["nodes"]:
            got = (await api.ok(BY_NODE, {"r": run_id, "n": node["nodeId"]}))["run"]["tokens"]
            assert got["totalCount"] == len(at_node[node["nodeId"]])
            assert {t["tokenId"] for t in got["nodes"]} <= at_node[node["nodeId"]]
        for dag_edge in run["dag"]["edges"]:
            edge = dag_edge["edge"]
            got = (await api.ok(BY_EDGE, {"r": run_id, "e": edge["edgeId"]}))["run"]["tokens"]
            ids = {t["tokenId"] for t in got["nodes"]}
            expected = (routed[edge["edgeId"]] if edge["edgeId"] in routed
                        else at_node[edge["fromNodeId"]] & at_node[edge["toNodeId"]])
            assert got["totalCount"] == len(expected), edge
            assert ids <= expected and len(ids) == min(500, len(expected))
            checked_edges += bool(ids)
    assert checked_edges > 0


async def test_route_filter_combines_with_outcome_filters(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(29, "fork-coalesce")]
    run_id = (await api.ok("{ runs(first: 1) { nodes { runId } } }"))["runs"]["nodes"][0]["runId"]
    sinks = (await api.ok("""query ($r: String!) { run(runId: $r) { tokens(first: 500) {
        nodes { tokenId outcome { sinkName terminal } nodeStates { nodeId } } } } }""", {"r": run_id}))
    tokens: list[dict[str, Any]] = sinks["run"]["tokens"]["nodes"]
    with_sink = [t for t in tokens if t["outcome"] and t["outcome"]["sinkName"] and t["nodeStates"]]
    assert with_sink
    sample = with_sink[0]
    sink, node = sample["outcome"]["sinkName"], sample["nodeStates"][-1]["nodeId"]
    got = await api.ok("""query ($r: String!, $n: String!, $s: String!) { run(runId: $r) {
        tokens(first: 500, filter: {nodeId: $n, sinkName: $s}) { nodes { tokenId } } } }""",
                       {"r": run_id, "n": node, "s": sink})
    expected = {t["tokenId"] for t in with_sink
                if t["outcome"]["sinkName"] == sink and node in {s["nodeId"] for s in t["nodeStates"]}}
    assert {t["tokenId"] for t in got["run"]["tokens"]["nodes"]} == expected


RETRIES = """query ($r: String!, $retries: Boolean, $after: String) { run(runId: $r) {
  nodeStates(first: 500, after: $after, filter: {retries: $retries}) {
    totalCount pageInfo { hasNextPage endCursor } nodes { stateId tokenId nodeId attempt } } } }"""


async def _all_states(api: Api, run_id: str, retries: bool | None) -> tuple[int, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    after = None
    for _ in range(100):
        page = (await api.ok(RETRIES, {"r": run_id, "retries": retries, "after": after}))["run"]["nodeStates"]
        out += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return page["totalCount"], out
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("too many pages")


@pytest.mark.parametrize("epoch", [2, 29])
async def test_node_states_filtered_to_retries(apis: dict[tuple[int, str], Api], epoch: int) -> None:
    api = apis[(epoch, "llm-calls")]
    run_id = (await api.ok("{ runs(first: 1) { nodes { runId } } }"))["runs"]["nodes"][0]["runId"]
    total, states = await _all_states(api, run_id, None)
    first_attempt: dict[tuple[str, str], int] = {}
    for s in states:
        key = (s["tokenId"], s["nodeId"])
        first_attempt[key] = min(first_attempt.get(key, s["attempt"]), s["attempt"])
    expected = {s["stateId"] for s in states if s["attempt"] > first_attempt[(s["tokenId"], s["nodeId"])]}
    assert expected, "the llm-calls fixture has retried states"
    n_retries, retries = await _all_states(api, run_id, True)
    n_firsts, firsts = await _all_states(api, run_id, False)
    assert {s["stateId"] for s in retries} == expected and n_retries == len(expected)
    assert n_retries + n_firsts == total and not expected & {s["stateId"] for s in firsts}
