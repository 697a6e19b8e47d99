"""Browser pages of the API, all served from the package with no external URL: GraphiQL
(vendored, with the explorer plugin) and the lineage viewer."""

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

__all__ = [
    "EXAMPLE_QUERIES",
    "GRAPHIQL_PAGE_PATH",
    "GRAPHIQL_STATIC_PATH",
    "VIEWER_PAGE_PATH",
    "VIEWER_STATIC_PATH",
    "example_queries",
    "graphiql_html",
    "graphiql_response",
    "graphiql_routes",
    "viewer_html",
    "viewer_routes",
    "wants_graphiql",
]
