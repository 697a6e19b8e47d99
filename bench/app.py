"""The app uvicorn serves for the load benchmarks: `uvicorn bench.app:make --factory --workers N`.

The factory reads its database from BENCH_DB, the execution path from BENCH_FAST ("0" for
graphql-core's own completion) and BENCH_DIRECT ("0": every request through Strawberry's
`schema.execute`, see landscape_graphql/_direct.py) and the response cache's size from BENCH_CACHE_MB (default 0: off), so several workers can be started by uvicorn itself. Beside
the API it serves POST /plain: a Starlette endpoint that parses the JSON body and answers a
fixed JSON document of the size of the lineage response, the ceiling for the same server.
"""

from __future__ import annotations

import os

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landscape_graphql._process import tune_garbage_collector
from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.settings import Settings

# About the size of scenario 1's response (2 KB of ids and numbers).
_PLAIN = orjson.dumps({"data": {"items": [{"id": f"{i:032x}", "n": i, "ok": True} for i in range(40)]}})


async def plain(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(_PLAIN, media_type="application/json")


def make() -> Starlette:
    settings = Settings(fast_execution=os.environ.get("BENCH_FAST", "1") != "0",
                        direct_path=os.environ.get("BENCH_DIRECT", "1") != "0")
    cache_mb = float(os.environ.get("BENCH_CACHE_MB", "0"))  # scenario 7 turns the response cache on
    app = create_app(AppConfig(database=os.environ["BENCH_DB"], settings=settings, graphiql=False,
                               response_cache_bytes=int(cache_mb * 1024 * 1024)))
    app.router.routes.append(Route("/plain", plain, methods=["POST"]))
    tune_garbage_collector()  # as `landscape-graphql serve` does
    return app
