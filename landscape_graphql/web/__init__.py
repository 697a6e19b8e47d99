"""Browser pages of the API, all served from the package with no external URL: GraphiQL
(vendored, with the explorer plugin) and the lineage viewer."""

from ._common import asset_paths
from .graphiql import (
    EXAMPLE_QUERIES,
    GRAPHIQL_PAGE_PATH,
    GRAPHIQL_STATIC_PATH,
    example_queries,
    graphiql_html,
    graphiql_response,
    graphiql_routes,
    wants_graphiql,
)
from .viewer import VIEWER_PAGE_PATH, VIEWER_STATIC_PATH, viewer_html, viewer_routes


def public_paths(*, pages: tuple[str, ...] = (GRAPHIQL_PAGE_PATH, VIEWER_PAGE_PATH),
                 graphiql_static: str = GRAPHIQL_STATIC_PATH,
                 viewer_static: str = VIEWER_STATIC_PATH) -> frozenset[str]:
    """Exact paths of the pages and every packaged asset, for an auth middleware's exemptions.

    They hold no audit data, and a browser must load them before its user can type a token
    into GraphiQL's headers pane or the viewer; the queries they send are authenticated as usual.
    """
    return frozenset(pages) | asset_paths(graphiql_static, "graphiql") | asset_paths(viewer_static, "viewer")

__all__ = [
    "EXAMPLE_QUERIES",
    "GRAPHIQL_PAGE_PATH",
    "GRAPHIQL_STATIC_PATH",
    "VIEWER_PAGE_PATH",
    "VIEWER_STATIC_PATH",
    "asset_paths",
    "example_queries",
    "graphiql_html",
    "graphiql_response",
    "graphiql_routes",
    "public_paths",
    "viewer_html",
    "viewer_routes",
    "wants_graphiql",
]
