"""explain() against ELSPETH's own answers, for every ground-truth case of every SQLite fixture.

Each truth file holds what ELSPETH's explain() and query functions answered for chosen tokens;
our API must give the same parents, children, node states in order, routing events, calls,
outcome, errors and batch, in both schema epochs.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PG_DUMP, SQLITE_FIXTURES, Api, truth

# ELSPETH's PostgreSQL dump exists only on the PostgreSQL backend.
ALL_FIXTURES = sorted({*SQLITE_FIXTURES, PG_DUMP})

EXPLAIN = """
query ($runId: String!, $tokenId: String!) {
  explain(runId: $runId, tokenId: $tokenId) {
    token {
      tokenId rowId branchName forkGroupId joinGroupId expandGroupId
      row { rowId rowIndex sourceRowIndex ingestSequence }
      children { tokenId }
      memberOfBatches {
        batchId aggregationNodeId aggregationStateId status triggerType
        members { token { tokenId } ordinal }
      }
    }
    sourceRow { rowId sourceDataHash }
    parentTokens { tokenId branchName }
    nodeStates { stateId stepIndex attempt status nodeId }
    routingEvents { stateId edgeId mode }
    calls { callId stateId callIndex callType status }
    outcome { terminal result path rowOutcome sinkName batchId storedView }
    validationErrors { errorId destination matchedBy }
    transformErrors { errorId destination }
    schedulerEvents { eventType }
  }
}
"""


def _api(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> Api:
    # (the dump's cases are deselected on SQLite by conftest.pytest_collection_modifyitems)
    return apis[(epoch, name)]


def _cases() -> list[Any]:
    params = []
    for epoch, name in ALL_FIXTURES:
        for run in truth(epoch, name)["runs"]:
            for case_name in run["cases"]:
                params.append(pytest.param(epoch, name, run["run_id"], case_name,
                                           id=f"e{epoch}-{name}-{run['run_id'][:6]}-{case_name}"))
    return params


def _upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


@pytest.mark.parametrize(("epoch", "name", "run_id", "case_name"), _cases())
async def test_explain_matches_elspeth(apis: dict[tuple[int, str], Api], epoch: int, name: str,
                                       run_id: str, case_name: str) -> None:
    run = next(r for r in truth(epoch, name)["runs"] if r["run_id"] == run_id)
    case = run["cases"][case_name]
    data = await _api(apis, epoch, name).ok(EXPLAIN, {"runId": run_id, "tokenId": case["token_id"]})
    got = data["explain"]
    token = got["token"]

    assert token["tokenId"] == case["token_id"]
    assert token["rowId"] == case["row_id"]
    assert token["branchName"] == case["branch_name"]
    assert token["forkGroupId"] == case["fork_group_id"]
    assert token["joinGroupId"] == case["join_group_id"]
    assert token["expandGroupId"] == case["expand_group_id"]
    assert token["row"]["rowIndex"] == case["row_index"]
    if epoch >= 29:
        assert token["row"]["sourceRowIndex"] == case["source_row_index"]
        assert token["row"]["ingestSequence"] == case["ingest_sequence"]
    assert got["sourceRow"]["rowId"] == case["row_id"]

    expected_parents = [p["token_id"] if isinstance(p, dict) else p for p in case["parents"]]
    assert [p["tokenId"] for p in got["parentTokens"]] == expected_parents
    assert sorted(c["tokenId"] for c in token["children"]) == sorted(case["children"])

    assert [
        {"step_index": s["stepIndex"], "node_id": s["nodeId"], "attempt": s["attempt"],
         "status": s["status"].lower(), "state_id": s["stateId"]}
        for s in got["nodeStates"]
    ] == case["node_states"]

    assert [{"state_id": e["stateId"], "edge_id": e["edgeId"], "mode": e["mode"].lower()}
            for e in got["routingEvents"]] == case["routing_events"]

    assert [{"call_id": c["callId"], "state_id": c["stateId"], "call_index": c["callIndex"],
             "call_type": c["callType"].lower(), "status": c["status"].lower()}
            for c in got["calls"]] == case["calls"]

    outcome, expected = got["outcome"], case["outcome"]
    assert outcome["sinkName"] == expected["sink_name"]
    assert outcome["batchId"] == expected["batch_id"]
    if epoch >= 29:
        assert outcome["storedView"] == "RESULT_PATH"
        assert outcome["result"] == _upper(expected["outcome"])
        assert outcome["path"] == _upper(expected["path"])
        assert outcome["terminal"] == expected["completed"]
    else:
        assert outcome["storedView"] == "ROW_OUTCOME"
        assert outcome["rowOutcome"] == _upper(expected["outcome"])
        assert outcome["terminal"] == expected["is_terminal"]

    assert [{"error_id": v["errorId"], "destination": v["destination"]}
            for v in got["validationErrors"]] == case["validation_errors"]
    assert all(v["matchedBy"] == ("ROW_ID" if epoch >= 29 else "ROW_HASH")
               for v in got["validationErrors"])
    expected_te = [t["error_id"] if isinstance(t, dict) else t for t in case["transform_errors"]]
    assert [t["errorId"] for t in got["transformErrors"]] == expected_te

    batches = token["memberOfBatches"]
    if case["batch"] is None:
        assert batches == []
    else:
        (batch,) = batches
        want = case["batch"]
        assert batch["batchId"] == want["batch_id"]
        assert batch["aggregationNodeId"] == want["aggregation_node_id"]
        assert batch["aggregationStateId"] == want["aggregation_state_id"]
        assert batch["status"] == want["status"].upper()
        assert batch["triggerType"] == _upper(want["trigger_type"])
        assert [m["token"]["tokenId"] for m in batch["members"]] == want["members"]

    if "scheduler_event_types" in case:
        assert sorted(e["eventType"] for e in got["schedulerEvents"]) == sorted(case["scheduler_event_types"])


def _row_cases() -> list[Any]:
    params = []
    for epoch, name in ALL_FIXTURES:
        for run in truth(epoch, name)["runs"]:
            if run.get("row_level_explain"):
                params.append(pytest.param(epoch, name, run["run_id"], run["row_level_explain"],
                                           id=f"e{epoch}-{name}-{run['run_id'][:6]}"))
    return params


@pytest.mark.parametrize(("epoch", "name", "run_id", "row_case"), _row_cases())
async def test_explain_by_row_and_sink_resolves_like_elspeth(
        apis: dict[tuple[int, str], Api], epoch: int, name: str, run_id: str,
        row_case: dict[str, Any]) -> None:
    result = await _api(apis, epoch, name).run(
        "query ($r: String!, $row: String!, $s: String) { explain(runId: $r, rowId: $row, sink: $s) { token { tokenId } } }",
        {"r": run_id, "row": row_case["row_id"], "s": row_case["sink"]})
    if "error" in row_case:
        # ELSPETH refused as ambiguous; so must we, naming the same candidate tokens.
        (error,) = result.errors
        assert error["extensions"]["code"] == "AMBIGUOUS_LINEAGE"
        for token_id in error["extensions"]["candidateTokenIds"]:
            assert token_id in row_case["error"]
        assert error["extensions"]["candidateCount"] == int(row_case["error"].split(" has ")[1].split()[0])
        assert result.data == {"explain": None}
    else:
        assert not result.errors, result.errors
        assert result.data["explain"]["token"]["tokenId"] == row_case["resolved_token_id"]


@pytest.mark.parametrize(("epoch", "name"), ALL_FIXTURES)
async def test_operations_and_their_calls_match_elspeth(
        apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    for run in truth(epoch, name)["runs"]:
        data = await _api(apis, epoch, name).ok(
            """query ($r: String!) { run(runId: $r) { status operations(first: 500) { nodes {
                 operationId nodeId operationType status sinkEffectId calls { callId callIndex callType status } } } } }""",
            {"r": run["run_id"]})
        assert data["run"]["status"] == run["status"].upper()
        got = {o["operationId"]: o for o in data["run"]["operations"]["nodes"]}
        for want in run["operations"]:
            op = got[want["operation_id"]]
            assert op["nodeId"] == want["node_id"]
            assert op["operationType"] == want["operation_type"].upper()
            assert op["status"] == want["status"].upper()
            assert op["sinkEffectId"] == want.get("sink_effect_id")
            assert [{"call_id": c["callId"], "call_index": c["callIndex"],
                     "call_type": c["callType"].lower(), "status": c["status"].lower()}
                    for c in op["calls"]] == want["calls"]
        assert len(got) == len(run["operations"])
