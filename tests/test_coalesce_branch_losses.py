"""Row.coalesceBranchLosses: epoch 29's coalesce_branch_losses, on both backends.

The expected answers are the fixture's own rows, read straight from the SQLite file that
ELSPETH wrote (and that the PostgreSQL copy was loaded from).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from landscape_graphql.db.engine import open_landscape
from tests.conftest import FIXTURES, Api

FC29 = FIXTURES / "epoch29" / "fork-coalesce.db"

LOSS_FIELDS = """lossId runId coalesceName rowId branchName tokenId reason reasonKind reasonDetail
  recordedBy recordedAt adoptedEpoch token { tokenId rowId branchName outcome { result path } }"""


def stored_losses() -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{FC29}?mode=ro&immutable=1", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM coalesce_branch_losses ORDER BY row_id, recorded_at, loss_id").fetchall()
        return [dict(r) for r in rows]


def test_the_fixture_has_losses_to_read() -> None:
    assert len(stored_losses()) == 3


async def test_each_row_serves_the_losses_elspeth_recorded(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(29, "fork-coalesce")]
    losses = stored_losses()
    for loss in losses:
        data = await api.ok(f'query ($r: String!) {{ row(rowId: $r) {{ coalesceBranchLosses {{ {LOSS_FIELDS} }} }} }}',
                            {"r": loss["row_id"]})
        (served,) = data["row"]["coalesceBranchLosses"]
        kind, _, detail = loss["reason"].partition(":")
        assert served["lossId"] == loss["loss_id"] and served["runId"] == loss["run_id"]
        assert served["coalesceName"] == loss["coalesce_name"] == "merge_branches"
        assert (served["rowId"], served["branchName"], served["tokenId"]) == (
            loss["row_id"], loss["branch_name"], loss["token_id"])
        assert served["reason"] == loss["reason"]
        assert (served["reasonKind"], served["reasonDetail"]) == (kind, detail) == ("error_routed", detail)
        assert "blocked_content" in served["reasonDetail"]
        assert served["recordedBy"] == loss["recorded_by"] and served["adoptedEpoch"] == loss["adopted_epoch"]
        assert served["recordedAt"].startswith(loss["recorded_at"].replace(" ", "T")[:19])
        # the lost branch's token: of this row, on the lost branch, routed to the error sink
        assert served["token"] == {"tokenId": loss["token_id"], "rowId": loss["row_id"], "branchName": "path_c",
                                   "outcome": {"result": "FAILURE", "path": "ON_ERROR_ROUTED"}}


async def test_losses_of_a_whole_page_of_rows_are_one_statement(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(29, "fork-coalesce")]
    losses = stored_losses()
    query = """query ($r: String!, $n: Int!) { run(runId: $r) { rows(first: $n) { nodes { rowId
      coalesceBranchLosses { lossId branchName } } } } }"""
    small = await api.run(query, {"r": losses[0]["run_id"], "n": 5})
    big = await api.run(query, {"r": losses[0]["run_id"], "n": 100})
    assert not small.errors and not big.errors
    nodes = big.data["run"]["rows"]["nodes"]
    assert len(nodes) == 100
    served = {n["rowId"]: [x["lossId"] for x in n["coalesceBranchLosses"]] for n in nodes}
    # every row of the run answers: the three rows with a loss list theirs, the others none
    assert {r: ids for r, ids in served.items() if ids} == {x["row_id"]: [x["loss_id"]] for x in losses}
    assert small.statements == big.statements  # depth, not breadth


async def test_epoch_2_cannot_record_losses_so_the_field_is_null(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    data = await api.ok("""{ runs(first: 1) { nodes { rows(first: 3) { nodes { rowId coalesceBranchLosses { lossId } } } } } }""")
    rows = data["runs"]["nodes"][0]["rows"]["nodes"]
    assert len(rows) == 3 and all(r["coalesceBranchLosses"] is None for r in rows)


async def test_other_epoch_29_fixtures_serve_empty_lists(apis: dict[tuple[int, str], Api]) -> None:
    for name in ("llm-calls", "expand-aggregate"):
        data = await apis[(29, name)].ok("""{ runs(first: 1) { nodes { rows(first: 3) { nodes { coalesceBranchLosses { lossId } } } } } }""")
        rows = data["runs"]["nodes"][0]["rows"]["nodes"]
        assert rows and all(r["coalesceBranchLosses"] == [] for r in rows), name


@pytest.fixture
async def broken_losses(tmp_path: Path) -> AsyncIterator[tuple[Api, list[dict[str, Any]]]]:
    """The epoch-29 fork/coalesce fixture with two of its three losses broken on purpose."""
    db = tmp_path / "broken.db"
    shutil.copy2(FC29, db)
    losses = stored_losses()
    with sqlite3.connect(db) as conn:
        # the loss names a branch its token is not on
        conn.execute("UPDATE coalesce_branch_losses SET branch_name = 'path_z' WHERE loss_id = ?",
                     (losses[0]["loss_id"],))
        # the loss names a token that does not exist
        conn.execute("UPDATE coalesce_branch_losses SET token_id = 'ghost' WHERE loss_id = ?", (losses[1]["loss_id"],))
    landscape = await open_landscape(str(db))
    api = Api(landscape)
    yield api, losses
    api.counter.close()
    await landscape.dispose()


async def test_a_broken_loss_is_an_integrity_error_and_the_rest_resolves(
        broken_losses: tuple[Api, list[dict[str, Any]]]) -> None:
    api, losses = broken_losses
    result = await api.run(
        """query ($a: String!, $b: String!, $c: String!) {
          a: row(rowId: $a) { rowId coalesceBranchLosses { lossId } }
          b: row(rowId: $b) { rowId coalesceBranchLosses { lossId } }
          c: row(rowId: $c) { rowId coalesceBranchLosses { lossId } }
        }""", {"a": losses[0]["row_id"], "b": losses[1]["row_id"], "c": losses[2]["row_id"]})
    by_path = {tuple(e["path"]): e for e in result.errors}
    assert set(by_path) == {("a", "coalesceBranchLosses"), ("b", "coalesceBranchLosses")}
    assert all(e["extensions"]["code"] == "AUDIT_INTEGRITY" for e in result.errors)
    assert by_path[("a", "coalesceBranchLosses")]["extensions"]["record"] == f"coalesce_branch_losses[{losses[0]['loss_id']}]"
    assert "lost branch" in by_path[("a", "coalesceBranchLosses")]["extensions"]["rule"]
    assert "path_z" in by_path[("a", "coalesceBranchLosses")]["message"]
    assert by_path[("b", "coalesceBranchLosses")]["extensions"]["record"] == f"coalesce_branch_losses[{losses[1]['loss_id']}]"
    assert "ghost" in by_path[("b", "coalesceBranchLosses")]["message"]
    assert result.data["a"] == {"rowId": losses[0]["row_id"], "coalesceBranchLosses": None}
    assert result.data["b"] == {"rowId": losses[1]["row_id"], "coalesceBranchLosses": None}
    assert result.data["c"]["coalesceBranchLosses"] == [{"lossId": losses[2]["loss_id"]}]
    for error in result.errors:
        assert "SELECT" not in str(error) and "Traceback" not in str(error)
