"""The Starlette application: the GraphQL endpoint, health probes and the web pages.

The endpoint is written out rather than taken from Strawberry's ASGI view so that the
request rules of an audit API are explicit: JSON POST only (a simple cross-site form or GET
cannot run a query), a bounded body, masked errors, and a cost report on every response.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .context import Context
from .db.engine import EngineOptions, Landscape, open_landscape
from .errors import LandscapeError
from .graphql_errors import format_errors
from .schema import build_schema
from .settings import Settings

logger = logging.getLogger("landscape_graphql")

MAX_BODY_BYTES = 1_000_000


@dataclass
class AppConfig:
    database: str
    settings: Settings = field(default_factory=Settings)
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    payload_roots: tuple[str, ...] = ()
    graphiql: bool = True
    max_body_bytes: int = MAX_BODY_BYTES


class _State:
    landscape: Landscape | None = None
    shutting_down: bool = False


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _request_error(status: int, message: str, code: str) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def create_app(config: AppConfig, landscape: Landscape | None = None) -> Starlette:
    """Build the app; the Landscape is opened at start-up unless one is given (tests)."""
    schema = build_schema()
    state = _State()
    state.landscape = landscape
    owns_landscape = landscape is None

    payload_store: Any = None
    if config.payload_roots:
        from .payloads import PayloadStore
        payload_store = PayloadStore(config.payload_roots)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if state.landscape is None:
            state.landscape = await open_landscape(config.database, config.engine_options)
        try:
            yield
        finally:
            state.shutting_down = True
            if owns_landscape and state.landscape is not None:
                await state.landscape.dispose()

    async def graphql(request: Request) -> Response:
        if request.method == "GET":
            return _request_error(405, "Queries are sent as POST with Content-Type application/json",
                                  "METHOD_NOT_ALLOWED")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return _request_error(415, "Queries are sent with Content-Type application/json",
                                  "UNSUPPORTED_MEDIA_TYPE")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return _body_too_large(config.max_body_bytes)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > config.max_body_bytes:
                return _body_too_large(config.max_body_bytes)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _request_error(400, "The request body is not valid JSON", "BAD_REQUEST")
        if isinstance(payload, list):
            return _request_error(400, "Operation batching is not enabled", "BAD_REQUEST")
        if not isinstance(payload, dict):
            return _request_error(400, "The request body must be a JSON object", "BAD_REQUEST")
        query = payload.get("query")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if not isinstance(query, str) or not query.strip():
            return _request_error(400, "The request has no query string", "BAD_REQUEST")
        if variables is not None and not isinstance(variables, dict):
            return _request_error(400, "variables must be a JSON object", "BAD_REQUEST")
        if operation_name is not None and not isinstance(operation_name, str):
            return _request_error(400, "operationName must be a string", "BAD_REQUEST")
        assert state.landscape is not None
        return await execute(query, variables, operation_name, request)

    async def execute(query: str, variables: dict[str, Any] | None, operation_name: str | None,
                      request: Request) -> Response:
        assert state.landscape is not None
        started = time.perf_counter()
        budget = None
        if payload_store is not None:
            from .payloads import ByteBudget
            budget = ByteBudget()
        ctx = Context.create(state.landscape, config.settings, request=request,
                             payload_store=payload_store, payload_budget=budget)
        result = await schema.execute(query, variable_values=variables, context_value=ctx,
                                      operation_name=operation_name)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(result.errors)
        cost = ctx.db.cost()
        cost["milliseconds"] = round((time.perf_counter() - started) * 1000, 3)
        extensions = dict(result.extensions or {})
        extensions["landscape"] = {**extensions.get("landscape", {}), **cost}
        body["extensions"] = extensions
        return _json(body)

    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(_request: Request) -> Response:
        if state.shutting_down or state.landscape is None:
            return JSONResponse({"status": "not ready", "reason": "starting or stopping"}, 503)
        try:
            async with state.landscape.engine.connect() as conn:
                await conn.execute(text("SELECT 1 FROM runs LIMIT 1"))
        except Exception as exc:  # any fault means not ready; the reason is kept generic
            logger.warning("readiness check failed: %s", type(exc).__name__)
            reason = exc.message if isinstance(exc, LandscapeError) else "database unreachable"
            return JSONResponse({"status": "not ready", "reason": reason}, 503)
        return JSONResponse({"status": "ready", "epoch": state.landscape.epoch,
                             "backend": state.landscape.backend})

    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/livez", livez),
        Route("/readyz", readyz),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.landscape_state = state
    return app


def _body_too_large(limit: int) -> Response:
    return _request_error(413, f"The request body exceeds the maximum of {limit} bytes "
                               "(limit: requestBody)", "QUERY_LIMIT")


Handler = Callable[[Request], Awaitable[Response]]
