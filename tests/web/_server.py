"""The app the web tests drive, and a real uvicorn server for the browser tests.

`build_app` is the one place that decides what answers the pages' queries. Today it is the
stand-in schema of `_standin.py`; to drive the real API, return
`landscape_graphql.app.create_app(...)` on a fixture database here (and point the browser
tests' ids at that fixture's truth file).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landscape_graphql.web import (
    EXAMPLE_QUERIES,
    graphiql_response,
    graphiql_routes,
    viewer_routes,
    wants_graphiql,
)

from . import _standin

GRAPHQL_PATH = "/graphql"


def build_app(seen: _standin.Seen | None = None) -> Starlette:
    """GraphiQL for a browser GET of /graphql, the stand-in API for a JSON POST, the viewer."""
    seen = seen if seen is not None else _standin.Seen()

    async def graphql(request: Request) -> Response:
        if wants_graphiql(request):
            return graphiql_response(GRAPHQL_PATH, EXAMPLE_QUERIES, viewer_path="/viewer")
        if request.method != "POST":
            return Response(b'{"errors":[{"message":"POST JSON"}]}', 405, media_type="application/json")
        seen.authorization.append(request.headers.get("authorization"))
        seen.content_types.append(request.headers.get("content-type", ""))
        payload = orjson.loads(await request.body())
        body = _standin.execute(payload["query"], payload.get("variables"), payload.get("operationName"))
        return Response(orjson.dumps(body), media_type="application/json")

    routes = [
        Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
        *graphiql_routes(GRAPHQL_PATH, examples=EXAMPLE_QUERIES, viewer_path="/viewer"),
        *viewer_routes(GRAPHQL_PATH),
    ]
    app = Starlette(routes=routes)
    app.state.seen = seen
    return app


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 on a free port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port, and we keep it bound: no race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
