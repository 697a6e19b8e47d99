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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from strawberry.schema.exceptions import CannotGetOperationTypeError

from ._direct import DirectPath
from ._logging import request_id_var
from ._off_loop_parse import parse_off_loop
from ._readiness import check_ready
from ._shared import ServerGroup
from .auth import AnonymousAuthenticator, Authenticator, AuthError, Principal
from .context import Context
from .db.engine import EngineOptions, Landscape, open_landscape
from .error_masking import client_error_entry, error_entry, format_errors, internal_error_entry
from .errors import (
    BAD_REQUEST_CODE,
    METHOD_NOT_ALLOWED_CODE,
    QUERY_LIMIT_CODE,
    UNAUTHENTICATED_CODE,
    UNSUPPORTED_MEDIA_TYPE_CODE,
    VALIDATION_FAILED_CODE,
    LandscapeError,
)
from .http_cache import DataVersion, Entry, ResponseCache, etag, matches, scope_key
from .limits import request_body_refusal
from .metrics import Metrics, classify_result
from .persisted import Document, PersistedQueries, PersistedQueryError
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
    authenticator: Authenticator = field(default_factory=AnonymousAuthenticator)
    cors_origins: tuple[str, ...] = ()
    # OpenTelemetry spans per request and statement (tracing.py); None: no tracing at all.
    tracing: Tracing | None = None
    # The processes of a multi-process server (serve --workers N): shared readiness, shutdown
    # and metrics. None: this process is the whole server.
    group: ServerGroup | None = None
    # Persisted queries (APQ and trusted documents) and HTTP caching (http_cache.py).
    persisted: PersistedQueries = field(default_factory=PersistedQueries)
    http_caching: bool = True  # ETags and 304s
    response_cache_bytes: int = 64 * 1024 * 1024  # 0: no response cache


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
# Answers depend on the caller's credentials: never in a shared cache, always revalidated.
_CACHE_CONTROL = {"Cache-Control": "private, no-cache"}


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _request_error(status: int, message: str, code: str) -> Response:
    return _json({"errors": [error_entry(message, code)]}, status)


def create_app(config: AppConfig, landscape: Landscape | None = None) -> Starlette:
    """Build the app; the Landscape is opened at start-up unless one is given (tests)."""
    schema = build_schema(config.settings)
    direct = DirectPath.for_schema(schema) if config.settings.direct_path else None
    group = config.group
    metrics = Metrics(shared=group)
    state = _State()
    state.landscape = landscape
    owns_landscape = landscape is None

    persisted = config.persisted
    versions: DataVersion | None = None
    response_cache = ResponseCache(config.response_cache_bytes) if config.response_cache_bytes > 0 else None

    payload_store: Any = None
    if config.payload_roots:
        from .payloads import PayloadStore
        payload_store = PayloadStore(config.payload_roots)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if state.landscape is None:
            state.landscape = await open_landscape(config.database, config.engine_options)
        nonlocal versions
        if config.http_caching:
            versions = DataVersion(state.landscape)
        if group is not None:
            group.mark_started()
        try:
            yield
        finally:
            state.shutting_down = True
            if group is not None:
                group.mark_stopped()
            if owns_landscape and state.landscape is not None:
                await state.landscape.dispose()

    def refuse(status: int, message: str, code: str) -> Response:
        # Refused before any GraphQL: still one request in /metrics.
        metrics.observe_request(None, "rejected", 0.0, 0, 0, [code], 0)
        return _request_error(status, message, code)

    def body_too_large(found: int, maximum: int, lower_bound: bool) -> Response:
        metrics.observe_request(None, "rejected", 0.0, 0, 0, [QUERY_LIMIT_CODE], 0)
        return _json(request_body_refusal(found, maximum, lower_bound), 413)

    async def graphql(request: Request) -> Response:
        if request.method == "GET" and config.graphiql:
            from .web import graphiql_response, wants_graphiql
            if wants_graphiql(request):
                return graphiql_response("/graphql")
        # Credentials first: an unauthenticated caller learns nothing of the request rules and
        # never makes the server read or parse its body.
        principal = await _authenticate(request)
        if isinstance(principal, Response):
            return principal
        if request.method == "GET":
            return await graphql_get(request, principal)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return refuse(415, "Queries are sent with Content-Type application/json",
                          UNSUPPORTED_MEDIA_TYPE_CODE)
        max_body = config.settings.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return body_too_large(int(declared), max_body, False)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_body:
                return body_too_large(len(body), max_body, True)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return refuse(400, "The request body is not valid JSON", BAD_REQUEST_CODE)
        if isinstance(payload, list):
            return refuse(400, "Operation batching is not enabled", BAD_REQUEST_CODE)
        if not isinstance(payload, dict):
            return refuse(400, "The request body must be a JSON object", BAD_REQUEST_CODE)
        return await run(request, principal, payload.get("query"), payload.get("variables"),
                         payload.get("operationName"), payload.get("extensions"), text_allowed=True)

    async def graphql_get(request: Request, principal: Principal) -> Response:
        """GET runs persisted queries only: no cross-site link can run a query of its choosing."""
        params = request.query_params
        if "extensions" not in params and "query" not in params:
            return refuse(405, "Queries are sent as POST with Content-Type application/json "
                               "(GET runs persisted queries only)", METHOD_NOT_ALLOWED_CODE)
        decoded: dict[str, Any] = {}
        for name in ("extensions", "variables"):
            if name in params:
                try:
                    decoded[name] = orjson.loads(params[name])
                except orjson.JSONDecodeError:
                    return refuse(400, f"{name} is not valid JSON", BAD_REQUEST_CODE)
        return await run(request, principal, params.get("query"), decoded.get("variables"),
                         params.get("operationName"), decoded.get("extensions"), text_allowed=False)

    async def run(request: Request, principal: Principal, query: Any, variables: Any, operation_name: Any,
                  extensions: Any, *, text_allowed: bool) -> Response:
        if variables is not None and not isinstance(variables, dict):
            return refuse(400, "variables must be a JSON object", BAD_REQUEST_CODE)
        if operation_name is not None and not isinstance(operation_name, str):
            return refuse(400, "operationName must be a string", BAD_REQUEST_CODE)
        try:
            document = persisted.resolve(query, extensions, text_allowed=text_allowed)
        except PersistedQueryError as exc:
            return refuse(exc.status, exc.message, exc.code)
        assert state.landscape is not None
        return await execute(document, variables, operation_name, request, principal)

    async def _authenticate(request: Request) -> Principal | Response:
        try:
            return await config.authenticator.authenticate(request.headers)
        except AuthError as exc:
            metrics.observe_request(None, "rejected", 0.0, 0, 0, [UNAUTHENTICATED_CODE], 0)
            return Response(orjson.dumps(exc.body), status_code=exc.status_code,
                            headers=exc.headers, media_type="application/json")

    async def execute(document: Document, variables: dict[str, Any] | None, operation_name: str | None,
                      request: Request, principal: Principal) -> Response:
        tracing = config.tracing
        if tracing is None:
            return await execute_traced(document, variables, operation_name, request, principal, None)
        operation_type, named = _operation(document.text)
        with tracing.request(operation_type, operation_name or named, document.text, variables) as span:
            return await execute_traced(document, variables, operation_name, request, principal, span)

    async def execute_traced(document: Document, variables: dict[str, Any] | None, operation_name: str | None,
                             request: Request, principal: Principal, span: RequestSpan | None) -> Response:
        assert state.landscape is not None
        started = time.perf_counter()
        query = document.text
        operation_type = _operation(query)[0]

        def early(body: dict[str, Any] | Response, cost: dict[str, Any] = _NO_COST) -> Response:
            # Every exit is counted and traced, not only the ones that reach execution.
            status, codes = ("ok", []) if isinstance(body, Response) else classify_result(
                body.get("data"), body.get("errors"))
            metrics.observe_request(operation_type, status, time.perf_counter() - started,
                                    cost["sqlStatements"], cost["rowsRead"], codes, 0)
            if span is not None:
                span.finish(cost, codes)
            return body if isinstance(body, Response) else _json(body)

        budget = None
        if payload_store is not None:
            from .payloads import ByteBudget
            budget = ByteBudget()
        try:
            await state.landscape.check_file()
        except LandscapeError as exc:
            return early({"data": None, "errors": [client_error_entry(exc)]})
        tag = scope = version = None
        if versions is not None:
            version = await versions.current()
            if version is not None:
                scope = scope_key(principal.allowed_runs)
                tag = etag(document.sha256, variables, operation_name, scope, version)
                if matches(request.headers.get("if-none-match"), tag):
                    return early(Response(status_code=304, headers={"ETag": tag, **_CACHE_CONTROL}))
                cached = None if response_cache is None else response_cache.get(tag, scope)
                if cached is not None:
                    hit: dict[str, Any] = {"sqlStatements": 0, "rowsRead": 0, "dbMilliseconds": 0.0,
                                           "milliseconds": round((time.perf_counter() - started) * 1000, 3)}
                    ext = orjson.dumps({"landscape": {**cached.landscape, **hit, "cached": True}})
                    return early(Response(b'{"data":' + cached.data_json + b',"extensions":' + ext + b"}",
                                          media_type="application/json", headers={"ETag": tag, **_CACHE_CONTROL}))
        ctx = Context.create(state.landscape, config.settings, request=request,
                             payload_store=payload_store, payload_budget=budget,
                             allowed_runs=principal.allowed_runs,
                             tracer=None if span is None else config.tracing)
        parsed = await parse_off_loop(query, config.settings.limits)
        if parsed is not None:
            ctx.extras["parsed"] = (query, parsed)
        try:
            async with ctx.held_connections():
                # A document seen before skips Strawberry's per-request hooks (_direct.py).
                result = None if direct is None else await direct.execute(query, variables, ctx, operation_name)
                if result is None:
                    result = await schema.execute(query, variable_values=variables, context_value=ctx,
                                                  operation_name=operation_name)
        except CannotGetOperationTypeError:
            # Strawberry raises (instead of returning an error) for an operationName the
            # document does not define, e.g. GraphiQL sending a previous tab's name.
            return early({"data": None, "errors": [error_entry(
                f"Unknown operation named '{operation_name}'" if operation_name
                else "The document must name the operation to run: it defines several",
                VALIDATION_FAILED_CODE)]}, ctx.db.cost())
        except Exception:
            return early({"data": None, "errors": [internal_error_entry("outside resolvers")]}, ctx.db.cost())
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(result.errors)
        cost = ctx.db.cost()
        cost["milliseconds"] = round((time.perf_counter() - started) * 1000, 3)
        extensions = dict(result.extensions or {})
        extensions["landscape"] = {**extensions.get("landscape", {}), **cost}
        body["extensions"] = extensions
        if "errors" in body:
            response = _json(body)
        else:
            # The same bytes as orjson.dumps(body), with the data's JSON kept for the cache.
            data_json = orjson.dumps(body["data"])
            response = Response(b'{"data":' + data_json + b',"extensions":' + orjson.dumps(extensions) + b"}",
                                media_type="application/json")
            # Only an answer with no error, computed while no commit landed, is tagged and kept;
            # nor one that read the payload store, which changes (a purge) without a commit.
            if tag is not None and versions is not None and "payload_by_ref" not in vars(ctx.loaders) \
                    and await versions.current() == version:
                response.headers.update({"ETag": tag, **_CACHE_CONTROL})
                if response_cache is not None and scope is not None and ctx.cacheable:
                    response_cache.put(tag, Entry(data_json, {
                        k: v for k, v in extensions["landscape"].items() if k not in cost}, scope))
        status, codes = classify_result(body["data"], body.get("errors"))
        payload_bytes = ctx.loaders.payload_by_ref.bytes_served if "payload_by_ref" in vars(ctx.loaders) else 0
        metrics.observe_request(operation_type, status, time.perf_counter() - started, cost["sqlStatements"],
                                cost["rowsRead"], codes, payload_bytes)
        if span is not None:
            span.finish(cost, codes)
        return response

    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(_request: Request) -> Response:
        if state.shutting_down or state.landscape is None:
            return JSONResponse({"status": "not ready", "reason": "starting or stopping"}, 503)
        if group is not None:
            ready, why = group.ready()
            if not ready:
                return JSONResponse({"status": "not ready", "reason": why}, 503)
        try:
            await check_ready(state.landscape)
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
        # GET runs persisted queries only; If-None-Match/ETag let a browser client revalidate.
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                                     allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type", "If-None-Match"],
                                     expose_headers=["ETag"], allow_credentials=False))
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
