"""The `landscape-graphql` command: serve, demo, schema."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import LandscapeError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")


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


def _serve(database: str, args: argparse.Namespace, payloads: list[str]) -> int:
    import uvicorn

    from .app import AppConfig, create_app
    from .db.engine import EngineOptions, open_landscape
    from .settings import Settings

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
    config = AppConfig(database=database, settings=Settings(request_timeout_s=args.timeout),
                       engine_options=options, payload_roots=tuple(payloads),
                       graphiql=not args.no_graphiql)
    print(f"serving {described} on http://{args.host}:{args.port}/graphql", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info",
                workers=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
