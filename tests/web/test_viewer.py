"""The lineage viewer's page, queries, routes and vendored layout module (no browser here; the
browser tests are in test_viewer_app.py)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, validate
from starlette.applications import Starlette

from landscape_graphql.web import viewer_html, viewer_routes
from landscape_graphql.web._common import STATIC_ROOT
from landscape_graphql.web.viewer import QUERIES

VIEWER_DIR = STATIC_ROOT / "viewer"
OWN_MODULES = sorted(p for p in VIEWER_DIR.glob("*.js"))
REPO = Path(__file__).resolve().parents[2]


def viewer_config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="viewer-config">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def test_page_carries_its_graphql_path_and_queries() -> None:
    config = viewer_config(viewer_html("/api/graphql"))
    assert config["graphqlPath"] == "/api/graphql"
    assert config["queries"] == QUERIES
    assert 'href="/api/graphql"' in viewer_html("/api/graphql")  # the GraphiQL link


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_are_valid_against_the_real_schema(name: str) -> None:
    from landscape_graphql.schema import build_schema

    assert validate(build_schema()._schema, parse(QUERIES[name])) == []


def test_every_query_the_scripts_send_is_declared() -> None:
    sent = set()
    for module in OWN_MODULES:
        sent |= set(re.findall(r"graphql\('(\w+)'", module.read_text()))
    assert sent == set(QUERIES)


def test_scripts_never_parse_data_as_markup() -> None:
    # Branch names, node ids, prompts and answers come from the audit data: one innerHTML with
    # them would let a crafted pipeline run script in an auditor's browser.
    for module in OWN_MODULES:
        code = re.sub(r"^\s*//.*$", "", module.read_text(), flags=re.M)
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "localStorage", "sessionStorage", "document.cookie"):
            assert sink not in code, (module.name, sink)


def test_modules_stay_small_and_import_only_each_other() -> None:
    for module in OWN_MODULES:
        text = module.read_text()
        assert len(text.splitlines()) < 500, module.name
        for target in re.findall(r"^import .* from '([^']+)';", text, re.M):
            assert target.startswith("./") and (VIEWER_DIR / target).is_file(), (module.name, target)


def test_vendored_dagre_is_the_pinned_file() -> None:
    versions = (VIEWER_DIR / "VERSIONS.txt").read_text()
    pins = json.loads((REPO / "web" / "package.json").read_text())
    lock = json.loads((REPO / "web" / "package-lock.json").read_text())
    assert pins["dependencies"]["@dagrejs/dagre"] == "3.1.3"
    assert lock["packages"]["node_modules/@dagrejs/dagre"]["version"] == "3.1.3"
    assert "  @dagrejs/dagre 3.1.3\n" in versions
    listed = dict((name, digest) for digest, name in re.findall(r"^  ([0-9a-f]{64})  (\S+)$", versions, re.M))
    assert set(listed) == {"vendor/dagre.esm.js"}
    for name, digest in listed.items():
        assert hashlib.sha256((VIEWER_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "Permission is hereby granted, free of charge" in (VIEWER_DIR / "licenses" / "@dagrejs__dagre@3.1.3.txt").read_text()
    assert "sourceMappingURL" not in (VIEWER_DIR / "vendor" / "dagre.esm.js").read_text()


def test_vendored_axe_is_the_pinned_file() -> None:
    vendor = Path(__file__).parent / "vendor"
    digest = re.search(r"([0-9a-f]{64})  axe.min.js", (vendor / "VERSIONS.txt").read_text())
    assert digest and hashlib.sha256((vendor / "axe.min.js").read_bytes()).hexdigest() == digest.group(1)
    assert json.loads((REPO / "web" / "package.json").read_text())["devDependencies"]["axe-core"] == "4.11.0"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=viewer_routes("/graphql"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_routes_serve_the_page_and_every_module(client: httpx.AsyncClient) -> None:
    page = await client.get("/viewer")
    assert page.status_code == 200
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/static/viewer/[^"]+)"', page.text)
    assert sorted(a.split("?")[0] for a in assets) == ["/static/viewer/main.js", "/static/viewer/viewer.css"]
    # Every module reachable through the imports is served as JavaScript.
    todo, seen = ["main.js"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        response = await client.get(f"/static/viewer/{name}")
        assert response.status_code == 200, name
        assert "javascript" in response.headers["content-type"], name
        base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        todo += [base + t[2:] for t in re.findall(r"from '(\./[^']+)'", response.text)]
    assert {p.name for p in OWN_MODULES} <= seen and "vendor/dagre.esm.js" in seen
    assert (await client.get("/static/viewer/../graphiql/graphiql.js")).status_code == 404
