"""The lineage viewer: its page, its queries, its routes, and a person using it in a browser."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse, validate
from starlette.applications import Starlette

from landscape_graphql.web import viewer_html, viewer_routes
from landscape_graphql.web._common import STATIC_ROOT
from landscape_graphql.web.viewer import EXPLAIN_QUERY, TOKEN_QUERY

from . import _standin as S
from .conftest import SCREENSHOTS

VIEWER_JS = (STATIC_ROOT / "viewer" / "viewer.js").read_text()


def viewer_config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="viewer-config">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def test_page_carries_its_graphql_path_and_queries() -> None:
    config = viewer_config(viewer_html("/api/graphql"))
    assert config["graphqlPath"] == "/api/graphql"
    assert config["queries"] == {"token": TOKEN_QUERY, "explain": EXPLAIN_QUERY}
    assert 'href="/api/graphql"' in viewer_html("/api/graphql")  # the GraphiQL link


@pytest.mark.parametrize("query", [TOKEN_QUERY, EXPLAIN_QUERY], ids=["token", "explain"])
def test_queries_use_the_api_field_names(query: str) -> None:
    assert validate(S.schema._schema, parse(query)) == []


def test_queries_are_valid_against_the_real_schema() -> None:
    from landscape_graphql.schema import build_schema

    schema = build_schema()._schema
    for query in (TOKEN_QUERY, EXPLAIN_QUERY):
        assert validate(schema, parse(query)) == []


def test_script_never_parses_data_as_markup() -> None:
    # Branch names, node ids and error messages come from the audit data: one innerHTML with
    # them would let a crafted pipeline run script in an auditor's browser.
    code = re.sub(r"^\s*//.*$", "", VIEWER_JS, flags=re.M)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, sink


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=viewer_routes("/graphql"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_routes_serve_the_page_and_its_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/viewer")
    assert page.status_code == 200
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/static/viewer/[^"]+)"', page.text)
    assert sorted(a.split("?")[0] for a in assets) == ["/static/viewer/viewer.css", "/static/viewer/viewer.js"]
    for url in assets:
        response = await client.get(url)
        assert response.status_code == 200, url
    assert (await client.get("/static/viewer/../graphiql/graphiql.js")).status_code == 404


# ------------------------------------------------------------------------------- in a browser


def _no_outside_traffic(page: Any) -> None:
    assert page.traffic.blocked == [], "the viewer tried to reach outside this machine"
    assert page.traffic.page_errors == []
    assert [e for e in page.traffic.console_errors if "Content Security Policy" in e] == []


async def _node_ids(page: Any) -> set[str]:
    return set(await page.eval_on_selector_all("#graph svg g.node", "els => els.map(e => e.dataset.tokenId)"))


async def _selected(page: Any, token_id: str) -> None:
    await page.wait_for_selector(f'#graph svg g.node.selected[data-token-id="{token_id}"]')


@pytest.mark.browser
async def test_viewer_draws_a_tokens_lineage_and_its_details(page: Any, live_server: Any) -> None:
    await page.goto(f"{live_server.url}/viewer")
    await page.fill("#token-id", S.MERGED)
    await page.get_by_role("button", name="Show lineage").click()
    await _selected(page, S.MERGED)

    # Every ancestor and descendant is a box showing its id; the other row's batch member is not.
    expected = {S.SOURCE, *S.BRANCHES.values(), S.MERGED, *S.ITEMS, *S.OUTPUTS}
    assert await _node_ids(page) == expected
    for token_id in expected:
        assert await page.locator(f'g.node[data-token-id="{token_id}"] text.tid').text_content() == token_id
    kinds = await page.eval_on_selector_all("#graph svg path.edge", "els => els.map(e => e.dataset.kind)")
    assert sorted(kinds) == sorted(["FORK"] * 3 + ["COALESCE"] * 3 + ["EXPAND"] * 2 + ["BATCH"] * 2)

    # Ancestors are drawn above the token, descendants below it.
    tops = {t: (await page.locator(f'g.node[data-token-id="{t}"]').bounding_box())["y"] for t in expected}
    assert tops[S.SOURCE] < tops[S.BRANCHES["sentiment"]] < tops[S.MERGED] < tops[S.ITEMS[0]] < tops[S.OUTPUTS[0]]

    states = await page.locator("#node-states tbody tr").all_inner_texts()
    assert [re.split(r"\s+", row.strip())[:4] for row in states] == [
        ["0", "1", "COMPLETED", "csv_source"], ["1", "1", "FAILED", "llm_classify"],
        ["1", "2", "COMPLETED", "llm_classify"]]
    calls = await page.locator("#calls tbody tr").all_inner_texts()
    assert [row.split()[1:] for row in calls] == [["HTTP", "ERROR"], ["HTTP", "SUCCESS"], ["LLM", "SUCCESS"]]
    details = await page.locator("#details").inner_text()
    assert "EXPANDED" in details and S.RUN_ID in details and S.ROW_ID in details
    await page.screenshot(path=str(SCREENSHOTS / "landscape-viewer.png"), full_page=True)

    # Following a box: the URL records it (Back works) and the panel shows that token.
    await page.locator(f'g.node[data-token-id="{S.OUTPUTS[0]}"]').click()
    await _selected(page, S.OUTPUTS[0])
    assert page.url.endswith(f"#token={S.OUTPUTS[0]}")
    details = await page.locator("#details").inner_text()
    assert "SINK_WRITTEN" in details and "high_value" in details
    assert S.OTHER_ROW_ITEM in await _node_ids(page)  # the other row's batch member is now an ancestor
    await page.screenshot(path=str(SCREENSHOTS / "landscape-viewer-batch-output.png"), full_page=True)
    await page.go_back()
    await _selected(page, S.MERGED)
    _no_outside_traffic(page)


@pytest.mark.browser
async def test_viewer_finds_a_row_through_explain_and_shows_ambiguity(page: Any, live_server: Any) -> None:
    await page.goto(f"{live_server.url}/viewer")
    await page.fill("#run-id", S.RUN_ID)
    await page.fill("#row-id", S.ROW_ID)
    await page.get_by_role("button", name="Show lineage").click()

    errors = page.locator("#errors")
    await errors.get_by_text("AMBIGUOUS_LINEAGE").wait_for()
    assert "name a sink" in await errors.inner_text()
    assert sorted(await errors.locator(".candidates a").all_inner_texts()) == sorted(S.OUTPUTS)
    await page.screenshot(path=str(SCREENSHOTS / "landscape-viewer-ambiguous.png"))

    await page.fill("#sink", "high_value")
    await page.get_by_role("button", name="Show lineage").click()
    await _selected(page, S.OUTPUTS[0])
    assert await errors.is_hidden()
    assert "high_value" in await page.locator("#details").inner_text()

    # A candidate in an ambiguity error is a link to that token.
    await page.fill("#sink", "")
    await page.get_by_role("button", name="Show lineage").click()
    await errors.locator(".candidates a", has_text=S.OUTPUTS[1]).click()
    await _selected(page, S.OUTPUTS[1])
    _no_outside_traffic(page)


@pytest.mark.browser
async def test_viewer_reports_errors_and_unknown_tokens_readably(page: Any, live_server: Any) -> None:
    await page.goto(f"{live_server.url}/viewer#token={S.BROKEN}")
    errors = page.locator("#errors")
    await errors.get_by_text("BAD_ARGUMENT").wait_for()
    text = await errors.inner_text()
    assert "not a token id" in text
    assert "at token" in text  # the error's path

    await page.fill("#token-id", S.MISSING)
    await page.get_by_role("button", name="Show lineage").click()
    await page.get_by_text(f"No token with id {S.MISSING}").wait_for()
    assert await errors.is_hidden()
    _no_outside_traffic(page)


@pytest.mark.browser
async def test_viewer_sends_the_authorization_it_is_given(page: Any, live_server: Any) -> None:
    await page.goto(f"{live_server.url}/viewer")
    await page.locator("details.auth summary").click()
    await page.fill("#authorization", "Bearer viewer-secret")
    await page.fill("#token-id", S.SOURCE)
    before = len(live_server.seen.authorization)
    await page.get_by_role("button", name="Show lineage").click()
    await _selected(page, S.SOURCE)
    assert live_server.seen.authorization[before:] == ["Bearer viewer-secret"]
    assert live_server.seen.content_types[-1].startswith("application/json")
    _no_outside_traffic(page)


@pytest.mark.browser
async def test_viewer_says_when_the_lineage_was_cut(page: Any, live_server: Any) -> None:
    await page.goto(f"{live_server.url}/viewer")
    await page.fill("#max-depth", "1")
    await page.fill("#token-id", S.MERGED)
    await page.get_by_role("button", name="Show lineage").click()
    await _selected(page, S.MERGED)
    assert S.SOURCE not in await _node_ids(page)  # two generations up: beyond depth 1
    notice = page.locator("#truncation")
    assert await notice.is_visible()
    text = await notice.inner_text()
    assert "Ancestors cut at depth 1 (max depth)" in text and "Descendants cut at depth 1" in text
    _no_outside_traffic(page)
