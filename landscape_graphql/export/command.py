"""The `export` and `verify` subcommands: arguments, progress, exit codes.

Exit codes: 0 ok, 1 error (FILE.part and the checkpoint are kept for --resume), 2 usage,
3 verification failed. Stdout carries data only with `-o -`; progress, warnings and the
summary go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.metadata
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from . import CHUNK_RECORDS, FORMAT_ID
from .manifest import ExportError, VerificationFailed, file_digest, hmac_key, manifest_bytes, sign
from .writer import ExportWriter, manifest_path

# In-process pages: small enough that a page's rows, objects and lines stay a few MB (peak
# memory follows the page, 5000 records doubled it), large enough that statements are few.
LOCAL_PAGE_SIZE = 1000


def add_parsers(sub: Any) -> None:
    ex = sub.add_parser("export", help="export a run or one paged connection of a query, signed and resumable")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", metavar="PATH_OR_URL", help="read this database in-process (read-only, no HTTP)")
    src.add_argument("--url", help="page through a running server's /graphql")
    ex.add_argument("--token-env", metavar="VAR", help="environment variable holding the bearer token (--url)")
    ex.add_argument("--payloads", action="append", default=[], metavar="DIR", help="payload store (with --db)")
    ex.add_argument("--sqlcipher", action="store_true", help="the SQLite file is SQLCipher-encrypted")
    ex.add_argument("--key-env", default="ELSPETH_AUDIT_KEY", help="variable holding the SQLCipher key")
    ex.add_argument("--preset", choices=("run",), help="--preset run --run ID: every record of a run")
    ex.add_argument("--run", metavar="ID")
    ex.add_argument("--query", metavar="FILE|-", help="a query whose one connection takes $after")
    ex.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="a query variable (VALUE is JSON if it parses, else a string)")
    ex.add_argument("--vars", metavar="FILE", help="query variables as a JSON object")
    ex.add_argument("--path", help="the connection to page, e.g. data.run.tokens, when the query has several")
    ex.add_argument("--format", choices=("jsonl", "json", "csv", "elspeth-v1"), default="jsonl")
    ex.add_argument("-o", "--output", required=True, metavar="FILE|-", help="output file (.gz compresses); - is stdout")
    ex.add_argument("--manifest", type=Path, help="where the manifest goes with -o - (default: none)")
    ex.add_argument("--explode", metavar="PATH", help="csv: one row per element of this list")
    ex.add_argument("--excel-safe", action="store_true",
                    help="csv: prefix cells starting with = + - @ with ' (off: it changes the data)")
    ex.add_argument("--with-payloads", action="store_true", help="run preset: inline payload bodies and states")
    ex.add_argument("--allow-running", action="store_true", help="export a run that is still running")
    ex.add_argument("--sign-key", type=Path, metavar="PEM", help="Ed25519 private key (PKCS#8 PEM)")
    ex.add_argument("--hmac-key-env", metavar="VAR", help="sign with HMAC-SHA256, the key in this variable")
    ex.add_argument("--resume", action="store_true", help="continue an interrupted export from its checkpoint")
    ex.add_argument("--page-size", type=int, default=0, help="records per page (default 1000 in-process; over HTTP the "
                    "largest Run.exportRecords page the default limits allow)")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress")
    ex.add_argument("--checkpoint-every", type=float, default=1.0, help=argparse.SUPPRESS)

    ve = sub.add_parser("verify", help="verify an export, a record range, or an evidence slip")
    ve.add_argument("file", nargs="?", type=Path)
    ve.add_argument("--pubkey", type=Path, metavar="PEM", help="Ed25519 public key the manifest is signed with")
    ve.add_argument("--hmac-key-env", metavar="VAR", help="variable holding the HMAC-SHA256 key")
    ve.add_argument("--records", metavar="A-B", help="check only these records (reads only their chunks)")
    ve.add_argument("--prove", type=int, metavar="N", help="write an evidence slip for record N (with -o)")
    ve.add_argument("-o", "--output", type=Path, metavar="SLIP")
    ve.add_argument("--slip", type=Path, help="check an evidence slip alone")


def _err(message: str) -> None:
    print(f"landscape-graphql: {message}", file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_export(args))
    except ExportError as exc:
        _err(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted; FILE.part and its checkpoint are kept: run again with --resume")
        return 1


def run_verify(args: argparse.Namespace) -> int:
    from .verify import check_files, check_slip, check_tree, load_manifest, prove, verify_full, verify_range
    try:
        public, secret = _verify_keys(args)
        if args.slip is not None:
            check_slip(orjson.loads(args.slip.read_bytes()), public, secret)
            _err(f"ok: the slip's record leads to the signed root ({args.slip})")
            return 0
        if args.file is None:
            raise ExportError("verify needs FILE or --slip", 2)
        manifest = load_manifest(args.file)
        from .manifest import check_signatures
        checked = check_signatures(manifest, public, secret)
        if not checked:
            _err("warning: no --pubkey or --hmac-key-env: the signatures were not checked")
        if args.prove is not None:
            if args.output is None:
                raise ExportError("--prove needs -o SLIP", 2)
            args.output.write_bytes(orjson.dumps(prove(args.file, manifest, args.prove)) + b"\n")
            _err(f"wrote the evidence slip of record {args.prove} to {args.output}")
            return 0
        if args.records:
            first, _, last = args.records.partition("-")
            try:
                a, b = int(first), int(last or first)
            except ValueError:
                raise ExportError("--records takes A-B (record numbers from 0)", 2) from None
            chunks = verify_range(args.file, manifest, a, b)
            _err(f"ok: records {a}-{b} match the signed root ({chunks} chunk(s) read)")
            return 0
        count = verify_full(args.file, manifest)
        check_tree(manifest)
        check_files(args.file, manifest)
        what = f"{count} records" if count >= 0 else "the CSV file (its cells are not re-hashed)"
        _err(f"ok: {what}, {len(manifest['chunks'])} chunks, root {manifest['root'][:16]}…"
             + (f", signed by {', '.join(checked)}" if checked else ""))
        return 0
    except VerificationFailed as exc:
        _err(f"verification FAILED: {exc}")
        return 3
    except ExportError as exc:
        _err(exc.message)
        return exc.exit_code
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        _err(f"verification FAILED: unreadable input ({exc.__class__.__name__}: {exc})")
        return 3


def _verify_keys(args: argparse.Namespace) -> tuple[Any, bytes | None]:
    from .manifest import load_public_key
    public = load_public_key(args.pubkey) if args.pubkey else None
    secret = hmac_key(args.hmac_key_env) if args.hmac_key_env else None
    return public, secret


def _variables(args: argparse.Namespace) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if args.vars:
        try:
            loaded = orjson.loads(Path(args.vars).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ExportError(f"cannot read --vars {args.vars}: {exc}", 2) from None
        if not isinstance(loaded, dict):
            raise ExportError("--vars must hold a JSON object", 2)
        variables.update(loaded)
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ExportError(f"--var takes NAME=VALUE, got {item!r}", 2)
        try:
            variables[name] = orjson.loads(value)
        except orjson.JSONDecodeError:
            variables[name] = value
    return variables


class Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.started = time.monotonic()
        self.last_line = self.started
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(unit=" records", file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, added: int, total: int | None) -> None:
        if self.bar is not None:
            if total is not None:
                self.bar.total = total
            self.bar.update(added)
        elif not self.quiet and time.monotonic() - self.last_line >= 10:
            self.last_line = time.monotonic()
            rate = done / max(self.last_line - self.started, 1e-9)
            print(f"exported {done:,} records ({rate:,.0f}/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _export(args: argparse.Namespace) -> int:
    from ..schema import sdl
    from .elspeth import FORMAT as ELSPETH
    from .formats import make_format
    from .runs import csv_columns
    from .sources import ConnectionSpec, HttpExecutor, InProcessExecutor, QuerySource, Source, find_connection

    if (args.preset is None) == (args.query is None):
        raise ExportError("give either --preset run --run ID or --query FILE", 2)
    if args.preset == "run" and not args.run:
        raise ExportError("--preset run needs --run ID", 2)
    if args.format == ELSPETH and (args.preset != "run" or args.db is None or not args.hmac_key_env):
        raise ExportError("--format elspeth-v1 needs --preset run, --db and --hmac-key-env", 2)
    to_stdout = args.output == "-"
    if to_stdout and args.resume:
        raise ExportError("--resume needs an output file", 2)
    out = None if to_stdout else Path(args.output)
    private = None
    if args.sign_key is not None:
        from .manifest import load_private_key
        private = load_private_key(args.sign_key)
    secret = hmac_key(args.hmac_key_env) if args.hmac_key_env else None
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise ExportError(f"the environment variable {args.token_env} is not set", 2)
    sdl_sha = hashlib.sha256(sdl().encode()).hexdigest()

    landscape: Any = None
    executor: Any
    if args.db is not None:
        from ..db.engine import EngineOptions, open_landscape
        from ..errors import LandscapeError
        from ..settings import Settings
        try:
            landscape = await open_landscape(args.db, EngineOptions(sqlcipher=args.sqlcipher, key_env=args.key_env))
        except LandscapeError as exc:
            raise ExportError(f"cannot read {args.db}: {exc.message}") from None
        executor = InProcessExecutor(landscape, Settings(), args.payloads)
    else:
        executor = HttpExecutor(args.url, token)
    try:
        header: dict[str, Any] = {"format": FORMAT_ID,
                                  "tool": {"name": "landscape-graphql",
                                           "version": importlib.metadata.version("landscape-graphql")},
                                  "sdl_sha256": sdl_sha}
        source: Source
        columns: list[str] = []
        signer = None
        if args.preset == "run":
            from .runs import (
                check_exportable,
                http_page_size,
                http_source,
                local_source,
                run_info_http,
                run_info_local,
            )
            info = (await run_info_local(landscape, args.run) if landscape is not None
                    else await run_info_http(executor, args.run))
            check_exportable(info, args.allow_running)
            header["database"] = {"epoch": info.epoch, "backend": info.backend,
                                  "order": "rowid" if info.backend != "postgresql" else "primary key"}
            header["run"] = {"run_id": info.run_id, "status": info.status, "completed_at": info.completed_at}
            header["with_payloads"] = bool(args.with_payloads)
            if landscape is not None:
                size = args.page_size or LOCAL_PAGE_SIZE
                if args.format == ELSPETH:
                    from .elspeth import Signer, render_record
                    if info.epoch != 2:
                        raise ExportError("--format elspeth-v1 is ELSPETH 0.4.1's format: epoch-2 databases only", 2)
                    assert secret is not None
                    signer = Signer(secret, info.run_id)
                    from .sources import RunTableSource
                    source = RunTableSource(landscape, info.run_id, size, render=render_record(info.run_id))
                else:
                    decorate = _payload_decorator(args.payloads) if args.with_payloads else None
                    source = local_source(landscape, info.run_id, size, decorate)
            else:
                if args.with_payloads:
                    raise ExportError("--with-payloads reads the payload store: use --db", 2)
                source = http_source(executor, info.run_id, args.page_size or http_page_size())
            columns = csv_columns(info.epoch)
            identity: Any = header["run"]
        else:
            query = sys.stdin.read() if args.query == "-" else _read(args.query)
            variables = _variables(args)
            spec: ConnectionSpec = find_connection(query, args.path)
            source = QuerySource(executor, query, variables, spec)
            columns = spec.columns
            header["query"] = {"text": query, "sha256": hashlib.sha256(query.encode()).hexdigest(),
                               "variables": variables,
                               "variables_sha256": hashlib.sha256(manifest_bytes(variables)).hexdigest(),
                               "path": ".".join(["data", *spec.path])}
            identity = header["query"]
        fmt_name = "jsonl" if args.format == ELSPETH else args.format
        fmt = make_format(fmt_name, columns, args.explode, args.excel_safe)
        fingerprint = hashlib.sha256(manifest_bytes({"identity": identity, "format": args.format, "sdl": sdl_sha,
                                                     "explode": args.explode, "excel_safe": args.excel_safe,
                                                     "with_payloads": args.with_payloads,
                                                     "output": args.output})).hexdigest()
        if signer is not None and args.resume:
            raise ExportError("an elspeth-v1 export cannot resume (its hash chain is not checkpointed): "
                              "export again", 2)
        writer = ExportWriter(out, fmt, fingerprint, resume=args.resume, checkpoint_every_s=args.checkpoint_every)
        progress = Progress(args.quiet)
        started = time.monotonic()
        cursor = writer.cursor
        pending: asyncio.Future[Any] | None = None
        try:
            if not writer.resumed or cursor is not None or writer.records == 0:
                task = pending = asyncio.ensure_future(source.page(cursor))
                while True:
                    page = await task
                    pending = None
                    if page.has_next_page:
                        # Asked for before this page is written: over HTTP the server reads the
                        # next page while this process hashes and writes.
                        task = pending = asyncio.ensure_future(source.page(page.end_cursor))
                    lines, objects = page.lines, page.objects
                    if signer is not None:
                        lines = [signer.sign(o) for o in (objects or [orjson.loads(line) for line in lines])]
                        objects = None
                    writer.write_page(lines, objects, page.end_cursor)
                    progress.update(writer.records, len(lines), page.total)
                    cursor = page.end_cursor
                    if not page.has_next_page:
                        break
            if signer is not None:
                writer.write_page([signer.manifest(header["run"]["completed_at"])], None, cursor)
        except BaseException:
            if pending is not None:
                pending.cancel()
            writer.abort()
            progress.close()
            raise
        progress.close()
        chunks, root = writer.finish()
        elapsed = time.monotonic() - started
        if signer is None and (out is not None or args.manifest is not None):
            manifest = {**header, "record_format": fmt_name,
                        "compression": "gzip" if writer.gzip else None,
                        "record_count": writer.records, "chunk_records": CHUNK_RECORDS, "chunks": chunks,
                        "root": root, "files": []}
            if out is not None:
                digest, size = file_digest(out)
                manifest["files"] = [{"name": out.name, "sha256": digest, "size": size}]
            sign(manifest, private, secret)
            target = args.manifest or manifest_path(out)  # type: ignore[arg-type]
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(manifest_bytes(manifest) + b"\n")
            os.replace(tmp, target)
        rate = writer.records / elapsed if elapsed > 0 else 0.0
        _err(f"exported {writer.records:,} records, {writer.bytes:,} bytes in {elapsed:.1f} s "
             f"({rate:,.0f} records/s), root {root}")
        return 0
    finally:
        if landscape is not None:
            await landscape.dispose()


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ExportError(f"cannot read the query {path}: {exc.strerror}", 2) from None


def _payload_decorator(roots: list[str]) -> Any:
    """Inline each payload a record refers to as `<name>_payload`: its state and body."""
    import base64

    from ..payloads import ByteBudget, PayloadStore
    if not roots:
        raise ExportError("--with-payloads needs --payloads DIR", 2)
    store = PayloadStore(roots, max_bytes_per_payload=1 << 40)

    async def decorate(records: list[dict[str, Any]]) -> None:
        wanted: list[tuple[dict[str, Any], str, str | None, str | None]] = []
        for record in records:
            for name in list(record):
                if name.endswith("_ref"):
                    stem = name[:-4]
                    if record[name] is not None or record.get(stem + "_hash") is not None:
                        wanted.append((record, stem, record[name], record.get(stem + "_hash")))
        if not wanted:
            return
        read = await store.read_many([(ref, h) for _, _, ref, h in wanted], budget=ByteBudget(1 << 62))
        for (record, stem, _, _), payload in zip(wanted, read, strict=True):
            body: dict[str, Any] = {"state": payload.state.value.upper(), "size_bytes": payload.size_bytes}
            if payload.data is not None:
                try:
                    body["text"] = payload.data.decode("utf-8")
                except UnicodeDecodeError:
                    body["base64"] = base64.b64encode(payload.data).decode()
            record[stem + "_payload"] = body

    return decorate
