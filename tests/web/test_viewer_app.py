"""The lineage viewer as a person uses it: the real app on ELSPETH's fixtures of both epochs (and
the generator's wide and deep shapes), in real Chromium over real HTTP, with every request that
leaves the machine blocked. Each view is screenshotted into LANDSCAPE_SCREENSHOTS."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.demo.generator import generate
from tests.conftest import FIXTURES, PG_DUMP, payload_dir, truth
from tests.live_server import serve

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
SHOTS = SCREENSHOTS / "viewer"


class Servers:
    """One live app per database, started on first use and stopped with the module."""

    def __init__(self, stack: ExitStack, copies: Path) -> None:
        self.stack, self.copies = stack, copies
        self.urls: dict[str, str] = {}

    def fixture(self, epoch: int, name: str, payloads: Path | None = None) -> str:
        key = f"e{epoch}-{name}-{payloads}"
        if key not in self.urls:
            db = self.copies / f"epoch{epoch}" / f"{name}.db"
            self.urls[key] = self.database(str(db), payloads or payload_dir(epoch, name))
        return self.urls[key]

    def database(self, database: str, payloads: Path) -> str:
        app = create_app(AppConfig(database=database, payload_roots=(str(payloads),)))
        return self.stack.enter_context(serve(app))


@pytest.fixture(scope="module")
def servers(fixture_copies: Path) -> Iterator[Servers]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        yield Servers(stack, fixture_copies)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> dict[str, Any]:
    """The generator's wide fans (25 and 1,000 children) and a 50-deep chain, each served."""
    folder = tmp_path_factory.mktemp("viewer-shapes")
    out: dict[str, Any] = {}
    for name, shape, rows in (("wide25", "wide_fan", 25), ("wide1000", "wide_fan", 1000), ("deep50", "deep_chain", 50)):
        report = generate(folder / f"{name}.db", epoch=29, rows=rows, seed=5, shape=shape)
        out[name] = {"url": servers.database(str(report.db_path), report.payload_dir),
                     "run": report.run_ids[0], **report.tokens}
    return out


def gql(url: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30).json()
    assert not body.get("errors"), body
    return body["data"]


def run_of(url: str) -> str:
    return str(gql(url, "{ runs(first: 1) { nodes { runId } } }")["runs"]["nodes"][0]["runId"])


async def axe_clean(page: Any) -> None:
    # evaluate() runs outside the page's CSP, so the vendored axe-core needs no inline script.
    await page.evaluate(AXE)
    result = await page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                                 ".map(v => ({id: v.id, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))")
    assert result == [], result


def offline(page: Any) -> None:
    assert page.traffic.blocked == [], page.traffic.blocked
    assert page.traffic.page_errors == [], page.traffic.page_errors
    assert [e for e in page.traffic.console_errors if "Content Security Policy" in e] == []


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def boxes(page: Any) -> list[dict[str, Any]]:
    return await page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-graph] [data-token-id], [data-graph] [data-group-total]",
        "els => els.map(e => { const r = e.querySelector('rect').getBoundingClientRect();"
        " return {id: e.dataset.tokenId || e.dataset.groupId, x: r.x, y: r.y, w: r.width, h: r.height}; })")


async def assert_geometry(page: Any, at_least: int) -> list[dict[str, Any]]:
    """Every drawn box lies inside the graph panel and no two overlap."""
    panel = await page.locator(".lineage-page [data-graph]").bounding_box()
    drawn = await boxes(page)
    assert len([b for b in drawn if b["id"] and ":" not in b["id"]]) >= at_least, drawn
    for b in drawn:
        assert b["w"] > 8 and b["h"] > 1, b
        assert panel["x"] - 0.5 <= b["x"] and b["x"] + b["w"] <= panel["x"] + panel["width"] + 0.5, (b, panel)
        assert panel["y"] - 0.5 <= b["y"] and b["y"] + b["h"] <= panel["y"] + panel["height"] + 0.5, (b, panel)
    ordered = sorted(drawn, key=lambda b: b["x"])
    for i, a in enumerate(ordered):
        for c in ordered[i + 1:]:
            if c["x"] >= a["x"] + a["w"]:
                break
            assert c["y"] >= a["y"] + a["h"] or a["y"] >= c["y"] + c["h"], (a, c)
    return drawn


async def drawn_tokens(page: Any) -> set[str]:
    return set(await page.eval_on_selector_all("[data-graph] [data-token-id]", "els => els.map(e => e.dataset.tokenId)"))


async def lineage(page: Any, url: str, run: str, token: str, query: str = "") -> None:
    await page.goto("about:blank")  # a fresh load: a hash change alone would leave the old drawing up
    await page.goto(f"{url}/viewer#/run/{run}/token/{token}{query}")
    await page.locator(f'[data-graph] [data-token-id="{token}"]').wait_for()


# ----------------------------------------------------------------------------- runs and run pages

def elspeth_figures(epoch: int, name: str) -> dict[str, dict[str, float]]:
    """The run figures as ELSPETH's own get_run_summary gives them (vendored), per run: failed
    tokens are terminal FAILURE outcomes; epoch 2's ROUTED/DIVERTED leave the result open."""
    runs = json.loads((FIXTURES / f"epoch{epoch}" / "analytics" / f"{name}.json").read_text())["runs"]
    out = {}
    for run_id, report in runs.items():
        s = report["get_run_summary"]
        dist = s["outcome_distribution"]
        if epoch == 2:
            failed = dist.get("failed", 0) + dist.get("quarantined", 0)
            unresolved = dist.get("routed", 0) + dist.get("diverted", 0)
        else:
            failed = sum(o["count"] for o in dist if o["completed"] and o["outcome"] == "failure")
            unresolved = 0
        out[run_id] = {"rows": s["counts"]["rows"], "tokens": s["counts"]["tokens"], "errors": s["errors"]["total"],
                       "duration": s["run_duration_seconds"], "failed-tokens": failed, "unresolved": unresolved}
    return out


async def shown_figures(scope: Any) -> dict[str, float | None]:
    got = await scope.locator("[data-figure]").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.figure, e.dataset.value === '' ? null : +e.dataset.value]))")
    return got  # type: ignore[no-any-return]


async def assert_figures(scope: Any, expected: dict[str, float]) -> None:
    shown = await shown_figures(scope)
    assert shown["duration"] == pytest.approx(expected["duration"], abs=1e-3), (shown, expected)
    assert {k: shown[k] for k in ("rows", "tokens", "errors", "failed-tokens")} == {
        k: expected[k] for k in ("rows", "tokens", "errors", "failed-tokens")}, (shown, expected)
    text = await scope.locator('[data-figure="failed-tokens"]').inner_text()
    assert (f"+{expected['unresolved']:,} routed" in text) == bool(expected["unresolved"]), text


@pytest.mark.parametrize("epoch", [2, 29])
async def test_runs_page_lists_every_run_with_its_figures(page: Any, servers: Servers, epoch: int) -> None:
    name = "examples-multirun" if epoch == 2 else "fork-coalesce"
    url = servers.fixture(epoch, name)
    runs = gql(url, "{ runs(first: 50) { nodes { runId status tokens(first: 1) { totalCount } } } }")["runs"]["nodes"]
    await page.goto(f"{url}/viewer")
    await page.locator("[data-run-id]").first.wait_for()
    assert await page.eval_on_selector_all("[data-run-id]", "els => els.map(e => e.dataset.runId)") == [r["runId"] for r in runs]
    first = page.locator(f'[data-run-id="{runs[0]["runId"]}"]')
    text = await first.inner_text()
    assert runs[0]["status"] in text and str(runs[0]["tokens"]["totalCount"]) in text
    # Every run's figures (from Run.summary) are ELSPETH's own counts for that run.
    expected = elspeth_figures(epoch, name)
    assert set(expected) == {r["runId"] for r in runs}
    for run_id, figures in expected.items():
        await assert_figures(page.locator(f'[data-run-id="{run_id}"]'), figures)
    if epoch == 29:
        assert await first.locator('[data-figure="failed-tokens"]').inner_text() == "15"
    await axe_clean(page)
    await shot(page, f"runs-e{epoch}")
    await first.locator("a").click()
    await page.locator("[data-node-id]").first.wait_for()
    assert page.url.endswith(f"#/run/{runs[0]['runId']}")
    offline(page)


@pytest.mark.parametrize("epoch", [2, 29])
async def test_run_page_draws_the_dag_and_lists_tokens_through_a_node_and_an_edge(
        page: Any, servers: Servers, epoch: int) -> None:
    url = servers.fixture(epoch, "llm-calls")
    run = run_of(url)
    dag = gql(url, """query ($r: String!) { run(runId: $r) { dag { nodes { nodeId }
        edges { tokenCount edge { edgeId label } } } } }""", {"r": run})["run"]["dag"]
    await page.goto(f"{url}/viewer#/run/{run}")
    await page.locator("[data-node-id]").first.wait_for()
    drawn = await page.eval_on_selector_all("[data-node-id]", "els => els.map(e => e.dataset.nodeId)")
    assert sorted(drawn) == sorted(n["nodeId"] for n in dag["nodes"])
    # Badges: failed states and retries per node, as the API counts them.
    states = gql(url, """query ($r: String!) { run(runId: $r) {
        failed: nodeStates(first: 500, filter: {statuses: [FAILED]}) { nodes { nodeId } }
        retried: nodeStates(first: 500, filter: {retries: true}) { nodes { nodeId } } } }""", {"r": run})["run"]
    for kind in ("failed", "retried"):
        expected_badges = {n["nodeId"]: sum(s["nodeId"] == n["nodeId"] for s in states[kind]["nodes"])
                           for n in dag["nodes"]}
        shown = await page.eval_on_selector_all(
            "[data-node-id]", f"els => Object.fromEntries(els.map(e => [e.dataset.nodeId, +e.dataset.{kind}]))")
        assert shown == expected_badges
    assert any(states["retried"]["nodes"]), "the llm-calls fixture has retries"
    # The summary beside the DAG: ELSPETH's counts for this run.
    await assert_figures(page.locator(".run-page .summary"), elspeth_figures(epoch, "llm-calls")[run])
    await axe_clean(page)
    await shot(page, f"run-e{epoch}")

    # A node click also shows that node's performance, as ELSPETH's performance report has it.
    report = json.loads((FIXTURES / f"epoch{epoch}" / "analytics" / "llm-calls.json").read_text())
    perf = {n["node_id"]: n for n in report["runs"][run]["get_performance_report"]["node_performance"]}
    node = max(perf.values(), key=lambda n: n["failures"])["node_id"]
    assert perf[node]["failures"] > 0
    expected = gql(url, """query ($r: String!, $n: String!) { run(runId: $r) { tokens(filter: {nodeId: $n}) {
        totalCount } } }""", {"r": run, "n": node})["run"]["tokens"]["totalCount"]
    await page.locator(f'[data-node-id="{node}"]').click()
    panel = page.locator("[data-panel]")
    await panel.get_by_text(f"{expected} token").first.wait_for()
    assert await panel.locator("[data-pick-token-id]").count() == min(50, expected)
    await panel.locator("[data-perf=p95-ms]").wait_for()
    shown = await panel.locator("[data-perf]").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.perf, e.dataset.value === '' ? null : +e.dataset.value]))")
    assert (shown["executions"], shown["failures"]) == (perf[node]["executions"], perf[node]["failures"]), shown
    assert shown["avg-ms"] == pytest.approx(perf[node]["avg_ms"], abs=0.01)
    assert perf[node]["min_ms"] <= shown["p95-ms"] <= perf[node]["max_ms"]
    await shot(page, f"run-node-tokens-e{epoch}")

    edge = max(dag["edges"], key=lambda e: e["tokenCount"])["edge"]
    await page.locator(f'[data-edge-id="{edge["edgeId"]}"] .hit').dispatch_event("click")
    await panel.get_by_text(f"through edge {edge['label']}").first.wait_for()
    first = panel.locator("[data-pick-token-id]").first
    await first.wait_for()
    token = await first.get_attribute("data-pick-token-id")
    await first.click()
    await page.locator(f'[data-graph] [data-token-id="{token}"]').wait_for()
    assert page.url.endswith(f"#/run/{run}/token/{token}")
    offline(page)


async def test_search_finds_tokens_rows_runs_and_row_indexes(page: Any, servers: Servers) -> None:
    url = servers.fixture(29, "llm-calls")
    case = truth(29, "llm-calls")["runs"][0]["cases"]["with_calls"]
    run = truth(29, "llm-calls")["runs"][0]["run_id"]
    await page.goto(f"{url}/viewer")
    await page.locator("[data-run-id]").first.wait_for()
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.id") == "q"
    status = page.locator("#status")
    for query, expected_url, said in (
            (case["token_id"], f"#/run/{run}/token/{case['token_id']}", f"Found token {case['token_id']}"),
            (case["row_id"], f"#/run/{run}/row/{case['row_id']}", f"Found row {case['row_id']}"),
            (run, f"#/run/{run}", f"Found run {run}"),
            (str(case["row_index"]), f"#/run/{run}/row/{case['row_id']}", f"(index {case['row_index']})")):
        await page.fill("#q", query)
        await page.press("#q", "Enter")
        await page.wait_for_url(f"**/viewer{expected_url}")
        await page.locator("[data-node-id], [data-graph] [data-token-id]").first.wait_for()
        assert page.url.endswith(expected_url), said
    await page.fill("#q", "ab" * 16)
    await page.press("#q", "Enter")
    await status.get_by_text("Nothing found").wait_for()
    offline(page)


# ----------------------------------------------------------------------------- lineage and details


@pytest.mark.parametrize("epoch", [2, 29])
async def test_a_batch_output_draws_every_member_inside_the_panel(page: Any, servers: Servers, epoch: int) -> None:
    url = servers.fixture(epoch, "expand-aggregate")
    cases = truth(epoch, "expand-aggregate")["runs"][0]["cases"]
    output = cases["batch_output_child"]["token_id"]
    walk = gql(url, """query ($t: String!) { token(tokenId: $t) { runId ancestors(maxDepth: 1) {
        edges { parentTokenId kind } } } }""", {"t": output})["token"]
    members = {e["parentTokenId"] for e in walk["ancestors"]["edges"] if e["kind"] == "BATCH"}
    assert len(members) == 5
    await lineage(page, url, walk["runId"], output)
    drawn = await assert_geometry(page, 6)
    assert members <= {b["id"] for b in drawn}
    batch_edges = await page.eval_on_selector_all(
        f'[data-edge-kind="BATCH"][data-child-token-id="{output}"]', "els => els.map(e => e.dataset.parentTokenId)")
    assert set(batch_edges) == members
    await axe_clean(page)
    await shot(page, f"lineage-batch-e{epoch}")
    offline(page)


async def test_a_25_wide_expansion_groups_pages_and_searches(page: Any, shapes: dict[str, Any]) -> None:
    s = shapes["wide25"]
    await lineage(page, s["url"], s["run"], s["wide_fan_root"])
    await assert_geometry(page, 20)
    group = page.locator("[data-graph] [data-group-total]")
    assert await group.get_attribute("data-group-total") == "25"
    assert await group.get_attribute("data-group-shown") == "20"
    first_page = await drawn_tokens(page)
    await group.locator('.pager[data-page="1"]').click()
    await page.locator('[data-graph] [data-group-shown="5"]').wait_for()
    second_page = await drawn_tokens(page)
    assert len(second_page - first_page) == 5 and s["wide_fan_root"] in second_page
    await assert_geometry(page, 5)
    # Search inside the group: one child by its id.
    target = sorted(second_page - {s["wide_fan_root"]})[0]
    await page.locator("[data-graph] [data-group-total]").click()
    await page.fill("#group-search", target[:12])
    await page.press("#group-search", "Enter")
    await page.locator(f'[data-graph] [data-token-id="{target}"]').wait_for()
    await shot(page, "lineage-wide25")
    offline(page)


async def test_a_1000_wide_expansion_is_drawn_as_a_group(page: Any, shapes: dict[str, Any]) -> None:
    s = shapes["wide1000"]
    await lineage(page, s["url"], s["run"], s["wide_fan_root"])
    await assert_geometry(page, 21)
    group = page.locator("[data-graph] [data-group-total]")
    assert (await group.get_attribute("data-group-total"), await group.get_attribute("data-group-shown")) == ("1000", "20")
    await axe_clean(page)
    await shot(page, "lineage-wide1000")
    # From a child: its one parent, and the "+" shows there is more to see.
    await lineage(page, s["url"], s["run"], s["wide_fan_child"])
    await assert_geometry(page, 2)
    offline(page)


@pytest.fixture(scope="module")
def wide2100(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> dict[str, Any]:
    """The generator's wide fan with 2,100 children: more than the 2,000-token guard once drawn whole."""
    report = generate(tmp_path_factory.mktemp("viewer-guard") / "wide2100.db", epoch=29, rows=2100, seed=5,
                      shape="wide_fan")
    return {"url": servers.database(str(report.db_path), report.payload_dir), "run": report.run_ids[0],
            **report.tokens}


async def test_more_than_2000_drawn_tokens_give_a_summary_and_ask_to_narrow(
        page: Any, wide2100: dict[str, Any]) -> None:
    s = wide2100
    url, run, root = s["url"], s["run"], s["wide_fan_root"]
    children = gql(url, "query ($t: String!) { token(tokenId: $t) { children { tokenId } } }", {"t": root})
    assert len(children["token"]["children"]) == 2100
    # By default the fan is a group (20 of 2100 shown): far below the guard.
    await lineage(page, url, run, root)
    assert len(await drawn_tokens(page)) == 21
    assert await page.locator("[data-graph] [data-group-total]").get_attribute("data-group-total") == "2100"
    # group=5000 draws levels whole: 2,101 tokens, so the page summarises and asks to narrow instead.
    await page.goto("about:blank")
    await page.goto(f"{url}/viewer#/run/{run}/token/{root}?group=5000")
    guard = page.locator(".lineage-page .guard[role=alert]")
    await guard.wait_for()
    text = await guard.inner_text()
    assert "would draw 2101 tokens (more than 2000)" in text and "Narrow it" in text and "group=5000" in text, text
    assert (await page.locator("#lineage-summary").inner_text()).startswith("2101 tokens in this view (not drawn)")
    assert await page.locator("[data-graph]").count() == 0
    assert await page.locator("[data-token-id]").count() == 0
    await axe_clean(page)
    await shot(page, "lineage-guard")
    # Lowering the group width again (as the message says) draws the group; "Draw anyway" draws all.
    await page.goto("about:blank")
    await page.goto(f"{url}/viewer#/run/{run}/token/{root}?group=20")
    await page.locator(f'[data-graph] [data-token-id="{root}"]').wait_for()
    assert await page.locator(".guard").count() == 0
    await page.goto("about:blank")
    await page.goto(f"{url}/viewer#/run/{run}/token/{root}?group=5000")
    await guard.get_by_role("button", name="Draw anyway").click()
    await page.locator(f'[data-graph] [data-token-id="{root}"]').wait_for()
    assert await page.locator(".guard").count() == 0
    assert await page.locator("[data-graph] [data-group-total]").count() == 0
    await assert_geometry(page, 2)
    offline(page)


async def test_a_50_deep_chain_expands_and_collapses(page: Any, shapes: dict[str, Any]) -> None:
    s = shapes["deep50"]
    leaf = s["deep_chain_leaf"]
    await lineage(page, s["url"], s["run"], leaf, "?depth=50&dir=up")
    await assert_geometry(page, 3)
    await shot(page, "lineage-deep50")
    await page.locator(".lineage-page [data-graph]").focus()
    await page.keyboard.press("0")  # fit: the whole chain, too small to read: boxes painted on a canvas
    far = page.locator(".lineage-page [data-graph].lod-far canvas.far-canvas[data-far-drawn]")
    await far.wait_for()
    panel = await page.locator(".lineage-page [data-graph]").bounding_box()
    canvas = await far.bounding_box()
    assert panel is not None and canvas is not None
    # The canvas lies on the panel (inside its border), and every box of the chain is in it.
    assert panel["x"] <= canvas["x"] and canvas["x"] + canvas["width"] <= panel["x"] + panel["width"], (canvas, panel)
    assert panel["y"] <= canvas["y"] and canvas["y"] + canvas["height"] <= panel["y"] + panel["height"], (canvas, panel)
    assert await far.get_attribute("data-far-drawn") == "51"
    assert 1 <= int(await far.get_attribute("data-far-painted") or 0) <= 51
    # ...and painted: pixels of the boxes' tone where the fitted chain is (not a blank canvas).
    inked = await far.evaluate("""(c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    }""")
    assert inked > 500, inked
    assert await page.locator(".lineage-page [data-graph] [data-token-id]").count() == 0
    for _ in range(8):  # zoom in until boxes are drawn one by one again
        await page.keyboard.press("=")
    await page.locator("[data-graph] [data-token-id]").first.wait_for()
    await assert_geometry(page, 2)

    await lineage(page, s["url"], s["run"], leaf, "?dir=up")
    assert len(await drawn_tokens(page)) == 3
    outer = page.locator("[data-graph] [data-expand]")
    assert await outer.count() == 1
    await outer.click()
    await page.wait_for_function("() => document.querySelectorAll('[data-graph] [data-token-id]').length === 4")
    await assert_geometry(page, 4)

    # Collapse the leaf's ancestry (URL: collapsed=), then expand it again.
    await page.locator(f'[data-graph] [data-token-id="{leaf}"]').click()
    await page.locator("#collapse-toggle").click()
    await page.wait_for_url(f"**collapsed={leaf}*")
    await page.locator('[data-graph] [data-group-shown="0"]').wait_for()
    assert await drawn_tokens(page) == {leaf}
    await page.go_back()
    await page.wait_for_function("() => document.querySelectorAll('[data-graph] [data-token-id]').length >= 3")
    offline(page)


async def test_selection_highlights_paths_and_the_keyboard_walks_edges(page: Any, servers: Servers) -> None:
    url = servers.fixture(29, "fork-coalesce")
    cases = truth(29, "fork-coalesce")["runs"][0]["cases"]
    merged = cases["coalesced_multi_parent"]["token_id"]
    run = truth(29, "fork-coalesce")["runs"][0]["run_id"]
    await lineage(page, url, run, merged)
    await assert_geometry(page, 3)
    drawn = await drawn_tokens(page)
    graph = page.locator(".lineage-page [data-graph]")
    await graph.focus()
    await page.keyboard.press("ArrowLeft")  # to a parent
    await page.wait_for_url("**sel=*")
    parent = page.url.split("sel=")[1].split("&")[0]
    edges = await page.eval_on_selector_all(
        f'[data-child-token-id="{merged}"]', "els => els.map(e => e.dataset.parentTokenId)")
    assert parent in edges
    # Its paths: itself, its ancestors, and the merged token's side; a sibling branch is dimmed.
    lit = set(await page.eval_on_selector_all("[data-graph] .lit[data-token-id]", "els => els.map(e => e.dataset.tokenId)"))
    assert parent in lit and merged in lit and lit < drawn
    assert await page.locator("[data-graph].has-path").count() == 1
    await page.keyboard.press("ArrowDown")
    sibling = page.url.split("sel=")[1].split("&")[0]
    assert sibling != parent and sibling in edges
    await page.keyboard.press("ArrowRight")
    assert page.url.split("sel=")[1].split("&")[0] == merged
    await page.keyboard.press("Enter")
    panel = page.locator("[data-panel]")
    await panel.get_by_text("Node states").wait_for()
    assert merged in await panel.inner_text()
    await page.keyboard.press("Escape")
    assert await panel.is_hidden()
    await shot(page, "lineage-keyboard")
    offline(page)


async def test_deep_links_reload_and_back_forward(page: Any, servers: Servers) -> None:
    url = servers.fixture(2, "fork-coalesce")
    cases = truth(2, "fork-coalesce")["runs"][0]["cases"]
    run = truth(2, "fork-coalesce")["runs"][0]["run_id"]
    token = cases["coalesced_multi_parent"]["token_id"]
    parent = cases["coalesced_multi_parent"]["parents"][0]["token_id"]
    await lineage(page, url, run, token, f"?depth=3&dir=up&sel={parent}")
    assert await page.locator(f'[data-graph] .selected[data-token-id="{parent}"]').count() == 1
    await page.reload()
    await page.locator(f'[data-graph] .selected[data-token-id="{parent}"]').wait_for()
    assert await page.locator('[data-dir="up"][aria-pressed="true"]').count() == 1
    assert await page.input_value("#depth") == "3"
    await page.locator('[data-dir="both"]').click()
    await page.wait_for_url("**depth=3&sel=*")
    await page.go_back()
    await page.wait_for_url("**dir=up*")
    await page.locator('[data-dir="up"][aria-pressed="true"]').wait_for()
    await page.go_forward()
    await page.locator('[data-dir="both"][aria-pressed="true"]').wait_for()
    count = int((await page.locator("#lineage-summary").inner_text()).split(" token")[0])
    await page.locator("#table-toggle").click()
    rows = page.locator("#lineage-table tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == count >= 3
    assert {parent, token} <= set(await page.eval_on_selector_all(
        "#lineage-table tbody tr", "els => els.map(e => e.dataset.rowTokenId)"))
    await axe_clean(page)
    await shot(page, "lineage-table")
    offline(page)


@pytest.mark.parametrize("epoch", [2, 29])
async def test_a_forks_expected_branches_beside_the_arrived_ones(
        page: Any, servers: Servers, fixture_copies: Path, epoch: int) -> None:
    url = servers.fixture(epoch, "fork-coalesce")
    db = fixture_copies / f"epoch{epoch}" / "fork-coalesce.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        forks = [r[0] for r in con.execute("SELECT token_id FROM token_outcomes WHERE expected_branches_json IS NOT NULL"
                                           " ORDER BY token_id")]
        lost = {r[0] for r in con.execute("SELECT token_id FROM coalesce_branch_losses")} if epoch == 29 else set()
    lineage_q = """query ($t: String!) { token(tokenId: $t) { runId outcomes { expectedBranches }
        children { tokenId branchName } descendants(maxDepth: 2) { edges { parentTokenId kind } } } }"""
    seen: set[str] = set()
    required = {"all"} if epoch == 2 else {"all", "lost"}
    for fork in forks:
        if seen >= required:
            break
        tok = gql(url, lineage_q, {"t": fork})["token"]
        # Arrived, independently of the page: branch tokens that are the parent of a COALESCE edge.
        arrived = {e["parentTokenId"] for e in tok["descendants"]["edges"] if e["kind"] == "COALESCE"}
        by_branch = {c["branchName"]: c["tokenId"] for c in tok["children"]}
        expected = {b: str(by_branch[b] in arrived).lower() for b in tok["outcomes"][0]["expectedBranches"]}
        kind = "all" if all(v == "true" for v in expected.values()) else "lost" if lost & set(by_branch.values()) else "some"
        if kind in seen or (kind == "some" and epoch == 29):
            continue
        seen.add(kind)
        await lineage(page, url, tok["runId"], fork)
        await page.locator(f'[data-graph] [data-token-id="{fork}"]').click()
        rows = page.locator("[data-panel] #branches tbody tr")
        await rows.first.wait_for()
        shown = await rows.evaluate_all("els => Object.fromEntries(els.map(e => [e.dataset.branch, e.dataset.arrived]))")
        assert shown == expected, (fork, shown, expected)
        heading = await page.locator("[data-panel] h3", has_text="expected against arrived").inner_text()
        assert f"{sum(v == 'true' for v in expected.values())} of {len(expected)} arrived" in heading
        if kind == "all":
            # The merged token lists the branches that arrived.
            merged = gql(url, "query ($t: String!) { token(tokenId: $t) { children { children { tokenId joinGroupId } } } }",
                         {"t": fork})["token"]["children"][0]["children"][0]["tokenId"]
            await lineage(page, url, tok["runId"], merged)
            await page.locator(f'[data-graph] [data-token-id="{merged}"]').click()
            listed = page.locator('[data-panel] li[data-arrived="true"]')
            await listed.first.wait_for()
            assert sorted(await listed.evaluate_all("els => els.map(e => e.dataset.branch)")) == sorted(expected)
        else:
            await axe_clean(page)
            await shot(page, f"lineage-branches-e{epoch}")
    assert seen >= required, seen
    offline(page)


async def test_an_llm_calls_request_and_response_in_the_panel(page: Any, servers: Servers) -> None:
    url = servers.fixture(29, "llm-calls")
    case = truth(29, "llm-calls")["runs"][0]["cases"]["with_calls"]
    run = truth(29, "llm-calls")["runs"][0]["run_id"]
    llm = next(c for c in case["calls"] if c["call_type"] == "llm")
    await lineage(page, url, run, case["token_id"])
    await page.locator(f'[data-graph] [data-token-id="{case["token_id"]}"]').click()
    call = page.locator(f'[data-panel] [data-call-id="{llm["call_id"]}"]')
    await call.locator("summary").click()
    request = call.locator('[data-payload-state="AVAILABLE"]').first
    await request.wait_for()
    assert await call.locator("[data-payload-state]").count() == 2
    text = await call.inner_text()
    assert case["source_data"]["text"] in text.replace("\\", "")  # the prompt quotes the row
    response = gql(url, 'query ($c: String!) { call(callId: $c) { response { json text } } }', {"c": llm["call_id"]})
    body = response["call"]["response"]
    answer = json.dumps(body["json"], indent=2) if body["json"] is not None else body["text"]
    assert answer.splitlines()[1].strip() in text
    await axe_clean(page)
    await call.locator("[data-payload-state] h4").nth(1).scroll_into_view_if_needed()
    await shot(page, "lineage-llm-call")
    offline(page)


async def test_a_purged_payload_shows_as_purged(page: Any, servers: Servers, tmp_path: Path) -> None:
    store = tmp_path / "payloads"
    shutil.copytree(payload_dir(29, "llm-calls"), store)
    case = truth(29, "llm-calls")["runs"][0]["cases"]["with_calls"]
    run = truth(29, "llm-calls")["runs"][0]["run_id"]
    url = servers.fixture(29, "llm-calls", payloads=store)
    ref = gql(url, 'query ($r: String!) { row(rowId: $r) { sourceDataRef } }', {"r": case["row_id"]})["row"]["sourceDataRef"]
    victims = [p for p in store.rglob("*") if p.is_file() and p.name in ref]
    assert len(victims) == 1
    victims[0].unlink()
    await lineage(page, url, run, case["token_id"])
    await page.locator(f'[data-graph] [data-token-id="{case["token_id"]}"]').click()
    await page.locator("[data-panel] details.data summary").click()
    await page.locator('[data-panel] [data-payload-state="PURGED"]').wait_for()
    assert "PURGED" in await page.locator('[data-panel] [data-payload-state="PURGED"]').inner_text()
    await shot(page, "lineage-purged")
    offline(page)


async def test_exports_and_the_authorization_header(page: Any, servers: Servers) -> None:
    url = servers.fixture(29, "expand-aggregate")
    output = truth(29, "expand-aggregate")["runs"][0]["cases"]["batch_output_child"]["token_id"]
    run = truth(29, "expand-aggregate")["runs"][0]["run_id"]
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")) if r.url.endswith("/graphql") else None)
    await page.goto(f"{url}/viewer")
    await page.locator("details.auth summary").click()
    await page.fill("#authorization", "Bearer not-a-real-token")
    sent.clear()
    await page.evaluate(f"location.hash = '#/run/{run}/token/{output}'")
    await page.locator(f'[data-graph] [data-token-id="{output}"]').wait_for()
    assert sent and all(h == "Bearer not-a-real-token" for h in sent)
    storage = await page.evaluate("JSON.stringify([localStorage, sessionStorage, document.cookie])")
    assert "not-a-real-token" not in storage and "not-a-real-token" not in page.url
    got = {}
    for fmt in ("svg", "png", "json", "mermaid"):
        async with page.expect_download() as info:
            await page.locator(f'[data-export="{fmt}"]').click()
        download = await info.value
        got[fmt] = Path(await download.path()).read_bytes()
    svg = got["svg"].decode()
    assert "<title>Lineage of token" in svg and f"Run {run}" in svg and output in svg
    assert got["png"].startswith(b"\x89PNG")
    assert json.loads(got["json"])["data"]["token"]["tokenId"] == output
    assert got["mermaid"].decode().startswith("flowchart LR") and "BATCH" in got["mermaid"].decode()
    offline(page)


@pytest.mark.postgres
async def test_the_viewer_on_postgresql(page: Any, pg_databases: dict[tuple[int, str], str],
                                        servers: Servers) -> None:
    url = servers.database(pg_databases[PG_DUMP], FIXTURES / "epoch29" / "pg-fork-coalesce.payloads")
    run = truth(*PG_DUMP)["runs"][0]["run_id"]
    token = truth(*PG_DUMP)["runs"][0]["cases"]["coalesced_multi_parent"]["token_id"]
    await page.goto(f"{url}/viewer#/run/{run}")
    await page.locator("[data-node-id]").first.wait_for()
    await lineage(page, url, run, token)
    await assert_geometry(page, 3)
    await shot(page, "lineage-postgresql")
    offline(page)


async def test_a_running_run_says_so_and_refreshes(page: Any, servers: Servers, tmp_path: Path) -> None:
    report = generate(tmp_path / "mixed.db", epoch=2, rows=30, seed=2, shape="mixed")
    url = servers.database(str(report.db_path), report.payload_dir)
    running = gql(url, "{ runs(first: 50, filter: {statuses: [RUNNING]}) { nodes { runId } } }")["runs"]["nodes"]
    assert len(running) == 1
    run = running[0]["runId"]
    await page.goto(f"{url}/viewer")
    row = page.locator(f'[data-run-id="{run}"]')
    await row.wait_for()
    assert "RUNNING" in await row.inner_text() and "running" in await row.inner_text()
    await row.locator("a").click()
    await page.locator("[data-node-id]").first.wait_for()
    queries: list[str] = []
    page.on("request", lambda r: queries.append(json.loads(r.post_data or "{}").get("query", "")[:20])
            if r.url.endswith("/graphql") else None)
    await page.get_by_role("button", name="Refresh").click()
    await page.wait_for_function("() => true")
    await page.locator("[data-node-id]").first.wait_for()
    await page.locator("#auto-refresh").check()
    async with page.expect_request(lambda r: r.url.endswith("/graphql"), timeout=8000):
        pass
    assert sum(q.startswith("query ViewerRun(") for q in queries) >= 2
    await page.locator("#auto-refresh").uncheck()
    await shot(page, "run-running")
    offline(page)


async def test_path_to_another_token(page: Any, servers: Servers) -> None:
    url = servers.fixture(29, "fork-coalesce")
    cases = truth(29, "fork-coalesce")["runs"][0]["cases"]
    run = truth(29, "fork-coalesce")["runs"][0]["run_id"]
    merged = cases["coalesced_multi_parent"]["token_id"]
    branch = cases["coalesced_multi_parent"]["parents"][1]["token_id"]
    path = gql(url, 'query ($a: String!, $b: String!) { lineagePath(fromTokenId: $a, toTokenId: $b) { tokens { tokenId } } }',
               {"a": branch, "b": merged})["lineagePath"]["tokens"]
    await lineage(page, url, run, merged)
    await page.locator(f'[data-graph] [data-token-id="{merged}"]').click()
    form = page.locator("[data-panel] form.path-to")
    await form.locator("input").fill(branch)
    await form.locator("button").click()
    await page.locator("#status").get_by_text(f"Path of {len(path)} tokens").wait_for()
    lit = set(await page.eval_on_selector_all("[data-graph] .lit[data-token-id]", "els => els.map(e => e.dataset.tokenId)"))
    assert lit == {t["tokenId"] for t in path}, (lit, path, branch, merged)
    offline(page)
