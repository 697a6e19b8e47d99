"""GraphiQL, served from the package with no CDN: the page, its vendored assets, the examples.

The lead's app serves `graphiql_html(...)` when a browser GETs the GraphQL path (see
`wants_graphiql`) and adds `graphiql_routes(...)` for the assets. The bundle itself is built by
scripts/refresh-web-assets.sh from the versions pinned in web/package.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ._common import (
    META_CONTENT_SECURITY_POLICY,
    PackagedAssets,
    asset_url,
    html_response,
    json_for_script,
    normalise_path,
)

GRAPHIQL_STATIC_PATH = "/static/graphiql"
GRAPHIQL_PAGE_PATH = "/graphiql"

_LINEAGE_FIELDS = """
      tokens { tokenId branchName outcome { result path rowOutcome sinkName } }
      edges { parentTokenId childTokenId kind ordinal }
      depthReached
      truncated
      truncationReason"""


def _graphql_string(value: str) -> str:
    # JSON string syntax is a subset of GraphQL's, so this quotes any id safely.
    return json_for_script(value)


def example_queries(*, run_id: str = "paste-a-run-id", row_id: str = "paste-a-row-id",
                    token_id: str = "paste-a-token-id", sink: str = "high_value",
                    ) -> tuple[tuple[str, str], ...]:
    """The pre-filled GraphiQL tabs, as (title, query); pass real ids to make them runnable."""
    run, row, token, sink = (_graphql_string(v) for v in (run_id, row_id, token_id, sink))
    return (
        ("About this Landscape", """\
# Which audit database this server reads.
# Run it with the ▶ button or Ctrl+Enter. If the server
# asks for credentials, put them in the Headers pane:
#   {"Authorization": "Bearer <token>"}
query AboutThisLandscape {
  landscape {
    epoch
    backend
    elspethVersion
  }
}
"""),
        ("A token's lineage", f"""\
# A token's lineage: where it came from (ancestors),
# what it became (descendants) and what happened to it
# at every node. Replace the token id with one of yours.
query TokenLineage {{
  token(tokenId: {token}) {{
    tokenId
    rowId
    runId
    branchName
    parents {{ tokenId }}
    children {{ tokenId }}
    nodeStates {{ stateId stepIndex attempt status nodeId }}
    calls {{ callId callType status }}
    outcome {{ terminal result path rowOutcome sinkName }}
    ancestors(maxDepth: 10) {{{_LINEAGE_FIELDS}
    }}
    descendants(maxDepth: 10) {{{_LINEAGE_FIELDS}
    }}
  }}
}}
"""),
        ("Explain a row at a sink", f"""\
# Why did this row end up in this sink? What ELSPETH's
# explain() answers. Without a sink, a row with several
# terminal tokens is AMBIGUOUS_LINEAGE (the error lists
# the candidate token ids).
query ExplainRow {{
  explain(runId: {run}, rowId: {row}, sink: {sink}) {{
    token {{
      tokenId
      nodeStates {{ nodeId status }}
      outcome {{ result path sinkName }}
    }}
  }}
}}
"""),
        ("Page through a run", f"""\
# A run's tokens, 100 at a time. For the next page,
# replace `after: null` with this page's endCursor (in
# quotes); stop when hasNextPage is false.
query RunTokens {{
  run(runId: {run}) {{
    status
    tokens(first: 100, after: null) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      edges {{
        cursor
        node {{
          tokenId
          outcome {{ path sinkName }}
        }}
      }}
    }}
  }}
}}
"""),
    )


EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = example_queries()


def graphiql_html(graphql_path: str = "/graphql",
                  examples: Sequence[tuple[str, str]] = EXAMPLE_QUERIES, *,
                  static_path: str = GRAPHIQL_STATIC_PATH,
                  title: str = "Landscape GraphQL",
                  viewer_path: str | None = None) -> str:
    """The GraphiQL page: posts JSON to `graphql_path`, one tab per example (title, query),
    and links to the lineage viewer when `viewer_path` is given."""
    graphql_path = normalise_path(graphql_path, "graphql_path")
    static_path = normalise_path(static_path, "static_path")
    config = {
        "graphqlPath": graphql_path,
        "title": title,
        "viewerPath": None if viewer_path is None else normalise_path(viewer_path, "viewer_path"),
        "tabs": [{"query": query, "variables": None, "headers": None} for _title, query in examples],
    }
    css = escape(asset_url(static_path, "graphiql", "graphiql.css"))
    js = escape(asset_url(static_path, "graphiql", "graphiql.js"))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(META_CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(title)} · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="graphiql"><p class="landscape-loading">Loading GraphiQL…</p></div>
<noscript>GraphiQL needs JavaScript. Queries can also be sent as POST {escape(graphql_path)} with a JSON body.</noscript>
<script type="application/json" id="graphiql-config">{json_for_script(config)}</script>
<script src="{js}"></script>
</body>
</html>
"""


def graphiql_response(graphql_path: str = "/graphql",
                      examples: Sequence[tuple[str, str]] = EXAMPLE_QUERIES, *,
                      static_path: str = GRAPHIQL_STATIC_PATH,
                      viewer_path: str | None = None) -> HTMLResponse:
    """`graphiql_html` with the page's security headers (CSP, nosniff, no referrer)."""
    return html_response(graphiql_html(graphql_path, examples, static_path=static_path,
                                       viewer_path=viewer_path))


def wants_graphiql(request: Request) -> bool:
    """True for a browser navigating to the GraphQL path: a GET that prefers HTML.

    Scripts that GET the endpoint (curl, monitoring) send no text/html and keep getting the
    API's own JSON answer.
    """
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def graphiql_routes(graphql_path: str = "/graphql", *,
                    examples: Sequence[tuple[str, str]],
                    static_path: str = GRAPHIQL_STATIC_PATH,
                    page_path: str | None = GRAPHIQL_PAGE_PATH,
                    viewer_path: str | None = None) -> list[BaseRoute]:
    """The vendored assets under `static_path`, and the page itself at `page_path` too (None to
    leave it out when the GraphQL path serves it)."""
    routes: list[BaseRoute] = [
        Mount(normalise_path(static_path, "static_path"), app=PackagedAssets("graphiql"),
              name="graphiql-static"),
    ]
    if page_path is not None:
        html = graphiql_html(graphql_path, examples, static_path=static_path, viewer_path=viewer_path)

        async def page(_request: Request) -> Response:
            return html_response(html)

        routes.append(Route(normalise_path(page_path, "page_path"), page, methods=["GET", "HEAD"],
                            name="graphiql"))
    return routes
