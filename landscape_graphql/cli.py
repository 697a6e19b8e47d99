"""The `landscape-graphql` command: serve, demo, schema, export, verify."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LandscapeError


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--payloads", action="append", default=[], metavar="DIR",
                   help="payload store folder; repeat for databases whose runs used several")
    p.add_argument("--no-graphiql", action="store_true", help="do not serve GraphiQL")
    p.add_argument("--sqlcipher", action="store_true",
                   help="the SQLite file is SQLCipher-encrypted; the key comes from --key-env")
    p.add_argument("--key-env", default="ELSPETH_AUDIT_KEY",
                   help="environment variable holding the SQLCipher key (default ELSPETH_AUDIT_KEY)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="per-request timeout in seconds, enforced in the database (default 30)")
    p.add_argument("--no-introspection", action="store_true",
                   help="refuse introspection (also hides 'Did you mean' suggestions and GraphiQL)")
    p.add_argument("--auth-tokens", type=Path, metavar="FILE",
                   help="JSON file of sha256 hashes of bearer tokens, each optionally scoped to run ids")
    p.add_argument("--oidc-issuer", help="accept OIDC JWTs from this issuer")
    p.add_argument("--oidc-audience", help="the audience those JWTs must name")
    p.add_argument("--oidc-jwks-url", help="where the issuer publishes its keys (JWKS); default: the jwks_uri of its discovery document")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="allow a non-loopback --host without authentication")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin requests from this origin (repeatable; default none)")
    p.add_argument("--otel", action="store_true",
                   help="export OpenTelemetry traces over OTLP/HTTP, configured by the OTEL_EXPORTER_OTLP_* "
                        "variables (needs the [otel] extra; default off)")
    p.add_argument("--otel-record-queries", action="store_true",
                   help="with --otel, also record each query's text and variables (default: never)")
    p.add_argument("--max-connections", type=int, default=512, metavar="N",
                   help="open connections at most; more are closed at once (default 512)")
    p.add_argument("--head-timeout", type=float, default=10.0, metavar="S",
                   help="close a connection that sends no complete request head in S seconds (default 10)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes sharing the listening socket (default 1)")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop (default auto: uvloop when installed)")
    p.add_argument("--persisted-queries", type=Path, metavar="FILE",
                   help="trusted documents: a JSON object mapping each document's sha256 (hex) to its text")
    p.add_argument("--only-persisted", action="store_true",
                   help="run only the documents of --persisted-queries (no other query text, no APQ registration)")
    p.add_argument("--response-cache-mb", type=float, default=64.0, metavar="MB",
                   help="in-process cache of answers by ETag, per worker (default 64; 0 turns it off)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landscape-graphql",
                                     description="A read-only GraphQL lineage API over ELSPETH's Landscape")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a Landscape database")
    serve.add_argument("--db", required=True, metavar="PATH_OR_URL",
                       help="a SQLite file path, or a postgresql:// URL")
    _add_serve_options(serve)

    demo = sub.add_parser("demo", help="generate a demo Landscape and serve it (or only write it with --out)")
    demo.add_argument("--epoch", type=int, choices=(2, 29), default=29)
    demo.add_argument("--rows", type=int, default=200)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", type=Path, help="write the database here and exit")
    _add_serve_options(demo)

    sub.add_parser("schema", help="print the GraphQL SDL")
    from .export.command import add_parsers
    add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        from .schema import sdl
        sys.stdout.write(sdl())
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command in ("export", "verify"):
        from .export import command
        return command.run_export(args) if args.command == "export" else command.run_verify(args)
    return _serve(args.db, args, args.payloads)


def _demo(args: argparse.Namespace) -> int:
    from .demo import generate
    if args.out is not None:
        report = generate(args.out, epoch=args.epoch, rows=args.rows, seed=args.seed)
        print(f"wrote {report.db_path} (epoch {args.epoch}) with payloads in {report.payload_dir}")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="landscape-demo-"))
    report = generate(folder / "demo.db", epoch=args.epoch, rows=args.rows, seed=args.seed)
    print(f"demo Landscape (epoch {args.epoch}, seed {args.seed}) at {report.db_path}")
    return _serve(str(report.db_path), args, [*args.payloads, str(report.payload_dir)])


def _authenticator(args: argparse.Namespace) -> tuple[object, bool]:
    from .auth import OIDCConfig, build_authenticator
    oidc = None
    if args.oidc_issuer or args.oidc_audience or args.oidc_jwks_url:
        if not (args.oidc_issuer and args.oidc_audience):
            raise SystemExit("landscape-graphql: --oidc-issuer and --oidc-audience go together "
                             "(--oidc-jwks-url is optional: the issuer's discovery document names it)")
        oidc = OIDCConfig(issuer=args.oidc_issuer, audience=args.oidc_audience, jwks_url=args.oidc_jwks_url)
    enabled = args.auth_tokens is not None or oidc is not None
    return build_authenticator(tokens_file=args.auth_tokens, oidc=oidc), enabled


class _Refused(Exception):
    """The server cannot start with these settings; the message says why."""


@dataclass(frozen=True)
class _Build:
    """Everything a process needs to build the app: pickled to each worker of a multi-process server."""
    database: str
    args: argparse.Namespace
    payloads: tuple[str, ...]


def _serve(database: str, args: argparse.Namespace, payloads: list[str]) -> int:
    # Importing the server builds ~1M objects that all live: collecting them while importing
    # is wasted start-up (~100-150 ms here). tune_garbage_collector() turns it back on.
    gc.disable()
    from ._logging import configure
    from ._process import tune_garbage_collector
    from .auth import InsecureBindError, refuse_insecure_bind
    from .db.engine import EngineOptions, open_landscape
    from .extras import MissingExtra
    from .serving import bind_socket, run_single, run_workers

    configure()
    if args.workers < 1:
        print("landscape-graphql: --workers must be at least 1", file=sys.stderr)
        return 2
    for folder in payloads:
        if not Path(folder).is_dir():
            # A store that is configured but absent would report every payload PURGED.
            print(f"landscape-graphql: the payload store {folder} is not a folder", file=sys.stderr)
            return 2
    build = _Build(database, args, tuple(payloads))
    try:
        _, auth_enabled = _authenticator(args)
        refuse_insecure_bind(args.host, auth_enabled, args.insecure_no_auth)
    except (OSError, ValueError) as exc:
        print(f"landscape-graphql: cannot read the authentication settings: {exc}", file=sys.stderr)
        return 2
    except (InsecureBindError, MissingExtra) as exc:
        print(f"landscape-graphql: {exc}", file=sys.stderr)
        return 2
    options = EngineOptions(sqlcipher=args.sqlcipher, key_env=args.key_env)

    async def check() -> str:
        landscape = await open_landscape(database, options)
        try:
            return f"epoch {landscape.epoch} ({landscape.backend})"
        finally:
            await landscape.dispose()

    try:
        described = asyncio.run(check())
    except LandscapeError as exc:
        print(f"landscape-graphql: cannot serve {database}: {exc.message}", file=sys.stderr)
        return 2
    provider = None
    try:
        app, provider = _app(build)  # in the supervisor too: refuses bad settings before any worker starts
        if args.workers > 1:
            app = None
            if provider is not None:
                provider.shutdown()
                provider = None
        sock = bind_socket(args.host, args.port)
    except _Refused as exc:
        print(f"landscape-graphql: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"landscape-graphql: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    from ._transport import TransportLimits
    transport = TransportLimits(max_connections=args.max_connections, head_timeout_s=args.head_timeout)
    workers = "" if args.workers == 1 else f" with {args.workers} workers"
    print(f"serving {described} on http://{args.host}:{args.port}/graphql{workers}", flush=True)
    try:
        if app is not None:
            tune_garbage_collector()
            run_single(app, sock, args.loop, transport)
        else:
            run_workers(build, sock, args.workers, "landscape_graphql.cli:worker_app", args.loop, transport)
    finally:
        sock.close()
        if provider is not None:
            provider.shutdown()  # exports the spans still buffered
    return 0


def _app(build: _Build, group: Any = None) -> tuple[Any, Any]:
    """The app and its tracing provider (or None); raises _Refused."""
    from .app import AppConfig, create_app
    from .db.engine import EngineOptions
    from .settings import Settings

    args = build.args
    try:
        authenticator, _ = _authenticator(args)
    except (OSError, ValueError) as exc:
        raise _Refused(f"cannot read the authentication settings: {exc}") from exc
    tracing, provider = None, None
    if args.otel:
        from .tracing import TracingUnavailable, otlp_tracing
        try:
            tracing, provider = otlp_tracing(record_queries=args.otel_record_queries)
        except TracingUnavailable as exc:
            raise _Refused(str(exc)) from exc
    elif args.otel_record_queries:
        raise _Refused("--otel-record-queries needs --otel")
    from .persisted import PersistedQueries, load_trusted
    if args.only_persisted and args.persisted_queries is None:
        raise _Refused("--only-persisted needs --persisted-queries FILE")
    try:
        trusted = load_trusted(args.persisted_queries) if args.persisted_queries is not None else {}
    except ValueError as exc:
        raise _Refused(str(exc)) from exc
    if args.response_cache_mb < 0:
        raise _Refused("--response-cache-mb cannot be negative")
    introspection = not args.no_introspection
    config = AppConfig(database=build.database,
                       settings=Settings(request_timeout_s=args.timeout, introspection=introspection),
                       # statement_timeout a little past the request timeout: the deadline's own
                       # cancel comes first; this is the backstop should that cancel be lost.
                       engine_options=EngineOptions(sqlcipher=args.sqlcipher, key_env=args.key_env,
                                                    statement_timeout_s=args.timeout + 1.0),
                       payload_roots=build.payloads,
                       graphiql=introspection and not args.no_graphiql,
                       authenticator=authenticator,  # type: ignore[arg-type]
                       cors_origins=tuple(args.cors_origin), tracing=tracing, group=group,
                       persisted=PersistedQueries(trusted, only_persisted=args.only_persisted),
                       response_cache_bytes=int(args.response_cache_mb * 1024 * 1024))
    return create_app(config), provider


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the app the supervisor described."""
    from .serving import worker_build
    return build_worker_app(worker_build())


def build_worker_app(build: _Build) -> Any:
    """One worker's app, from the description `run_workers` hands each worker process."""
    import contextlib
    from collections.abc import AsyncIterator

    from ._logging import configure
    from ._process import tune_garbage_collector
    from ._shared import ServerGroup

    gc.disable()
    configure()
    app, provider = _app(build, ServerGroup.from_env())
    if provider is not None:
        # A worker dies by the re-raised SIGTERM after its graceful shutdown, so atexit never
        # runs: export the buffered spans when the app's lifespan ends.
        serve_lifespan = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(inner: Any) -> AsyncIterator[None]:
            try:
                async with serve_lifespan(inner):
                    yield
            finally:
                provider.shutdown()

        app.router.lifespan_context = lifespan
    tune_garbage_collector()
    return app


if __name__ == "__main__":
    raise SystemExit(main())
