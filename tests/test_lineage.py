"""Recursive lineage on the real fixtures: batch-aware, bounded, never silently partial."""

from __future__ import annotations

from typing import Any

import pytest

from landscape_graphql.limits import QueryLimits
from landscape_graphql.settings import Settings
from tests.conftest import Api, truth

WALK = """
query ($t: String!, $d: Int!) {
  token(tokenId: $t) {
    ancestors(maxDepth: $d) { depthReached truncated truncationReason rootTokenIds
      tokens { tokenId } edges { parentTokenId childTokenId kind ordinal } }
    descendants(maxDepth: $d) { depthReached truncated truncationReason
      tokens { tokenId } edges { parentTokenId childTokenId kind ordinal }
      terminalTokens { tokenId outcome { sinkName } } }
  }
}
"""


def _case(epoch: int, name: str, case: str) -> dict[str, Any]:
    return truth(epoch, name)["runs"][0]["cases"][case]  # type: ignore[no-any-return]


@pytest.mark.parametrize("epoch", [2, 29])
async def test_aggregation_output_ancestors_include_every_batch_member(
        apis: dict[tuple[int, str], Api], epoch: int) -> None:
    output = _case(epoch, "expand-aggregate", "batch_output_child")
    member_case = "batch_trigger_parent" if epoch == 2 else "batch_parent_member"
    members = _case(epoch, "expand-aggregate", member_case)["batch"]["members"]
    data = await apis[(epoch, "expand-aggregate")].ok(WALK, {"t": output["token_id"], "d": 1})
    graph = data["token"]["ancestors"]
    batch_edges = [e for e in graph["edges"] if e["kind"] == "BATCH"]
    assert sorted(e["parentTokenId"] for e in batch_edges) == sorted(members)
    assert {e["childTokenId"] for e in batch_edges} == {output["token_id"]}
    # ordinals are the members' positions in the batch
    by_parent = {e["parentTokenId"]: e["ordinal"] for e in batch_edges}
    assert [by_parent[m] for m in members] == list(range(len(members)))
    # token_parents names only one of them: the walk found the others through batch_members
    assert len(output["parents"]) == 1 and len(members) > 1


@pytest.mark.parametrize("epoch", [2, 29])
async def test_a_non_parent_member_leads_to_the_batch_outputs(apis: dict[tuple[int, str], Api], epoch: int) -> None:
    consumed = _case(epoch, "expand-aggregate", "consumed_in_batch" if epoch == 2 else "batch_consumed_nonparent")
    output = _case(epoch, "expand-aggregate", "batch_output_child")
    assert consumed["children"] == []  # token_parents knows nothing of this member's outputs
    data = await apis[(epoch, "expand-aggregate")].ok(WALK, {"t": consumed["token_id"], "d": 3})
    graph = data["token"]["descendants"]
    assert output["token_id"] in {t["tokenId"] for t in graph["tokens"]}
    assert all(e["kind"] == "BATCH" for e in graph["edges"] if e["parentTokenId"] == consumed["token_id"])
    assert output["token_id"] in {t["tokenId"] for t in graph["terminalTokens"]}


@pytest.mark.parametrize("epoch", [2, 29])
async def test_fork_and_coalesce_edges_and_depth_truncation(apis: dict[tuple[int, str], Api], epoch: int) -> None:
    forked = _case(epoch, "fork-coalesce", "forked_parent")
    api = apis[(epoch, "fork-coalesce")]
    shallow = (await api.ok(WALK, {"t": forked["token_id"], "d": 1}))["token"]["descendants"]
    assert shallow["truncated"] is True and shallow["truncationReason"] == "DEPTH"
    assert shallow["depthReached"] == 1
    assert sorted(e["childTokenId"] for e in shallow["edges"]) == sorted(forked["children"])
    assert {e["kind"] for e in shallow["edges"]} == {"FORK"}

    full = (await api.ok(WALK, {"t": forked["token_id"], "d": 2}))["token"]["descendants"]
    assert full["truncated"] is False and full["truncationReason"] is None
    assert full["depthReached"] == 2
    kinds = sorted(e["kind"] for e in full["edges"])
    assert kinds.count("FORK") == 3 and kinds.count("COALESCE") >= 2
    terminal = full["terminalTokens"]
    assert terminal, "a coalesced row ends at a sink"


async def test_zero_depth_is_truncated_when_there_is_lineage(apis: dict[tuple[int, str], Api]) -> None:
    coalesced = _case(2, "fork-coalesce", "coalesced_multi_parent")
    data = await apis[(2, "fork-coalesce")].ok(WALK, {"t": coalesced["token_id"], "d": 0})
    up = data["token"]["ancestors"]
    assert up["tokens"] == [{"tokenId": coalesced["token_id"]}]
    assert up["truncated"] is True and up["depthReached"] == 0
    assert up["rootTokenIds"] == [coalesced["token_id"]]


async def test_token_budget_cuts_and_says_so(landscapes: dict[tuple[int, str], Any]) -> None:
    api = Api(landscapes[(2, "fork-coalesce")], Settings(limits=QueryLimits(traversal_token_budget=2)))
    try:
        forked = _case(2, "fork-coalesce", "forked_parent")
        data = await api.ok(WALK, {"t": forked["token_id"], "d": 5})
        down = data["token"]["descendants"]
        assert down["truncated"] is True and down["truncationReason"] == "TOKEN_BUDGET"
        assert len(down["tokens"]) <= 3  # the root plus at most the budget
        edges_ok = {t["tokenId"] for t in down["tokens"]}
        assert all(e["parentTokenId"] in edges_ok and e["childTokenId"] in edges_ok for e in down["edges"])
    finally:
        api.counter.close()


async def test_depth_above_the_maximum_is_refused(apis: dict[tuple[int, str], Api]) -> None:
    forked = _case(2, "fork-coalesce", "forked_parent")
    result = await apis[(2, "fork-coalesce")].run(WALK, {"t": forked["token_id"], "d": 101})
    assert {e["extensions"]["code"] for e in result.errors} == {"BAD_ARGUMENT"}
    assert "maxDepth" in result.errors[0]["message"]


@pytest.mark.parametrize("epoch", [2, 29])
async def test_lineage_path_from_fork_parent_to_coalesced_token(apis: dict[tuple[int, str], Api], epoch: int) -> None:
    forked = _case(epoch, "fork-coalesce", "forked_parent")
    coalesced = _case(epoch, "fork-coalesce", "coalesced_multi_parent")
    api = apis[(epoch, "fork-coalesce")]
    query = """query ($a: String!, $b: String!) { lineagePath(fromTokenId: $a, toTokenId: $b) {
      tokens { tokenId } edges { parentTokenId childTokenId kind } } }"""
    if forked["row_id"] == coalesced["row_id"]:
        data = await api.ok(query, {"a": forked["token_id"], "b": coalesced["token_id"]})
        path = data["lineagePath"]
        assert [e["kind"] for e in path["edges"]] == ["FORK", "COALESCE"]
        assert path["tokens"][0]["tokenId"] == forked["token_id"]
        assert path["tokens"][-1]["tokenId"] == coalesced["token_id"]
    # Two source tokens of different rows are never linked.
    other = _case(epoch, "fork-coalesce", "validation_error")
    data = await api.ok(query, {"a": other["token_id"], "b": coalesced["token_id"]})
    assert data["lineagePath"] is None


async def test_lineage_path_through_a_coalesce(apis: dict[tuple[int, str], Api]) -> None:
    coalesced = _case(2, "fork-coalesce", "coalesced_multi_parent")
    api = apis[(2, "fork-coalesce")]
    up = (await api.ok(WALK, {"t": coalesced["token_id"], "d": 5}))["token"]["ancestors"]
    source = [t["tokenId"] for t in up["tokens"]
              if not any(e["childTokenId"] == t["tokenId"] for e in up["edges"])]
    (root,) = source
    data = await api.ok("""query ($a: String!, $b: String!) { lineagePath(fromTokenId: $a, toTokenId: $b) {
      edges { kind } tokens { tokenId } } }""", {"a": root, "b": coalesced["token_id"]})
    assert [e["kind"] for e in data["lineagePath"]["edges"]] == ["FORK", "COALESCE"]


@pytest.mark.parametrize("epoch", [2, 29])
async def test_row_lineage_is_the_whole_fan_out(apis: dict[tuple[int, str], Api], epoch: int) -> None:
    forked = _case(epoch, "fork-coalesce", "forked_parent")
    data = await apis[(epoch, "fork-coalesce")].ok(
        """query ($r: String!) { row(rowId: $r) { tokens { tokenId }
             lineage { rootTokenIds tokens { tokenId } edges { kind } truncated
                       terminalTokens { tokenId outcome { sinkName terminal } } } } }""",
        {"r": forked["row_id"]})
    row = data["row"]
    assert row["lineage"]["rootTokenIds"] == [forked["token_id"]]
    assert sorted(t["tokenId"] for t in row["lineage"]["tokens"]) == sorted(t["tokenId"] for t in row["tokens"])
    assert row["lineage"]["truncated"] is False
    assert all(t["outcome"]["terminal"] for t in row["lineage"]["terminalTokens"])


async def test_walk_cost_grows_with_depth_not_breadth(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    run_id = truth(2, "fork-coalesce")["runs"][0]["run_id"]
    query = """query ($r: String!, $n: Int!) { run(runId: $r) { tokens(first: $n) { nodes {
      descendants(maxDepth: 3) { tokens { tokenId } truncated } } } } }"""
    one = await api.run(query, {"r": run_id, "n": 1})
    many = await api.run(query, {"r": run_id, "n": 500})
    assert not one.errors and not many.errors
    # run + page + at most one statement per level (3) plus the look beyond the bound
    assert many.statements <= 2 + 4
    assert one.statements <= many.statements
