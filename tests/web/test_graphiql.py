"""GraphiQL: the page, its routes, the vendored bundle's provenance, and a real browser run."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, parse, validate
from graphql.language import StringValueNode, visit
from graphql.language.visitor import Visitor
from starlette.applications import Starlette
from starlette.requests import Request

from landscape_graphql.web import (
    EXAMPLE_QUERIES,
    example_queries,
    graphiql_html,
    graphiql_routes,
    wants_graphiql,
)
from landscape_graphql.web._common import STATIC_ROOT

from . import _standin
from .conftest import SCREENSHOTS

REPO = Path(__file__).resolve().parents[2]
GRAPHIQL_DIR = STATIC_ROOT / "graphiql"


def page_config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="graphiql-config">(.*?)</script>', html, re.S)
    assert match, "the page carries no settings block"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- the page


def test_page_posts_to_the_given_path_with_one_tab_per_example() -> None:
    examples = [("First", "query A { landscape { epoch } }"), ("Second", "query B { landscape { backend } }")]
    config = page_config(graphiql_html("/api/graphql", examples))
    assert config["graphqlPath"] == "/api/graphql"
    assert [t["query"] for t in config["tabs"]] == [q for _t, q in examples]


def test_page_links_to_the_viewer_only_when_given_its_path() -> None:
    assert page_config(graphiql_html("/graphql", EXAMPLE_QUERIES))["viewerPath"] is None
    assert page_config(graphiql_html("/graphql", EXAMPLE_QUERIES, viewer_path="/viewer"))["viewerPath"] == "/viewer"
    with pytest.raises(ValueError):
        graphiql_html("/graphql", EXAMPLE_QUERIES, viewer_path="https://elsewhere.example/viewer")


def test_settings_cannot_break_out_of_their_script_block() -> None:
    hostile = "query X { landscape { epoch } } # </script><script>alert(1)</script><!--"
    html = graphiql_html("/graphql", [("t", hostile)])
    assert "<script>alert(1)" not in html
    assert html.count("</script>") == 2  # the settings block and the bundle's tag, nothing more
    assert page_config(html)["tabs"][0]["query"] == hostile


@pytest.mark.parametrize("path", ["https://elsewhere.example/graphql", "//elsewhere.example/graphql",
                                  "graphql", "/graph ql", "\\\\host\\graphql"])
def test_only_a_path_on_this_server_is_accepted(path: str) -> None:
    with pytest.raises(ValueError, match="absolute path on this server"):
        graphiql_html(path, EXAMPLE_QUERIES)


def test_page_has_a_policy_that_keeps_the_browser_on_this_server() -> None:
    html = graphiql_html("/graphql", EXAMPLE_QUERIES)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy
    for directive in ("default-src 'none'", "script-src 'self'", "connect-src 'self'"):
        assert directive in html_lib.unescape(policy.group(1))


def _string_literals(query: str) -> list[str]:
    found: list[str] = []

    class Strings(Visitor):
        def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
            found.append(node.value)

    visit(parse(query), Strings())
    return found


def test_example_ids_are_quoted_whatever_they_contain() -> None:
    odd = 'ab"c\\d\n'
    for _title, query in example_queries(run_id=odd, row_id=odd, token_id=odd, sink=odd):
        assert all(value == odd for value in _string_literals(query)), query


def _standin_schema() -> GraphQLSchema:
    return _standin.schema._schema


@pytest.mark.parametrize(("title", "query"), EXAMPLE_QUERIES, ids=[t for t, _q in EXAMPLE_QUERIES])
def test_examples_are_valid_against_the_api_field_names(title: str, query: str) -> None:
    assert validate(_standin_schema(), parse(query)) == []


def test_examples_run_and_answer() -> None:
    ids = example_queries(run_id=_standin.RUN_ID, row_id=_standin.ROW_ID, token_id=_standin.MERGED)
    for title, query in ids:
        body = _standin.execute(query, None, None)
        assert "errors" not in body, (title, body)
        assert body["data"], title


def test_examples_are_valid_against_the_real_schema() -> None:
    from landscape_graphql.schema import build_schema

    schema = build_schema()._schema
    for title, query in EXAMPLE_QUERIES:
        assert validate(schema, parse(query)) == [], title


@pytest.mark.parametrize(("method", "accept", "expected"), [
    ("GET", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser
    ("GET", "*/*", False),                                                              # curl
    ("GET", "application/json", False),
    ("POST", "text/html", False),
])
def test_only_a_browser_navigation_gets_graphiql(method: str, accept: str, expected: bool) -> None:
    scope = {"type": "http", "method": method, "headers": [(b"accept", accept.encode())], "path": "/graphql"}
    assert wants_graphiql(Request(scope)) is expected


# ------------------------------------------------------------------------------- the routes


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=graphiql_routes("/graphql", examples=EXAMPLE_QUERIES))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_routes_serve_the_page_and_its_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphiql")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assets = re.findall(r'(?:src|href)="(/static/graphiql/[^"]+)"', page.text)
    assert len(assets) == 2
    for url in assets:
        response = await client.get(url.replace("&amp;", "&"))
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        assert "immutable" in response.headers["cache-control"]  # versioned by content hash
        assert response.headers["x-content-type-options"] == "nosniff"
    unversioned = await client.get("/static/graphiql/graphiql.js")
    assert unversioned.headers["cache-control"] == "no-cache"


async def test_static_mount_serves_nothing_outside_its_folder(client: httpx.AsyncClient) -> None:
    for url in ("/static/graphiql/../viewer/main.js", "/static/graphiql/%2e%2e/viewer/main.js",
                "/static/graphiql/nope.js"):
        assert (await client.get(url)).status_code == 404, url


def test_page_route_can_be_left_to_the_graphql_path() -> None:
    routes = graphiql_routes("/graphql", examples=EXAMPLE_QUERIES, page_path=None)
    assert [getattr(r, "path", None) for r in routes] == ["/static/graphiql"]


# ------------------------------------------------------------------------------- provenance


def test_vendored_bundle_matches_the_pinned_versions() -> None:
    pins = json.loads((REPO / "web" / "package.json").read_text())
    lock = json.loads((REPO / "web" / "package-lock.json").read_text())
    versions = (GRAPHIQL_DIR / "VERSIONS.txt").read_text()
    # The viewer's pins (dagre; axe-core for its tests) are checked in tests/web/test_viewer.py.
    viewer = {"@dagrejs/dagre", "axe-core"}
    for name, version in {**pins["dependencies"], **pins["devDependencies"]}.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned exactly: {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
        if name in viewer:
            continue
        assert f"  {name} {version}\n" in versions, name
        if name in pins["dependencies"]:
            assert f"  {name}@{version} " in versions, f"{name} {version} is not in the bundle"


def test_every_bundled_package_has_its_licence_beside_the_assets() -> None:
    versions = (GRAPHIQL_DIR / "VERSIONS.txt").read_text()
    section = versions.split("Packages whose code is in the bundle", 1)[1].split("Built files", 1)[0]
    bundled = re.findall(r"^  (\S+@\S+)\s", section, re.M)
    assert len(bundled) > 20
    for package in bundled:
        licence = GRAPHIQL_DIR / "licenses" / f"{package.replace('/', '__')}.txt"
        assert licence.is_file() and licence.stat().st_size > 0, package


def test_built_files_are_the_ones_versions_txt_describes() -> None:
    import hashlib

    listed = dict(re.findall(r"^  ([0-9a-f]{64})  (\S+)$", (GRAPHIQL_DIR / "VERSIONS.txt").read_text(), re.M)[::1])
    by_name = {name: digest for digest, name in listed.items()}
    assert set(by_name) == {"graphiql.js", "graphiql.css"}
    for name, digest in by_name.items():
        assert hashlib.sha256((GRAPHIQL_DIR / name).read_bytes()).hexdigest() == digest, (
            f"{name} differs from the build VERSIONS.txt records: rebuild with scripts/refresh-web-assets.sh")


def test_vendored_assets_stay_small() -> None:
    total = sum(p.stat().st_size for p in GRAPHIQL_DIR.rglob("*") if p.is_file())
    assert total < 4 * 1024 * 1024, f"{total / 1e6:.1f} MB of vendored GraphiQL"


# ------------------------------------------------------------------------------- in a browser


async def _editor_text(page: Any, selector: str) -> str:
    return str(await page.evaluate(
        "sel => { const cm = document.querySelector(sel + ' .CodeMirror'); return cm ? cm.CodeMirror.getValue() : ''; }",
        selector))


@pytest.mark.browser
async def test_graphiql_runs_the_prefilled_and_a_typed_query_offline(page: Any, live_server: Any) -> None:
    await page.goto(f"{live_server.url}/graphql")  # a browser navigation: Accept: text/html
    await page.wait_for_selector(".graphiql-container .graphiql-query-editor .CodeMirror")

    tabs = await page.locator(".graphiql-tab").all_inner_texts()
    assert [t.strip() for t in tabs] == ["AboutThisLandscape", "TokenLineage", "ExplainRow", "RunTokens"]
    assert await page.get_by_role("button", name="Show GraphiQL Explorer").count() == 1  # the plugin
    assert await page.get_by_role("link", name="Lineage viewer").get_attribute("href") == "/viewer"

    # The headers editor is how a user sends credentials; what they type must reach the server.
    await page.locator(".graphiql-editor-tool .CodeMirror:visible").click()  # the Headers tab is open
    await page.keyboard.insert_text('{"Authorization": "Bearer from-the-headers-pane"}')
    seen_before = len(live_server.seen.authorization)

    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    await page.wait_for_function(
        "() => (document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() || '').includes('elspethVersion')")
    result = json.loads(await _editor_text(page, ".result-window"))
    assert result["data"]["landscape"] == {"epoch": 29, "backend": "sqlite", "elspethVersion": "0.7.1"}
    assert live_server.seen.authorization[seen_before:][-1] == "Bearer from-the-headers-pane"
    assert live_server.seen.content_types[-1].startswith("application/json")

    # A person typing a new query and running it with the keyboard.
    await page.locator(".graphiql-query-editor .CodeMirror").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    typed = f'query Typed {{ token(tokenId: "{_standin.MERGED}") {{ tokenId branchName parents {{ tokenId }} }} }}'
    await page.keyboard.insert_text(typed)
    assert await _editor_text(page, ".graphiql-query-editor") == typed
    # GraphiQL reads the operation name from the editor a moment after each edit, as does the tab.
    await page.locator(".graphiql-tab-active", has_text="Typed").wait_for()
    await page.get_by_role("button", name="Prettify query (Shift-Ctrl-P)").click()
    await page.wait_for_function(
        "() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.lineCount() > 1")
    await page.locator(".graphiql-query-editor .CodeMirror").click()
    await page.keyboard.press("Control+Enter")
    await page.wait_for_function(
        "id => (document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() || '').includes(id)",
        arg=_standin.MERGED)
    result = json.loads(await _editor_text(page, ".result-window"))
    assert result["data"]["token"]["tokenId"] == _standin.MERGED
    assert len(result["data"]["token"]["parents"]) == 3
    await page.wait_for_timeout(300)  # let the result pane finish painting for the screenshot
    await page.screenshot(path=str(SCREENSHOTS / "landscape-graphiql.png"))

    # The schema was introspected through the same fetcher: the docs explorer knows Query.
    await page.get_by_role("button", name="Show Documentation Explorer").click()
    docs = page.locator(".graphiql-doc-explorer")
    await docs.get_by_text("Query", exact=True).first.click()
    await docs.get_by_text("explain", exact=True).first.wait_for()
    await page.screenshot(path=str(SCREENSHOTS / "landscape-graphiql-docs.png"))

    # The explorer plugin builds queries from the same schema.
    await page.get_by_role("button", name="Show GraphiQL Explorer").click()
    await page.locator(".graphiql-explorer-root, .docExplorerWrap").first.get_by_text("landscape").first.wait_for()
    await page.screenshot(path=str(SCREENSHOTS / "landscape-graphiql-explorer.png"))

    assert page.traffic.blocked == [], "GraphiQL tried to reach outside this machine"
    assert page.traffic.page_errors == []
    assert [e for e in page.traffic.console_errors if "Content Security Policy" in e] == []
    assert all(u.startswith((live_server.url, "data:")) for u in page.traffic.requested), page.traffic.requested
