"""Bad input and bad data: clear, coded errors; never a stack trace, SQL text or a crash."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from landscape_graphql.db.engine import open_landscape
from tests.conftest import FIXTURES, Api, truth

FC2 = truth(2, "fork-coalesce")["runs"][0]
FC29 = truth(29, "fork-coalesce")["runs"][0]


def _no_leak(errors: list[dict[str, object]]) -> None:
    for error in errors:
        text = str(error)
        for leak in ("SELECT", "Traceback", "sqlite3", "File \"", "/work/"):
            assert leak not in text, error


async def test_unknown_ids_give_null_not_errors(apis: dict[tuple[int, str], Api]) -> None:
    result = await apis[(2, "fork-coalesce")].run(
        '{ token(tokenId: "nope") { tokenId } row(rowId: "nope") { rowId } run(runId: "nope") { runId } '
        'nodeState(stateId: "nope") { stateId } call(callId: "nope") { callId } batch(batchId: "x") { batchId } }')
    assert result.errors == []
    assert result.data == {"token": None, "row": None, "run": None, "nodeState": None, "call": None,
                           "batch": None}


async def test_id_of_another_run_is_an_error_saying_so(apis: dict[tuple[int, str], Api]) -> None:
    runs = truth(2, "examples-multirun")["runs"]
    token_of_first = next(iter(runs[0]["cases"].values()))["token_id"]
    result = await apis[(2, "examples-multirun")].run(
        "query ($r: String!, $t: String!) { explain(runId: $r, tokenId: $t) { token { tokenId } } "
        "token(tokenId: $t, runId: $r) { tokenId } }",
        {"r": runs[1]["run_id"], "t": token_of_first})
    assert result.data == {"explain": None, "token": None}
    assert {e["extensions"]["code"] for e in result.errors} == {"RUN_MISMATCH"}
    assert all(runs[0]["run_id"] in e["message"] and runs[1]["run_id"] in e["message"] for e in result.errors)


async def test_a_page_over_the_maximum_is_refused_before_any_sql(apis: dict[tuple[int, str], Api]) -> None:
    result = await apis[(2, "llm-calls")].run('{ runs(first: 501) { totalCount } }')
    (error,) = result.errors
    assert error["extensions"]["code"] == "QUERY_LIMIT"
    assert error["extensions"]["limit"] == "pageSize" and error["extensions"]["maximum"] == 500
    assert result.statements == 0


@pytest.mark.parametrize(("query", "argument"), [
    ('{ runs(first: -1) { totalCount } }', "first"),
    ('{ runs(first: 1, last: 1) { totalCount } }', "last"),
    ('{ runs(after: "garbage!") { totalCount } }', "after"),
    ('{ node(id: "not-an-id") { id } }', "id"),
    ('{ explain(runId: "x") { runId } }', "tokenId"),
    ('{ explain(runId: "x", tokenId: "a", rowId: "b") { runId } }', "rowId"),
])
async def test_bad_arguments_name_the_argument(apis: dict[tuple[int, str], Api], query: str,
                                               argument: str) -> None:
    result = await apis[(2, "llm-calls")].run(query)
    (error,) = result.errors
    assert error["extensions"]["code"] == "BAD_ARGUMENT"
    assert error["extensions"]["argument"] == argument
    assert argument in error["message"]
    _no_leak(result.errors)


async def test_a_cursor_of_one_connection_is_refused_by_another(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    data = await api.ok('query ($r: String!) { run(runId: $r) { rows(first: 1) { pageInfo { endCursor } } } }',
                        {"r": FC2["run_id"]})
    cursor = data["run"]["rows"]["pageInfo"]["endCursor"]
    result = await api.run('query ($r: String!, $c: String!) { run(runId: $r) { tokens(after: $c) { totalCount } } }',
                           {"r": FC2["run_id"], "c": cursor})
    assert result.errors[0]["extensions"]["code"] == "BAD_ARGUMENT"
    assert "tokens connection" in result.errors[0]["message"]


async def test_ambiguous_row_lists_candidates(apis: dict[tuple[int, str], Api]) -> None:
    forked = FC2["cases"]["forked_parent"]
    result = await apis[(2, "fork-coalesce")].run(
        'query ($r: String!, $row: String!) { explain(runId: $r, rowId: $row) { token { tokenId } } }',
        {"r": FC2["run_id"], "row": forked["row_id"]})
    (error,) = result.errors
    assert error["extensions"]["code"] == "AMBIGUOUS_LINEAGE"
    assert error["extensions"]["candidateCount"] >= 2
    assert 2 <= len(error["extensions"]["candidateTokenIds"]) <= 5


@pytest.fixture
async def corrupt_api(tmp_path: Path) -> AsyncIterator[tuple[Api, dict[str, str]]]:
    """A copy of the epoch-29 fork/coalesce fixture with three records broken on purpose."""
    db = tmp_path / "corrupt.db"
    shutil.copy2(FIXTURES / "epoch29" / "fork-coalesce.db", db)
    fork_child = FC29["cases"]["fork_child"]["token_id"]
    plain = FC29["cases"]["validation_error"]["token_id"]
    coalesced = FC29["cases"]["coalesced_multi_parent"]["token_id"]
    with sqlite3.connect(db) as conn:
        # parents but no group id
        conn.execute("UPDATE tokens SET fork_group_id = NULL WHERE token_id = ?", (fork_child,))
        # an outcome path outside ELSPETH's value space
        conn.execute("UPDATE token_outcomes SET path = 'teleported' WHERE token_id = ?", (plain,))
        # a dangling parent reference
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("UPDATE token_parents SET parent_token_id = 'ghost' WHERE token_id = ? AND ordinal = 0",
                     (coalesced,))
    landscape = await open_landscape(str(db))
    api = Api(landscape)
    yield api, {"fork_child": fork_child, "plain": plain, "coalesced": coalesced}
    api.counter.close()
    await landscape.dispose()


async def test_integrity_violations_are_reported_and_the_rest_resolves(
        corrupt_api: tuple[Api, dict[str, str]]) -> None:
    api, ids = corrupt_api
    result = await api.run(
        """query ($a: String!, $b: String!, $c: String!) {
          a: token(tokenId: $a) { tokenId parents { tokenId } nodeStates { stateId } }
          b: token(tokenId: $b) { tokenId outcome { path } nodeStates { stateId } }
          c: token(tokenId: $c) { tokenId parents { tokenId } }
        }""", {"a": ids["fork_child"], "b": ids["plain"], "c": ids["coalesced"]})
    by_path = {tuple(e["path"]): e for e in result.errors}
    assert set(by_path) == {("a", "parents"), ("b", "outcome"), ("c", "parents")}
    for error in result.errors:
        assert error["extensions"]["code"] == "AUDIT_INTEGRITY"
    assert ids["fork_child"] in by_path[("a", "parents")]["extensions"]["record"]
    assert "group id" in by_path[("a", "parents")]["extensions"]["rule"]
    assert "teleported" in by_path[("b", "outcome")]["message"]
    assert "ghost" in by_path[("c", "parents")]["message"]
    # everything else still resolved
    assert result.data["a"]["tokenId"] == ids["fork_child"] and result.data["a"]["nodeStates"]
    assert result.data["b"]["nodeStates"] and result.data["b"]["outcome"] is None
    assert result.data["a"]["parents"] is None and result.data["c"]["parents"] is None
    _no_leak(result.errors)


async def test_lineage_walks_report_the_broken_record_instead_of_a_partial_graph(
        corrupt_api: tuple[Api, dict[str, str]]) -> None:
    api, ids = corrupt_api
    fork_parent = FC29["cases"]["fork_child"]["parents"][0]["token_id"]
    result = await api.run(
        """query ($a: String!, $c: String!, $p: String!) {
          a: token(tokenId: $a) { ancestors(maxDepth: 3) { tokens { tokenId } } }
          c: token(tokenId: $c) { ancestors(maxDepth: 3) { tokens { tokenId } } }
          p: token(tokenId: $p) { descendants(maxDepth: 3) { tokens { tokenId } } }
        }""", {"a": ids["fork_child"], "c": ids["coalesced"], "p": fork_parent})
    by_path = {tuple(e["path"]): e for e in result.errors}
    assert set(by_path) == {("a", "ancestors"), ("c", "ancestors"), ("p", "descendants")}
    assert all(e["extensions"]["code"] == "AUDIT_INTEGRITY" for e in result.errors)
    # the child without a group id, found walking up from it and walking down to it
    assert ids["fork_child"] in by_path[("a", "ancestors")]["extensions"]["record"]
    assert ids["fork_child"] in by_path[("p", "descendants")]["extensions"]["record"]
    # the parent that token_parents names but tokens does not hold
    assert ids["coalesced"] in by_path[("c", "ancestors")]["extensions"]["record"]
    assert "ghost" in by_path[("c", "ancestors")]["message"]
    assert result.data == {"a": {"ancestors": None}, "c": {"ancestors": None}, "p": {"descendants": None}}
    _no_leak(result.errors)


async def test_one_bad_record_in_a_batch_fails_only_its_own_field(
        corrupt_api: tuple[Api, dict[str, str]]) -> None:
    api, ids = corrupt_api
    result = await api.run(
        """query ($r: String!) { run(runId: $r) { tokens(first: 500) { nodes { tokenId outcome { path } } } } }""",
        {"r": FC29["run_id"]})
    nodes = result.data["run"]["tokens"]["nodes"]
    bad = [n for n in nodes if n["outcome"] is None and n["tokenId"] == ids["plain"]]
    good = [n for n in nodes if n["outcome"] is not None]
    assert len(bad) == 1 and len(good) == len(nodes) - 1
    assert [e["extensions"]["code"] for e in result.errors] == ["AUDIT_INTEGRITY"]
