"""Payloads through the API: source rows, LLM/HTTP calls, tampering, purging, hostile refs."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from landscape_graphql.db.engine import open_landscape
from tests.conftest import FIXTURES, SQLITE_FIXTURES, Api, truth


def _source_cases() -> list[Any]:
    out = []
    for epoch, name in sorted(SQLITE_FIXTURES):
        for run in truth(epoch, name)["runs"]:
            for case_name, case in run["cases"].items():
                if "source_data" in case:
                    out.append(pytest.param(epoch, name, case, id=f"e{epoch}-{name}-{case_name}"))
    return out


@pytest.mark.parametrize(("epoch", "name", "case"), _source_cases())
async def test_row_source_data_equals_elspeths(apis: dict[tuple[int, str], Api], epoch: int, name: str,
                                               case: dict[str, Any]) -> None:
    data = await apis[(epoch, name)].ok(
        "query ($r: String!) { row(rowId: $r) { sourceData { state hash sizeBytes truncated json } } }",
        {"r": case["row_id"]})
    payload = data["row"]["sourceData"]
    assert payload["state"] == ("AVAILABLE" if case["source_payload_available"] else "PURGED")
    assert payload["json"] == case["source_data"]
    assert payload["truncated"] is False and payload["sizeBytes"] > 0


@pytest.mark.parametrize("epoch", [2, 29])
async def test_every_llm_and_http_call_payload_is_available(apis: dict[tuple[int, str], Api], epoch: int) -> None:
    run_id = truth(epoch, "llm-calls")["runs"][0]["run_id"]
    data = await apis[(epoch, "llm-calls")].ok(
        """query ($r: String!) { run(runId: $r) { calls(first: 500, filter: {callTypes: [HTTP, LLM]}) {
             totalCount nodes { callId callType status responseRef responseHash
               request { state json } response { state json } } } } }""",
        {"r": run_id})
    calls = data["run"]["calls"]["nodes"]
    assert len(calls) == data["run"]["calls"]["totalCount"] >= 40
    for call in calls:
        assert call["request"]["state"] == "AVAILABLE", call
        assert isinstance(call["request"]["json"], dict)
        if call["responseRef"] is not None:
            assert call["response"]["state"] == "AVAILABLE", call
        else:
            # a failed call that got no answer stores none; it must say which case it is
            assert call["status"] == "ERROR"
            assert call["response"]["state"] == ("HASH_ONLY" if call["responseHash"] else "NEVER_STORED")


async def test_llm_prompt_and_answer_of_a_token(apis: dict[tuple[int, str], Api]) -> None:
    case = truth(29, "llm-calls")["runs"][0]["cases"]["with_calls"]
    data = await apis[(29, "llm-calls")].ok(
        """query ($t: String!) { token(tokenId: $t) { calls { callType request { text } response { text } } } }""",
        {"t": case["token_id"]})
    llm = [c for c in data["token"]["calls"] if c["callType"] == "LLM"]
    assert len(llm) == 1
    assert case["source_data"]["text"] in llm[0]["request"]["text"]
    assert llm[0]["response"]["text"]


@pytest.fixture
async def own_store(tmp_path: Path) -> AsyncIterator[tuple[Api, Path, dict[str, Any]]]:
    """A private copy of the epoch-29 llm-calls database and its payload store, to damage."""
    db = tmp_path / "llm.db"
    store = tmp_path / "llm.payloads"
    shutil.copy2(FIXTURES / "epoch29" / "llm-calls.db", db)
    shutil.copytree(FIXTURES / "epoch29" / "llm-calls.payloads", store)
    case = truth(29, "llm-calls")["runs"][0]["cases"]["with_calls"]
    landscape = await open_landscape(str(db))
    api = Api(landscape, payload_roots=(store,))
    yield api, store, case
    api.counter.close()
    await landscape.dispose()


async def _source_payload(api: Api, row_id: str) -> dict[str, Any]:
    data = await api.ok("query ($r: String!) { row(rowId: $r) { sourceDataHash sourceDataRef sourceData { state problem json } } }",
                        {"r": row_id})
    return data["row"]  # type: ignore[no-any-return]


async def test_tampered_payload_is_integrity_failed(own_store: tuple[Api, Path, dict[str, Any]]) -> None:
    api, store, case = own_store
    row = await _source_payload(api, case["row_id"])
    ref = row["sourceDataRef"]
    path = store / ref[:2] / ref
    path.write_bytes(path.read_bytes().replace(b"Broke", b"Fixed"))
    after = await _source_payload(api, case["row_id"])
    assert after["sourceData"]["state"] == "INTEGRITY_FAILED"
    assert after["sourceData"]["json"] is None
    assert str(store) not in str(after)


async def test_deleted_payload_is_purged(own_store: tuple[Api, Path, dict[str, Any]]) -> None:
    api, store, case = own_store
    ref = (await _source_payload(api, case["row_id"]))["sourceDataRef"]
    (store / ref[:2] / ref).unlink()
    assert (await _source_payload(api, case["row_id"]))["sourceData"]["state"] == "PURGED"


async def test_hostile_ref_never_reaches_the_filesystem(own_store: tuple[Api, Path, dict[str, Any]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    api, _store, case = own_store
    db_path = Path(str(api.landscape.location))
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE rows SET source_data_ref = '../../etc/passwd' WHERE row_id = ?", (case["row_id"],))
    opened: list[str] = []
    import os
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    row = await _source_payload(api, case["row_id"])
    assert row["sourceData"]["state"] == "INTEGRITY_FAILED"
    assert "malformed" in row["sourceData"]["problem"]
    assert not any("passwd" in p for p in opened)


async def test_node_state_hashes_resolve_to_store_files_when_present(apis: dict[tuple[int, str], Api]) -> None:
    case = truth(29, "fork-coalesce")["runs"][0]["cases"]["coalesced_multi_parent"]
    data = await apis[(29, "fork-coalesce")].ok(
        "query ($t: String!) { token(tokenId: $t) { nodeStates { inputHash inputData { state hash } outputData { state } } } }",
        {"t": case["token_id"]})
    states = data["token"]["nodeStates"]
    assert {s["inputData"]["state"] for s in states} <= {"AVAILABLE", "HASH_ONLY"}
    assert any(s["inputData"]["state"] == "AVAILABLE" for s in states)
    assert all(s["inputData"]["hash"] == s["inputHash"] for s in states)


async def test_payload_reads_are_batched_per_level(apis: dict[tuple[int, str], Api]) -> None:
    run_id = truth(2, "llm-calls")["runs"][0]["run_id"]
    result = await apis[(2, "llm-calls")].run(
        """query ($r: String!) { run(runId: $r) { rows(first: 40) { nodes { sourceData { state } } } } }""",
        {"r": run_id})
    assert not result.errors
    # payload reads are file I/O, not SQL: the query costs run + rows page only
    assert result.statements == 2


@pytest.mark.parametrize("epoch", [2, 29])
async def test_the_response_budget_counts_every_occurrence_of_a_shared_payload(
        landscapes: dict[tuple[int, str], Any], epoch: int) -> None:
    from landscape_graphql.context import Context
    from landscape_graphql.payloads import ByteBudget, PayloadStore
    from landscape_graphql.schema import build_schema
    from landscape_graphql.settings import Settings
    from tests.conftest import payload_dir

    case = next(c for run in truth(epoch, "llm-calls")["runs"] for c in run["cases"].values()
                if c.get("source_payload_available"))
    query = "query ($r: String!) { " + " ".join(
        f"r{i}: row(rowId: $r) {{ sourceData {{ sizeBytes truncated text }} }}" for i in range(6)) + " }"
    schema = build_schema(Settings())
    store = PayloadStore((payload_dir(epoch, "llm-calls"),))

    async def run(budget: ByteBudget) -> list[dict[str, Any]]:
        ctx = Context.create(landscapes[(epoch, "llm-calls")], Settings(), payload_store=store, payload_budget=budget)
        result = await schema.execute(query, variable_values={"r": case["row_id"]}, context_value=ctx)
        assert not result.errors, result.errors
        return [result.data[f"r{i}"]["sourceData"] for i in range(6)]

    size = (await run(ByteBudget()))[0]["sizeBytes"]
    # Room for two and a half copies: the response carries 2.5 copies' bytes, not six.
    answers = await run(ByteBudget(size * 5 // 2))
    carried = sum(len(a["text"].encode()) for a in answers if a["text"] is not None)
    assert carried <= size * 5 // 2
    assert [a["truncated"] for a in answers] == [False, False, True, True, True, True]
