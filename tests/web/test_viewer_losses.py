"""The details panel shows why a fork branch never reached its coalesce (Row.coalesceBranchLosses),
on the lost token, its fork parent and its siblings; on SQLite and on PostgreSQL (the epoch-29
fork/coalesce fixture loaded by the project's loader: ELSPETH's own dump recorded no loss)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

from .test_viewer_app import Servers, axe_clean, gql, lineage, offline, servers, shot

__all__ = ["servers"]  # the module's fixture, shared with test_viewer_app

pytestmark = pytest.mark.browser


def stored_losses(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM coalesce_branch_losses ORDER BY loss_id")]


async def panel_losses(page: Any) -> dict[str, str]:
    rows = page.locator("[data-panel] #branch-losses tbody tr")
    await rows.first.wait_for()
    return dict(await rows.evaluate_all("els => els.map(e => [e.dataset.lossId, e.innerText])"))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_why_a_branch_never_arrived_is_in_the_panel(page: Any, servers: Servers, fixture_copies: Path,
                                                          request: pytest.FixtureRequest, backend: str) -> None:
    db = fixture_copies / "epoch29" / "fork-coalesce.db"
    if backend == "sqlite":
        url = servers.fixture(29, "fork-coalesce")
    else:
        url = servers.database(request.getfixturevalue("pg_databases")[(29, "fork-coalesce")],
                               FIXTURES / "epoch29" / "fork-coalesce.payloads")
    loss = stored_losses(db)[0]
    run, lost = loss["run_id"], loss["token_id"]
    tok = gql(url, """query ($t: String!) { token(tokenId: $t) { forkGroupId parents { tokenId
        children { tokenId branchName } } } }""", {"t": lost})["token"]
    fork = tok["parents"][0]["tokenId"]
    sibling = next(c["tokenId"] for c in tok["parents"][0]["children"] if c["tokenId"] != lost)

    # The lost token: its own loss, with ELSPETH's reason.
    await lineage(page, url, run, lost)
    await page.locator(f'[data-graph] [data-token-id="{lost}"]').click()
    shown = await panel_losses(page)
    assert list(shown) == [loss["loss_id"]]
    text = shown[loss["loss_id"]]
    assert "path_c (this token)" in text and "merge_branches" in text and "error_routed" in text
    assert "blocked_content" in text and lost in text
    await axe_clean(page)
    await shot(page, f"lineage-branch-loss-{backend}")

    # Its fork parent: the branch table says it did not arrive and why, and lists the loss.
    await lineage(page, url, run, fork)
    await page.locator(f'[data-graph] [data-token-id="{fork}"]').click()
    assert list(await panel_losses(page)) == [loss["loss_id"]]
    branch = page.locator('[data-panel] #branches tbody tr[data-branch="path_c"]')
    assert await branch.get_attribute("data-arrived") == "false"
    assert "did not arrive" in await branch.inner_text() and "error_routed" in await branch.inner_text()

    # A sibling branch (it failed at the coalesce because path_c never came): the same loss.
    await lineage(page, url, run, sibling)
    await page.locator(f'[data-graph] [data-token-id="{sibling}"]').click()
    shown = await panel_losses(page)
    assert list(shown) == [loss["loss_id"]] and "(this token)" not in shown[loss["loss_id"]]
    offline(page)


async def test_epoch_2_shows_no_losses_section(page: Any, servers: Servers, fixture_copies: Path) -> None:
    url = servers.fixture(2, "fork-coalesce")
    db = fixture_copies / "epoch2" / "fork-coalesce.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        fork, run = con.execute("SELECT o.token_id, o.run_id FROM token_outcomes o WHERE expected_branches_json "
                                "IS NOT NULL ORDER BY o.token_id LIMIT 1").fetchone()
    assert gql(url, 'query ($t: String!) { token(tokenId: $t) { row { coalesceBranchLosses { lossId } } } }',
               {"t": fork})["token"]["row"]["coalesceBranchLosses"] is None
    await lineage(page, url, run, fork)
    await page.locator(f'[data-graph] [data-token-id="{fork}"]').click()
    await page.locator("[data-panel] #branches").wait_for()
    assert await page.locator("[data-panel] #branch-losses").count() == 0
    offline(page)
