"""The real app on a real ELSPETH fixture, in real Chromium, with every off-machine request blocked.

The other browser tests drive the pages against a stand-in schema (every shape on demand); this
one proves the shipped pages work against the shipped API and data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from landscape_graphql.app import AppConfig, create_app
from tests.conftest import payload_dir, truth
from tests.live_server import serve

pytestmark = pytest.mark.browser
CASES = truth(2, "expand-aggregate")["runs"][0]["cases"]


@pytest.fixture(scope="module")
def real_server(fixture_copies: Path) -> Iterator[str]:
    app = create_app(AppConfig(database=str(fixture_copies / "epoch2" / "expand-aggregate.db"),
                               payload_roots=(str(payload_dir(2, "expand-aggregate")),)))
    with serve(app) as url:
        yield url


def _offline(page: Any) -> None:
    assert page.traffic.blocked == [], page.traffic.blocked
    assert page.traffic.page_errors == [], page.traffic.page_errors


async def test_graphiql_queries_the_real_api(page: Any, real_server: str) -> None:
    await page.goto(f"{real_server}/graphql")
    await page.wait_for_selector(".graphiql-container .graphiql-query-editor .CodeMirror")
    await page.locator(".graphiql-query-editor .CodeMirror").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    token_id = CASES["batch_output_child"]["token_id"]
    await page.keyboard.insert_text(
        f'query RealBatch {{ landscape {{ epoch }} token(tokenId: "{token_id}") {{ ancestors {{ edges {{ kind }} }} }} }}')
    # GraphiQL picks up the operation name shortly after the edit (as the tab title shows).
    await page.locator(".graphiql-tab-active", has_text="RealBatch").wait_for()
    await page.locator(".graphiql-query-editor .CodeMirror").click()
    await page.keyboard.press("Control+Enter")
    await page.wait_for_function(
        "() => (document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() || '').includes('BATCH')")
    text = await page.evaluate("() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()")
    result = json.loads(text)
    assert result["data"]["landscape"]["epoch"] == 2
    assert "BATCH" in {e["kind"] for e in result["data"]["token"]["ancestors"]["edges"]}
    assert result["extensions"]["landscape"]["sqlStatements"] >= 1
    _offline(page)


async def test_viewer_draws_a_real_aggregation_lineage(page: Any, real_server: str) -> None:
    output = CASES["batch_output_child"]
    members = CASES["batch_trigger_parent"]["batch"]["members"]
    run_id = truth(2, "expand-aggregate")["runs"][0]["run_id"]
    await page.goto(f"{real_server}/viewer#token={output['token_id']}")  # the first viewer's links
    await page.wait_for_url(f"**/viewer#/run/{run_id}/token/{output['token_id']}")
    await page.locator(f'[data-graph] [data-token-id="{output["token_id"]}"]').first.wait_for()
    drawn = set(await page.eval_on_selector_all("[data-token-id]", "els => els.map(e => e.dataset.tokenId)"))
    assert set(members) <= drawn, "every batch member is drawn as an ancestor"
    kinds = await page.eval_on_selector_all("[data-edge-kind]", "els => els.map(e => e.dataset.edgeKind)")
    assert kinds.count("BATCH") == len(members)
    await page.screenshot(path="/tmp/landscape-viewer-real.png", full_page=True)
    _offline(page)
