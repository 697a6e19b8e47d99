"""The lineage viewer: one dependency-free page (vanilla JS, inline SVG) that asks the API for a
token's ancestors, descendants, node states, calls and outcome and draws them.

Its script and stylesheet live in landscape_graphql/static/viewer/; they are written by hand,
not built, so what is committed is what runs.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ._common import (
    META_CONTENT_SECURITY_POLICY,
    PackagedAssets,
    asset_url,
    html_response,
    json_for_script,
    normalise_path,
)

VIEWER_PAGE_PATH = "/viewer"
VIEWER_STATIC_PATH = "/static/viewer"
DEFAULT_MAX_DEPTH = 10
MAX_DEPTH_LIMIT = 50

_LINEAGE = """
      tokens { tokenId branchName outcome { result path rowOutcome sinkName } }
      edges { parentTokenId childTokenId kind ordinal }
      depthReached
      truncated
      truncationReason"""

# Both queries the page sends. They live here, not in viewer.js, so the tests can validate
# them against the schema: a renamed field then fails a test instead of a person's lookup.
TOKEN_QUERY = f"""query ViewerToken($tokenId: String!, $maxDepth: Int) {{
  token(tokenId: $tokenId) {{
    tokenId
    rowId
    runId
    branchName
    parents {{ tokenId }}
    children {{ tokenId }}
    nodeStates {{ stateId stepIndex attempt status nodeId }}
    calls {{ callId callType status }}
    outcome {{ terminal result path rowOutcome sinkName }}
    ancestors(maxDepth: $maxDepth) {{{_LINEAGE}
    }}
    descendants(maxDepth: $maxDepth) {{{_LINEAGE}
    }}
  }}
}}
"""
EXPLAIN_QUERY = """query ViewerExplain($runId: String!, $rowId: String, $tokenId: String, $sink: String) {
  explain(runId: $runId, rowId: $rowId, tokenId: $tokenId, sink: $sink) { token { tokenId } }
}
"""


def viewer_html(graphql_path: str = "/graphql", *, static_path: str = VIEWER_STATIC_PATH,
                graphiql_path: str | None = None) -> str:
    """The viewer page; it posts its queries to `graphql_path` and links to GraphiQL at
    `graphiql_path` (default: the GraphQL path, which serves GraphiQL to browsers)."""
    graphql_path = normalise_path(graphql_path, "graphql_path")
    static_path = normalise_path(static_path, "static_path")
    graphiql_link = normalise_path(graphiql_path or graphql_path, "graphiql_path")
    config = {"graphqlPath": graphql_path, "defaultMaxDepth": DEFAULT_MAX_DEPTH,
              "maxDepthLimit": MAX_DEPTH_LIMIT,
              "queries": {"token": TOKEN_QUERY, "explain": EXPLAIN_QUERY}}
    css = escape(asset_url(static_path, "viewer", "viewer.css"))
    js = escape(asset_url(static_path, "viewer", "viewer.js"))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(META_CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Landscape lineage viewer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
</head>
<body>
<header class="topbar">
  <h1>Landscape <span>lineage</span></h1>
  <nav><a href="{escape(graphiql_link)}">GraphiQL</a></nav>
</header>
<form id="lookup" class="lookup" autocomplete="off">
  <label class="wide">Token id
    <input name="tokenId" id="token-id" spellcheck="false" placeholder="32-hex token id">
  </label>
  <span class="or">or</span>
  <label>Run id <input name="runId" id="run-id" spellcheck="false"></label>
  <label>Row id <input name="rowId" id="row-id" spellcheck="false"></label>
  <label>Sink <input name="sink" id="sink" spellcheck="false" placeholder="optional"></label>
  <label class="narrow">Depth
    <input name="maxDepth" id="max-depth" type="number" min="1" max="{MAX_DEPTH_LIMIT}" value="{DEFAULT_MAX_DEPTH}">
  </label>
  <button type="submit" id="show">Show lineage</button>
  <details class="auth">
    <summary>Authorization</summary>
    <label>Header value
      <input name="authorization" id="authorization" type="password" placeholder="Bearer …">
    </label>
    <p class="hint">Sent with each query; kept only while this page is open.</p>
  </details>
</form>
<div id="status" class="status" role="status" aria-live="polite"></div>
<div id="errors" class="errors" role="alert" hidden></div>
<main class="layout">
  <section class="panel graph-panel" aria-labelledby="graph-title">
    <div class="panel-head">
      <h2 id="graph-title">Lineage</h2>
      <ul class="legend" aria-label="Edge kinds">
        <li class="k-fork">FORK</li><li class="k-coalesce">COALESCE</li>
        <li class="k-expand">EXPAND</li><li class="k-batch">BATCH</li>
      </ul>
      <ul class="legend swatches" aria-label="Outcome colours">
        <li class="o-good">done</li><li class="o-pass">passed on</li>
        <li class="o-wait">waiting</li><li class="o-bad">failed</li>
      </ul>
    </div>
    <div id="graph" class="graph">
      <p class="empty">Enter a token id, or a run id and a row id (and a sink when the row reached several),
      to draw the token's ancestors above it and its descendants below it. Click a box to follow that token.</p>
    </div>
    <p id="truncation" class="truncation" hidden></p>
  </section>
  <aside class="panel details" id="details" aria-labelledby="details-title">
    <h2 id="details-title">Token</h2>
    <p class="empty">No token selected.</p>
  </aside>
</main>
<script type="application/json" id="viewer-config">{json_for_script(config)}</script>
<script src="{js}"></script>
</body>
</html>
"""


def viewer_routes(graphql_path: str = "/graphql", *, page_path: str = VIEWER_PAGE_PATH,
                  static_path: str = VIEWER_STATIC_PATH,
                  graphiql_path: str | None = None) -> list[BaseRoute]:
    """The viewer page at `page_path` and its script and stylesheet under `static_path`."""
    html = viewer_html(graphql_path, static_path=static_path, graphiql_path=graphiql_path)

    async def page(_request: Request) -> Response:
        return html_response(html)

    return [
        Route(normalise_path(page_path, "page_path"), page, methods=["GET", "HEAD"], name="viewer"),
        Mount(normalise_path(static_path, "static_path"), app=PackagedAssets("viewer"), name="viewer-static"),
    ]
