"""The `landscape-graphql` command: serve, demo, schema."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from collections.abc import Sequence
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
    p.add_argument("--oidc-jwks-url", help="where the issuer publishes its keys (JWKS)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        from .schema import sdl
        sys.stdout.write(sdl())
        return 0
    if args.command == "demo":
        return _demo(args)
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
        if not (args.oidc_issuer and args.oidc_audience and args.oidc_jwks_url):
            raise SystemExit("landscape-graphql: --oidc-issuer, --oidc-audience and --oidc-jwks-url go together")
        oidc = OIDCConfig(issuer=args.oidc_issuer, audience=args.oidc_audience, jwks_url=args.oidc_jwks_url)
    enabled = args.auth_tokens is not None or oidc is not None
    return build_authenticator(tokens_file=args.auth_tokens, oidc=oidc), enabled


def _serve(database: str, args: argparse.Namespace, payloads: list[str]) -> int:
    # Importing the server builds ~1M objects that all live: collecting them while importing
    # is wasted start-up (~100-150 ms here). tune_garbage_collector() turns it back on.
    gc.disable()
    from ._logging import configure
    from ._process import tune_garbage_collector
    from .app import AppConfig, create_app
    from .auth import InsecureBindError, refuse_insecure_bind
    from .db.engine import EngineOptions, open_landscape
    from .settings import Settings

    configure()
    try:
        authenticator, auth_enabled = _authenticator(args)
    except (OSError, ValueError) as exc:
        print(f"landscape-graphql: cannot read the authentication settings: {exc}", file=sys.stderr)
        return 2
    for folder in payloads:
        if not Path(folder).is_dir():
            # A store that is configured but absent would report every payload PURGED.
            print(f"landscape-graphql: the payload store {folder} is not a folder", file=sys.stderr)
            return 2
    try:
        refuse_insecure_bind(args.host, auth_enabled, args.insecure_no_auth)
    except InsecureBindError as exc:
        print(f"landscape-graphql: {exc}", file=sys.stderr)
        return 2
    tracing, provider = None, None
    if args.otel:
        from .tracing import TracingUnavailable, otlp_tracing
        try:
            tracing, provider = otlp_tracing(record_queries=args.otel_record_queries)
        except TracingUnavailable as exc:
            print(f"landscape-graphql: {exc}", file=sys.stderr)
            return 2
    elif args.otel_record_queries:
        print("landscape-graphql: --otel-record-queries needs --otel", file=sys.stderr)
        return 2
    # statement_timeout a little past the request timeout: the deadline's own cancel comes first.
    options = EngineOptions(sqlcipher=args.sqlcipher, key_env=args.key_env,
                            statement_timeout_s=args.timeout + 1.0)

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
    introspection = not args.no_introspection
    config = AppConfig(database=database,
                       settings=Settings(request_timeout_s=args.timeout, introspection=introspection),
                       engine_options=options, payload_roots=tuple(payloads),
                       graphiql=introspection and not args.no_graphiql,
                       authenticator=authenticator,  # type: ignore[arg-type]
                       cors_origins=tuple(args.cors_origin), tracing=tracing)
    app = create_app(config)
    tune_garbage_collector()
    print(f"serving {described} on http://{args.host}:{args.port}/graphql", flush=True)
    from ._transport import TransportLimits
    transport = TransportLimits(max_connections=args.max_connections, head_timeout_s=args.head_timeout)
    try:
        _run_until_signal(app, args.host, args.port, transport)
    finally:
        if provider is not None:
            provider.shutdown()  # exports the spans still buffered
    return 0


def _run_until_signal(app: Any, host: str, port: int, transport: Any = None) -> None:
    import signal
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # /readyz fails from the first signal on, while in-flight requests still finish.
            app.state.landscape_state.shutting_down = True
            super().handle_exit(sig, frame)

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal after its graceful shutdown, so the process would
            # die by SIGTERM (exit 143 in a container) although it stopped cleanly: exit 0.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    from ._transport import server_options
    Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                          timeout_graceful_shutdown=30, **server_options(transport))).run()


if __name__ == "__main__":
    raise SystemExit(main())
