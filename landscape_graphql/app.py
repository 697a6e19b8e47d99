"""The Starlette application: the GraphQL endpoint, health probes and the web pages.

The endpoint is written out rather than taken from Strawberry's ASGI view so that the
request rules of an audit API are explicit: JSON POST only (a simple cross-site form or GET
cannot run a query), a bounded body, masked errors, and a cost report on every response.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from strawberry.schema.exceptions import CannotGetOperationTypeError

from ._document_checks import parse_off_loop
from ._logging import request_id_var
from ._readiness import busy_and_answering
from .auth import AnonymousAuthenticator, Authenticator, AuthError, Principal
from .context import Context
from .db.engine import EngineOptions, Landscape, open_landscape
from .errors import LandscapeError
from .graphql_errors import format_errors
from .limits import MAX_BODY_BYTES
from .metrics import Metrics, classify_result
from .schema import build_schema
from .settings import Settings
from .tracing import RequestSpan, Tracing

logger = logging.getLogger("landscape_graphql")

_OPERATION = re.compile(r"^\s*(?:#[^\n]*\n\s*)*(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?")


@dataclass
class AppConfig:
    database: str
    settings: Settings = field(default_factory=Settings)
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    payload_roots: tuple[str, ...] = ()
    graphiql: bool = True
    max_body_bytes: int = MAX_BODY_BYTES
    authenticator: Authenticator = field(default_factory=AnonymousAuthenticator)
    cors_origins: tuple[str, ...] = ()
    # OpenTelemetry spans per request and statement (tracing.py); None: no tracing at all.
    tracing: Tracing | None = None


class _State:
    landscape: Landscape | None = None
    shutting_down: bool = False


def _operation(query: str) -> tuple[str | None, str | None]:
    """The operation's type and name, read off the document's start (no parse)."""
    match = _OPERATION.match(query)
    if match:
        return match.group(1), match.group(2)
    return ("query" if query.lstrip().startswith("{") else None), None


_NO_COST = {"sqlStatements": 0, "rowsRead": 0}


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _request_error(status: int, message: str, code: str) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def create_app(config: AppConfig, landscape: Landscape | None = None) -> Starlette:
    """Build the app; the Landscape is opened at start-up unless one is given (tests)."""
    schema = build_schema(config.settings)
    metrics = Metrics()
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
            if config.graphiql:
                from .web import graphiql_response, wants_graphiql
                if wants_graphiql(request):
                    return graphiql_response("/graphql")
            return _request_error(405, "Queries are sent as POST with Content-Type application/json",
                                  "METHOD_NOT_ALLOWED")
        # Credentials first: an unauthenticated caller learns nothing of the request rules and
        # never makes the server read or parse its body.
        principal = await _authenticate(request)
        if isinstance(principal, Response):
            return principal
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
        return await execute(query, variables, operation_name, request, principal)

    async def _authenticate(request: Request) -> Principal | Response:
        try:
            return await config.authenticator.authenticate(request.headers)
        except AuthError as exc:
            metrics.observe_request(None, "rejected", 0.0, 0, 0, ["UNAUTHENTICATED"], 0)
            return Response(orjson.dumps(exc.body), status_code=exc.status_code,
                            headers=exc.headers, media_type="application/json")

    async def execute(query: str, variables: dict[str, Any] | None, operation_name: str | None,
                      request: Request, principal: Principal) -> Response:
        tracing = config.tracing
        if tracing is None:
            return await execute_traced(query, variables, operation_name, request, principal, None)
        operation_type, named = _operation(query)
        with tracing.request(operation_type, operation_name or named, query, variables) as span:
            return await execute_traced(query, variables, operation_name, request, principal, span)

    async def execute_traced(query: str, variables: dict[str, Any] | None, operation_name: str | None,
                             request: Request, principal: Principal, span: RequestSpan | None) -> Response:
        assert state.landscape is not None
        started = time.perf_counter()
        budget = None
        if payload_store is not None:
            from .payloads import ByteBudget
            budget = ByteBudget()
        try:
            await state.landscape.check_file()
        except LandscapeError as exc:
            if span is not None:
                span.finish(_NO_COST, [exc.code])
            return _json({"data": None, "errors": [{"message": exc.message, "extensions": exc.client_extensions()}]})
        ctx = Context.create(state.landscape, config.settings, request=request,
                             payload_store=payload_store, payload_budget=budget,
                             allowed_runs=principal.allowed_runs,
                             tracer=None if span is None else config.tracing)
        document = await parse_off_loop(query, config.settings.limits)
        if document is not None:
            ctx.extras["parsed"] = (query, document)
        try:
            result = await schema.execute(query, variable_values=variables, context_value=ctx,
                                          operation_name=operation_name)
        except CannotGetOperationTypeError:
            if span is not None:
                span.finish(_NO_COST, ["GRAPHQL_VALIDATION_FAILED"])
            # Strawberry raises (instead of returning an error) for an operationName the
            # document does not define, e.g. GraphiQL sending a previous tab's name.
            return _json({"data": None, "errors": [{
                "message": f"Unknown operation named '{operation_name}'" if operation_name
                else "The document must name the operation to run: it defines several",
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]})
        except Exception:
            error_id = secrets.token_hex(6)
            logger.exception("internal error %s outside resolvers", error_id)
            if span is not None:
                span.finish(_NO_COST, ["INTERNAL"])
            return _json({"data": None, "errors": [{"message": "Internal error",
                                                    "extensions": {"code": "INTERNAL", "errorId": error_id}}]})
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(result.errors)
        cost = ctx.db.cost()
        cost["milliseconds"] = round((time.perf_counter() - started) * 1000, 3)
        extensions = dict(result.extensions or {})
        extensions["landscape"] = {**extensions.get("landscape", {}), **cost}
        body["extensions"] = extensions
        response = _json(body)
        status, codes = classify_result(body["data"], body.get("errors"))
        payload_bytes = ctx.loaders.payload_by_ref.bytes_served if "payload_by_ref" in vars(ctx.loaders) else 0
        metrics.observe_request(_operation(query)[0],
                                status, time.perf_counter() - started, cost["sqlStatements"],
                                cost["rowsRead"], codes, payload_bytes)
        if span is not None:
            span.finish(cost, codes)
        return response

    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(_request: Request) -> Response:
        if state.shutting_down or state.landscape is None:
            return JSONResponse({"status": "not ready", "reason": "starting or stopping"}, 503)
        try:
            await state.landscape.check_file()
            if not busy_and_answering(state.landscape):
                async with state.landscape.engine.connect() as conn:
                    await conn.execute(text("SELECT 1 FROM runs LIMIT 1"))
        except Exception as exc:  # any fault means not ready; the reason is kept generic
            logger.warning("readiness check failed: %s", type(exc).__name__)
            reason = exc.message if isinstance(exc, LandscapeError) else "database unreachable"
            return JSONResponse({"status": "not ready", "reason": reason}, 503)
        return JSONResponse({"status": "ready", "epoch": state.landscape.epoch,
                             "backend": state.landscape.backend})

    async def metrics_endpoint(request: Request) -> Response:
        principal = await _authenticate(request)
        if isinstance(principal, Response):
            return principal
        return metrics.response()

    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    if config.graphiql:
        from .web import EXAMPLE_QUERIES, graphiql_routes, viewer_routes
        routes += [*graphiql_routes("/graphql", examples=EXAMPLE_QUERIES), *viewer_routes("/graphql")]
    middleware = [Middleware(_RequestIdMiddleware)]
    if config.cors_origins:
        # Only the listed origins; never "*", and no cookies: credentials are bearer headers.
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                                     allow_methods=["POST"], allow_headers=["Authorization", "Content-Type"],
                                     allow_credentials=False))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.landscape_state = state
    app.state.metrics = metrics
    return app


class _RequestIdMiddleware:
    """Gives each request an id (or keeps a sane X-Request-Id), for the response and the logs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", given) else secrets.token_hex(8)
        token = request_id_var.set(rid)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _body_too_large(limit: int) -> Response:
    return _request_error(413, f"The request body exceeds the maximum of {limit} bytes "
                               "(limit: requestBody)", "QUERY_LIMIT")


Handler = Callable[[Request], Awaitable[Response]]
