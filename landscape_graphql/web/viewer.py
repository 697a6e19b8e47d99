"""The lineage viewer: a one-page app (plain ES modules, inline SVG) over the API: runs, a run's
pipeline DAG, a token's or row's lineage at any size, and the details of each token down to
its calls' payloads.

Its modules and stylesheet live in landscape_graphql/static/viewer/; they are written by hand,
not built, so what is committed is what runs. The one vendored module (dagre, the layered
layout) is pinned in static/viewer/VERSIONS.txt.
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

_OUTCOME = "terminal result path rowOutcome sinkName storedView"
_TOKEN_FIELDS = f"""tokenId runId rowId branchName stepInPipeline
    outcome {{ {_OUTCOME} }}
    parents {{ tokenId }} children {{ tokenId }}
    nodeStates {{ nodeId status attempt }}"""
_LINEAGE = f"""tokens {{ {_TOKEN_FIELDS} }}
    edges {{ parentTokenId childTokenId kind ordinal }}
    depthReached truncated truncationReason"""

# Every query the page sends. They live here, not in the scripts, so the tests can validate them
# against the schema: a renamed field then fails a test instead of a person's lookup.
# The run figures come from Run.summary, asking only for its cheap parts: counts and errors are
# one aggregate, tokens by outcome another; performance (percentiles) is fetched on a node click.
_SUMMARY = """durationSeconds counts { rows tokens } errors { validation transform total }
      tokenOutcomes { terminal result rowOutcome count }"""
RUNS_QUERY = f"""query ViewerRuns($first: Int!, $after: String) {{
  runs(first: $first, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      runId status startedAt completedAt
      summary {{ {_SUMMARY} }}
    }}
  }}
}}
"""
RUN_QUERY = f"""query ViewerRun($runId: String!) {{
  run(runId: $runId) {{
    runId status startedAt completedAt
    summary {{ {_SUMMARY} }}
    dag {{
      nodes {{ nodeId pluginName nodeType sequenceInPipeline }}
      edges {{ tokenCount edge {{ edgeId fromNodeId toNodeId label defaultMode }} }}
    }}
    failedStates: nodeStates(first: 500, filter: {{statuses: [FAILED]}}) {{ totalCount nodes {{ nodeId }} }}
    retriedStates: nodeStates(first: 500, filter: {{retries: true}}) {{ totalCount nodes {{ nodeId }} }}
  }}
}}
"""
# Sent on the first node click only (percentiles are the dearest part of the run analytics).
RUN_PERFORMANCE_QUERY = """query ViewerRunPerformance($runId: String!) {
  run(runId: $runId) { performance { nodes { nodeId executions failures retries avgMs p95Ms totalMs } } }
}
"""
RUN_TOKENS_QUERY = """query ViewerRunTokens($runId: String!, $filter: TokenFilter, $after: String) {
  run(runId: $runId) {
    tokens(first: 50, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { tokenId rowId branchName outcome { result path rowOutcome sinkName } }
    }
  }
}
"""
SEARCH_QUERY = """query ViewerSearch($id: String!) {
  token(tokenId: $id) { tokenId runId }
  row(rowId: $id) { rowId runId }
  run(runId: $id) { runId }
}
"""
ROW_INDEX_QUERY = """query ViewerRowIndex($runId: String!, $index: Int!) {
  run(runId: $runId) { rows(first: 1, filter: {indexFrom: $index, indexTo: $index}) { nodes { rowId } } }
}
"""
TOKEN_LINEAGE_QUERY = f"""query ViewerTokenLineage($tokenId: String!, $depth: Int!, $up: Boolean!, $down: Boolean!) {{
  token(tokenId: $tokenId) {{
    {_TOKEN_FIELDS}
    ancestors(maxDepth: $depth) @include(if: $up) {{ {_LINEAGE} }}
    descendants(maxDepth: $depth) @include(if: $down) {{ {_LINEAGE} }}
  }}
}}
"""
ROW_LINEAGE_QUERY = f"""query ViewerRowLineage($rowId: String!, $depth: Int!) {{
  row(rowId: $rowId) {{
    rowId runId rowIndex
    lineage(maxDepth: $depth) {{ {_LINEAGE} rootTokenIds }}
  }}
}}
"""
PATH_QUERY = """query ViewerPath($from: String!, $to: String!) {
  lineagePath(fromTokenId: $from, toTokenId: $to) { tokens { tokenId } edges { parentTokenId childTokenId kind } }
}
"""
TOKEN_DETAILS_QUERY = f"""query ViewerTokenDetails($tokenId: String!) {{
  token(tokenId: $tokenId) {{
    tokenId runId rowId branchName stepInPipeline createdAt forkGroupId joinGroupId expandGroupId
    parents {{ tokenId branchName }}
    children {{ tokenId branchName outcome {{ {_OUTCOME} }} children {{ tokenId joinGroupId }} }}
    row {{ rowId rowIndex sourceNodeId validationErrors {{ errorId nodeId error violationType
      expectedType actualType originalFieldName destination matchedBy }}
      coalesceBranchLosses {{ lossId coalesceName branchName tokenId reasonKind reasonDetail recordedAt
        token {{ forkGroupId }} }} }}
    outcomes {{ {_OUTCOME} recordedAt batchId expectedBranches }}
    nodeStates {{ stateId stepIndex attempt status nodeId durationMs error successReason
      routingEvents {{ eventId mode edge {{ label fromNodeId toNodeId }} reason {{ state json text }} }} }}
    transformErrors {{ errorId transformId destination errorDetails }}
    calls {{ callId callIndex callType status latencyMs createdAt error }}
    artifacts {{ artifactId artifactType pathOrUri sizeBytes contentHash sinkNodeId }}
  }}
}}
"""
_PAYLOAD = "state hash ref sizeBytes truncated problem json text"
CALL_PAYLOADS_QUERY = f"""query ViewerCallPayloads($callId: String!) {{
  call(callId: $callId) {{ callId request {{ {_PAYLOAD} }} response {{ {_PAYLOAD} }} }}
}}
"""
TOKEN_DATA_QUERY = f"""query ViewerTokenData($tokenId: String!) {{
  token(tokenId: $tokenId) {{ tokenId data {{ {_PAYLOAD} }} row {{ rowId sourceData {{ {_PAYLOAD} }} }} }}
}}
"""
QUERIES = {
    "runs": RUNS_QUERY, "run": RUN_QUERY, "runPerformance": RUN_PERFORMANCE_QUERY, "runTokens": RUN_TOKENS_QUERY, "search": SEARCH_QUERY,
    "rowIndex": ROW_INDEX_QUERY, "tokenLineage": TOKEN_LINEAGE_QUERY, "rowLineage": ROW_LINEAGE_QUERY,
    "path": PATH_QUERY, "tokenDetails": TOKEN_DETAILS_QUERY, "callPayloads": CALL_PAYLOADS_QUERY,
    "tokenData": TOKEN_DATA_QUERY,
}


def viewer_html(graphql_path: str = "/graphql", *, static_path: str = VIEWER_STATIC_PATH,
                graphiql_path: str | None = None) -> str:
    """The viewer page; it posts its queries to `graphql_path` and links to GraphiQL at
    `graphiql_path` (default: the GraphQL path, which serves GraphiQL to browsers)."""
    graphql_path = normalise_path(graphql_path, "graphql_path")
    static_path = normalise_path(static_path, "static_path")
    graphiql_link = normalise_path(graphiql_path or graphql_path, "graphiql_path")
    config = {"graphqlPath": graphql_path, "queries": QUERIES}
    css = escape(asset_url(static_path, "viewer", "viewer.css"))
    js = escape(asset_url(static_path, "viewer", "main.js"))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(META_CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Landscape viewer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
</head>
<body>
<header class="topbar">
  <h1><a href="#/">Landscape <span>lineage</span></a></h1>
  <form id="search" class="search" role="search" autocomplete="off">
    <label for="q">Search</label>
    <input id="q" name="q" spellcheck="false" placeholder="token id, row id, run id, or row index (press /)">
    <button type="submit">Find</button>
  </form>
  <details class="auth">
    <summary>Authorization</summary>
    <label for="authorization">Header value</label>
    <input id="authorization" type="password" autocomplete="off" placeholder="Bearer …">
    <p class="hint">Sent with each query; never stored.</p>
  </details>
  <nav aria-label="Other pages"><a href="#/">Runs</a> <a href="{escape(graphiql_link)}">GraphiQL</a></nav>
</header>
<div id="status" class="status" role="status" aria-live="polite"></div>
<div id="errors" class="errors" role="alert" hidden></div>
<main class="layout">
  <div id="page" class="page-root"></div>
  <aside class="panel" data-panel aria-labelledby="panel-title" hidden>
    <div class="panel-head"><h2 id="panel-title">Details</h2>
      <button type="button" class="close" aria-label="Close details">&times;</button></div>
    <div class="panel-body"></div>
  </aside>
</main>
<div id="announce" class="sr-only" aria-live="polite"></div>
<script type="application/json" id="viewer-config">{json_for_script(config)}</script>
<script type="module" src="{js}"></script>
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
