"""The six scenarios. Each measures its subject and its baseline in the same run."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import orjson
import strawberry
from sqlalchemy import event
from sqlalchemy.engine import Engine

from landscape_graphql.app import AppConfig, create_app
from landscape_graphql.db.engine import Landscape as OpenLandscape
from landscape_graphql.db.engine import open_landscape
from landscape_graphql.execution import FastExecutor
from landscape_graphql.settings import Settings

from . import baselines
from .data import Landscape, landscape, lineage_token, token_sample
from .measure import Timing, cli_server, factory_server, free_port, time_async, time_sync


@dataclass
class Check:
    target: str
    measured: str
    passed: bool


@dataclass
class Result:
    number: int
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:,.1f}x"


@dataclass
class Options:
    repeat: int = 5
    quick: bool = False


# ---------------------------------------------------------------- in-process requests


async def asgi_post(app: Any, body: bytes, path: str = "/graphql") -> tuple[int, bytes]:
    """One request through the whole ASGI app (middleware, handler, serialisation), no socket."""
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    await app(scope, receive, send)
    return status, b"".join(chunks)


def _apps(ls: OpenLandscape, db: Path) -> tuple[Any, Any]:
    fast = create_app(AppConfig(database=str(db), settings=Settings(fast_execution=True), graphiql=False,
                                response_cache_bytes=0), ls)
    stock = create_app(AppConfig(database=str(db), settings=Settings(fast_execution=False), graphiql=False,
                                 response_cache_bytes=0), ls)
    return fast, stock


def _body(query: str, variables: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": query, "variables": variables})


def _ok(status: int, payload: bytes) -> dict[str, Any]:
    response: dict[str, Any] = orjson.loads(payload)
    if status != 200 or response.get("errors"):
        raise RuntimeError(f"request failed ({status}): {str(response.get('errors'))[:500]}")
    return response


# ---------------------------------------------------------------- 1. lineage of one token

LINEAGE = """query ($t: String!) { token(tokenId: $t) {
  tokenId rowId branchName forkGroupId joinGroupId createdAt
  nodeStates { stateId nodeId stepIndex attempt status durationMs startedAt completedAt }
  calls { callId callType status latencyMs }
  outcome { terminal result path rowOutcome sinkName recordedAt }
  ancestors(maxDepth: 5) { depthReached truncated tokens { tokenId branchName }
    edges { parentTokenId childTokenId kind ordinal } }
  descendants(maxDepth: 5) { depthReached truncated tokens { tokenId branchName }
    edges { parentTokenId childTokenId kind ordinal } }
} }"""


async def scenario_1(small: Landscape, opts: Options) -> Result:
    token = lineage_token(small)
    body = _body(LINEAGE, {"t": token})
    result = Result(1, "Lineage of one token (token, ancestors and descendants to depth 5, node states, "
                       "calls, outcome)", ("path", "median latency", "range", "vs fast path"))
    ls = await open_landscape(str(small.path))
    try:
        fast_app, stock_app = _apps(ls, small.path)
        sample = _ok(*await asgi_post(fast_app, body))
        fast = await time_async(lambda: asgi_post(fast_app, body), repeat=opts.repeat * 4)
        stock = await time_async(lambda: asgi_post(stock_app, body), repeat=opts.repeat * 4)
    finally:
        await ls.dispose()
    http: dict[str, Timing] = {}
    for name, fast_path in (("fast", True), ("stock", False)):
        with factory_server(small.path, free_port(), fast=fast_path) as server, httpx.Client() as client:
            def post(url: str = f"{server.url}/graphql") -> None:
                client.post(url, content=body, headers={"content-type": "application/json"}).raise_for_status()
            http[name] = time_sync(post, repeat=opts.repeat * 4, warmup=3)
    cost = sample["extensions"]["landscape"]
    result.rows += [
        ("in-process, fast path", ms(fast.median), fast.spread, "1.0x"),
        ("in-process, stock Strawberry/graphql-core", ms(stock.median), stock.spread, ratio(stock.median, fast.median)),
        ("HTTP (uvicorn, 1 worker), fast path", ms(http["fast"].median), http["fast"].spread, "-"),
        ("HTTP (uvicorn, 1 worker), stock", ms(http["stock"].median), http["stock"].spread,
         ratio(http["stock"].median, http["fast"].median)),
    ]
    result.notes.append(f"Token {token} (a fork child: one parent, a coalesced child); the response "
                        f"costs {cost['sqlStatements']} SQL statements, {cost['rowsRead']} rows, "
                        f"{cost['dbMilliseconds']} ms in the database.")
    return result


# ---------------------------------------------------------------- 2. batched explain

EXPLAIN_TOKENS = """query ($run: String!, $ids: [String!]!) { explainTokens(runId: $run, tokenIds: $ids) {
  token { tokenId rowId branchName forkGroupId joinGroupId expandGroupId createdAt }
  sourceRow { rowId rowIndex sourceDataHash }
  parentTokens { tokenId }
  nodeStates { stateId nodeId stepIndex attempt status durationMs }
  routingEvents { stateId edgeId mode ordinal }
  calls { callId stateId callIndex callType status }
  validationErrors { errorId destination }
  transformErrors { errorId destination }
  outcome { terminal result path sinkName }
} }"""


async def scenario_2(small: Landscape, opts: Options) -> Result:
    ids = token_sample(small, 1000)
    body = _body(EXPLAIN_TOKENS, {"run": small.run_id, "ids": ids})
    result = Result(2, "Batched explain of 1,000 tokens in one request", ("path", "median", "range",
                                                                          "SQL statements", "one-by-one / this"))
    ls = await open_landscape(str(small.path))
    try:
        fast_app, stock_app = _apps(ls, small.path)
        response = _ok(*await asgi_post(fast_app, body))
        statements = response["extensions"]["landscape"]["sqlStatements"]
        stock_statements = _ok(*await asgi_post(stock_app, body))["extensions"]["landscape"]["sqlStatements"]
        fast = await time_async(lambda: asgi_post(fast_app, body), repeat=opts.repeat)
        stock = await time_async(lambda: asgi_post(stock_app, body), repeat=opts.repeat)
    finally:
        await ls.dispose()
    with small.connect() as conn:
        one = baselines.ExplainOneByOne(conn)
        one.explain_all(ids)
        baseline_statements = one.statements
        base = time_sync(lambda: baselines.ExplainOneByOne(conn).explain_all(ids), repeat=opts.repeat)
        # The same rows fetched with the API's batched statements, as the floor of any batching.
        batched = time_sync(lambda: _batched_floor(conn, ids), repeat=opts.repeat)
    result.rows += [
        ("explainTokens, fast path (in-process request)", ms(fast.median), fast.spread, str(statements),
         ratio(base.median, fast.median)),
        ("explainTokens, stock path (in-process request)", ms(stock.median), stock.spread, str(stock_statements),
         ratio(base.median, stock.median)),
        ("baseline: one by one, ELSPETH's statements (sqlite3 + orjson)", ms(base.median), base.spread,
         f"{baseline_statements:,}", "1.0x"),
        ("reference: the batched statements alone (sqlite3, no mapping, no JSON)", ms(batched.median),
         batched.spread, "9", ratio(base.median, batched.median)),
    ]
    over_floor = fast.median / batched.median
    result.checks += [
        Check("<= 1.5x the batched statements alone (reference)", f"{over_floor:.1f}x", over_floor <= 1.5),
        Check("<= 25 SQL statements", str(statements), statements <= 25),
    ]
    result.notes.append("1,000 tokens spread evenly over the 25,000-row run (every 117th in creation order).")
    return result


def _batched_floor(conn: sqlite3.Connection, ids: list[str]) -> int:
    keys = orjson.dumps(ids).decode()
    rows = 0
    for sql in (
        "SELECT * FROM tokens WHERE token_id IN (SELECT value FROM json_each(?))",
        "SELECT * FROM rows WHERE row_id IN (SELECT row_id FROM tokens WHERE token_id IN (SELECT value FROM json_each(?)))",
        "SELECT * FROM node_states WHERE token_id IN (SELECT value FROM json_each(?)) ORDER BY token_id, step_index, attempt",
        "SELECT s.token_id, e.* FROM routing_events e JOIN node_states s ON s.state_id = e.state_id "
        "WHERE s.token_id IN (SELECT value FROM json_each(?))",
        "SELECT s.token_id, c.* FROM calls c JOIN node_states s ON s.state_id = c.state_id "
        "WHERE s.token_id IN (SELECT value FROM json_each(?))",
        "SELECT p.*, t.* FROM token_parents p LEFT JOIN tokens t ON t.token_id = p.parent_token_id "
        "WHERE p.token_id IN (SELECT value FROM json_each(?))",
        "SELECT * FROM transform_errors WHERE token_id IN (SELECT value FROM json_each(?))",
        "SELECT * FROM token_outcomes WHERE token_id IN (SELECT value FROM json_each(?))",
        "SELECT * FROM validation_errors WHERE row_id IN (SELECT row_id FROM tokens WHERE token_id IN "
        "(SELECT value FROM json_each(?)))",
    ):
        rows += len(conn.execute(sql, (keys,)).fetchall())
    return rows


# ---------------------------------------------------------------- 3. export over HTTP

TOKENS_PAGE = """query ($r: String!, $after: String) { run(runId: $r) { tokens(first: 500, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { tokenId rowId branchName forkGroupId joinGroupId expandGroupId stepInPipeline createdAt
    nodeStates { stateId nodeId stepIndex attempt status inputHash outputHash durationMs startedAt completedAt }
    outcome { outcomeId terminal result path rowOutcome sinkName recordedAt }
    parents { tokenId } } } } }"""
CALLS_PAGE = """query ($r: String!, $after: String) { run(runId: $r) { calls(first: 500, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { callId stateId operationId callIndex callType status requestHash responseHash latencyMs createdAt }
} } }"""
VALIDATION_PAGE = """query ($r: String!, $after: String) { run(runId: $r) { validationErrors(first: 500, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { errorId nodeId rowId rowHash error schemaMode destination createdAt violationType }
} } }"""
TRANSFORM_PAGE = """query ($r: String!, $after: String) { run(runId: $r) { transformErrors(first: 500, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { errorId tokenId transformId rowHash destination createdAt }
} } }"""
EXPORT = (("tokens", TOKENS_PAGE), ("calls", CALLS_PAGE), ("validationErrors", VALIDATION_PAGE),
          ("transformErrors", TRANSFORM_PAGE))


def export_over_http(url: str, run_id: str) -> tuple[int, int, int]:
    """Page through everything; return (requests, records, response bytes)."""
    requests = records = size = 0
    with httpx.Client(timeout=120) as client:
        for connection, query in EXPORT:
            after = None
            while True:
                response = client.post(f"{url}/graphql", content=_body(query, {"r": run_id, "after": after}),
                                       headers={"content-type": "application/json"})
                requests += 1
                size += len(response.content)
                payload = orjson.loads(response.content)
                if response.status_code != 200 or payload.get("errors"):
                    raise RuntimeError(f"export page failed: {str(payload.get('errors'))[:500]}")
                page = payload["data"]["run"][connection]
                for node in page["nodes"]:
                    records += 1 + len(node.get("nodeStates") or ()) + len(node.get("parents") or ())
                    records += 1 if node.get("outcome") else 0
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
    return requests, records, size


def scenario_3(small: Landscape, large: Landscape | None, opts: Options) -> Result:
    result = Result(3, "Full-run export over HTTP through paged queries (tokens with node states, outcome "
                       "and parents; calls; validation and transform errors; pages of 500)",
                    ("rows", "export over HTTP", "floor: sqlite3 + orjson", "export / floor",
                     "server peak RSS", "requests", "records", "response MB"))
    measured: dict[int, tuple[float, float, float]] = {}
    for ls, repeat in ((small, max(2, opts.repeat // 2)), (large, 1)):
        if ls is None:
            continue
        with cli_server(ls.path, free_port()) as server:
            counts: tuple[int, int, int] = (0, 0, 0)

            def run(url: str = server.url, run_id: str = ls.run_id) -> None:
                nonlocal counts
                counts = export_over_http(url, run_id)

            timing = time_sync(run, repeat=repeat, warmup=0 if ls is large else 1)
            rss = server.peak_rss_mb()
        with ls.connect() as conn:
            floor = time_sync(lambda c=conn, r=ls.run_id: baselines.export_floor(c, r), repeat=repeat,
                              warmup=0 if ls is large else 1)
        measured[ls.rows] = (timing.median, floor.median, rss)
        requests, records, size = counts
        result.rows.append((f"{ls.rows:,}", ms(timing.median), ms(floor.median), ratio(timing.median, floor.median),
                            f"{rss:,.0f} MB", f"{requests:,}", f"{records:,}", f"{size / 1e6:,.0f}"))
    wall, floor_s, rss_small = measured[small.rows]
    result.checks.append(Check("<= 2x the floor's wall time (25,000 rows)", ratio(wall, floor_s),
                               wall <= 2 * floor_s))
    result.checks.append(Check("server peak RSS <= 300 MB", f"{max(m[2] for m in measured.values()):,.0f} MB",
                               all(m[2] <= 300 for m in measured.values())))
    if large is not None:
        rss_large = measured[large.rows][2]
        result.checks.append(Check("peak RSS at 250,000 rows no more than at 25,000 (10 MB allowance)",
                                   f"{rss_large:,.0f} vs {rss_small:,.0f} MB", rss_large <= rss_small + 10))
    result.notes.append("The server is `landscape-graphql serve --db … --no-graphiql` in a subprocess; the client "
                        "(httpx, one keep-alive connection, this process) parses every page. The floor selects "
                        "the same records of the run with sqlite3, builds their dicts and serialises them "
                        "with orjson, 20,000 at a time. Peak RSS is the server's VmHWM.")
    return result


# ---------------------------------------------------------------- 4. large lists


@strawberry.enum
class Kind(Enum):
    ALPHA = "alpha"
    BETA = "beta"
    GAMMA = "gamma"


@dataclass(frozen=True, slots=True)
class Thing:
    id: str
    name: str
    count: int
    ratio: float
    active: bool
    kind: Kind
    seen_at: datetime
    note: str | None
    size: int
    code: str


@strawberry.type
class ThingType:
    id: str
    name: str
    count: int
    ratio: float
    active: bool
    kind: Kind
    seen_at: datetime
    note: str | None
    size: int
    code: str


def _things(n: int) -> list[Thing]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kinds = list(Kind)
    return [Thing(f"{i:032x}", f"thing-{i}", i, i / 7, i % 2 == 0, kinds[i % 3], start + timedelta(seconds=i),
                  None if i % 5 else f"note {i}", i * 3, f"c{i % 97}") for i in range(n)]


THINGS = _things(10_000)
FIELDS = ("id", "name", "count", "ratio", "active", "kind", "seenAt", "note", "size", "code")
LIST_QUERY = "{ things { " + " ".join(FIELDS) + " } }"


@strawberry.type
class ListQuery:
    @strawberry.field
    def things(self) -> list[ThingType]:
        return THINGS  # type: ignore[return-value]


def _plain_dicts() -> bytes:
    return orjson.dumps({"data": {"things": [
        {"id": t.id, "name": t.name, "count": t.count, "ratio": t.ratio, "active": t.active,
         "kind": t.kind.name, "seenAt": t.seen_at.isoformat(), "note": t.note, "size": t.size, "code": t.code}
        for t in THINGS]}})


async def scenario_4(opts: Options) -> Result:
    fast_schema = strawberry.Schema(query=ListQuery, execution_context_class=FastExecutor)
    stock_schema = strawberry.Schema(query=ListQuery)

    async def run(schema: strawberry.Schema) -> bytes:
        response = await schema.execute(LIST_QUERY)
        assert not response.errors, response.errors
        return orjson.dumps({"data": response.data})

    expected = _plain_dicts()
    assert await run(fast_schema) == expected == await run(stock_schema), "the three must agree"
    fast = await time_async(lambda: run(fast_schema), repeat=opts.repeat * 2)
    stock = await time_async(lambda: run(stock_schema), repeat=opts.repeat * 2)
    plain = time_sync(_plain_dicts, repeat=opts.repeat * 2)
    fields = len(THINGS) * len(FIELDS)
    per = {name: t.median / fields * 1e6 for name, t in (("fast", fast), ("stock", stock), ("plain", plain))}
    result = Result(4, "Large lists: 10,000 objects x 10 scalar fields (String, Int, Float, Boolean, enum, "
                       "DateTime, nullable String)", ("path", "median", "per field", "vs plain dicts"))
    result.rows += [
        ("fast path (FastExecutor)", ms(fast.median), f"{per['fast']:.3f} µs", ratio(fast.median, plain.median)),
        ("stock Strawberry / graphql-core", ms(stock.median), f"{per['stock']:.3f} µs",
         ratio(stock.median, plain.median)),
        ("plain dicts + orjson", ms(plain.median), f"{per['plain']:.3f} µs", "1.0x"),
    ]
    result.checks.append(Check("<= 5x the plain-dict floor per field", ratio(fast.median, plain.median),
                               fast.median <= 5 * plain.median))
    result.notes.append("Each figure includes serialising the response with orjson; the three outputs are "
                        "checked byte for byte equal first.")
    return result


# ---------------------------------------------------------------- 5. HTTP load

_WRK_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _wrk(url: str, body: bytes | list[bytes], seconds: int, connections: int,
         headers: dict[str, str] | None = None) -> tuple[float, dict[str, float], str]:
    """wrk's rate and latency percentiles; a list of bodies is sent round-robin, one per request."""
    bodies = body if isinstance(body, list) else [body]
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        for key, value in all_headers.items():
            script.write(f"wrk.headers[{orjson.dumps(key).decode()}] = {orjson.dumps(value).decode()}\n")
        script.write("bodies = {" + ",".join(orjson.dumps(b.decode()).decode() for b in bodies) + "}\n"
                     "i = 0\nrequest = function()\n  i = i + 1\n"
                     "  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])\nend\n")
    if shutil.which("wrk") is None:
        raise SystemExit("scenarios 5 and 7 need wrk: apt-get install wrk (or run --only 1,2,3,4,6)")
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "--timeout", "30s", "-s", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    found = _WRK_LINE.search(out)
    rate = float(found.group(1)) if found else 0.0
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {p: float(v) * scale[u] for p, v, u in _LATENCY.findall(out)}
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"Socket errors: .*timeout (\d+)", out)
    if failed or (timeouts and int(timeouts.group(1))) or not latency:
        raise RuntimeError(f"failed or timed-out responses under load:\n{out}")
    return rate, latency, out


def _load_row(label: str, rate: float, latency: dict[str, float]) -> tuple[str, ...]:
    return (label, f"{rate:,.0f}", f"{latency.get('50', 0):.1f} ms", f"{latency.get('90', 0):.1f} ms",
            f"{latency.get('99', 0):.1f} ms")


def _warm(url: str, bodies: list[bytes]) -> None:
    with httpx.Client() as client:  # warm both workers
        for body in bodies[:40]:
            client.post(url, content=body, headers={"content-type": "application/json"}).raise_for_status()


def scenario_5(small: Landscape, opts: Options) -> Result:
    seconds = 5 if opts.quick else 20
    bodies = [_body(LINEAGE, {"t": t}) for t in token_sample(small, 1000)]
    result = Result(5, f"HTTP load: the scenario-1 query under wrk, a different token per request, response "
                       f"cache off, 2 uvicorn workers, 32 connections, {seconds} s",
                    ("endpoint", "requests/s", "p50", "p90", "p99"))
    with factory_server(small.path, free_port(), workers=2) as server:
        _warm(f"{server.url}/graphql", bodies)
        rate, latency, _ = _wrk(f"{server.url}/graphql", bodies, seconds, 32)
        plain_rate, plain_latency, _ = _wrk(f"{server.url}/plain", bodies[0], seconds, 32)
    result.rows += [_load_row("POST /graphql, scenario-1 query, 1,000 tokens in turn", rate, latency),
                    _load_row("POST /plain, Starlette + orjson", plain_rate, plain_latency)]
    result.checks += [
        Check(">= 1,500 requests/s", f"{rate:,.0f}", rate >= 1500),
        Check("p99 <= 50 ms", f"{latency['99']:.1f} ms", latency["99"] <= 50),
    ]
    result.notes.append("`uvicorn bench.app:make --factory --workers 2` (bench/app.py, response cache off); "
                        "wrk -t 2 -c 32 on the same 2-core machine, so client and server share the CPUs.")
    return result


def scenario_7(small: Landscape, opts: Options) -> Result:
    seconds = 5 if opts.quick else 20
    body = _body(LINEAGE, {"t": lineage_token(small)})
    result = Result(7, f"HTTP caching: the scenario-1 query answered from the response cache, and revalidated "
                       f"(304), 2 uvicorn workers, 32 connections, {seconds} s",
                    ("endpoint", "requests/s", "p50", "p90", "p99"))
    with factory_server(small.path, free_port(), workers=2, cache_mb=64) as server:
        _warm(f"{server.url}/graphql", [body] * 40)
        with httpx.Client() as client:
            tag = client.post(f"{server.url}/graphql", content=body,
                              headers={"content-type": "application/json"}).headers["etag"]
            assert client.post(f"{server.url}/graphql", content=body, headers={
                "content-type": "application/json", "if-none-match": tag}).status_code == 304
        cached, cached_latency, _ = _wrk(f"{server.url}/graphql", body, seconds, 32)
        revalidated, revalidated_latency, _ = _wrk(f"{server.url}/graphql", body, seconds, 32,
                                                   {"If-None-Match": tag})
        plain, plain_latency, _ = _wrk(f"{server.url}/plain", body, seconds, 32)
    result.rows += [_load_row("POST /graphql, answered from the response cache", cached, cached_latency),
                    _load_row("POST /graphql with If-None-Match: 304", revalidated, revalidated_latency),
                    _load_row("POST /plain, Starlette + orjson", plain, plain_latency)]
    result.checks += [
        Check(">= 50 % of the plain endpoint's rate from the cache", f"{cached / plain:.0%}", cached >= 0.5 * plain),
        Check(">= 60 % of the plain endpoint's rate for 304s", f"{revalidated / plain:.0%}",
              revalidated >= 0.6 * plain),
    ]
    result.notes.append("`BENCH_CACHE_MB=64 uvicorn bench.app:make --factory --workers 2`; the ETag is the same "
                        "in both workers (the data version is read from the database file, not a connection).")
    return result


# ---------------------------------------------------------------- 6. start-up


def scenario_6(large: Landscape, opts: Options) -> Result:
    result = Result(6, f"Start-up on the {large.rows:,}-row database: until /readyz answers ready",
                    ("run", "time to ready"))
    times = []
    for i in range(max(3, opts.repeat // 2)):
        server = cli_server(large.path, free_port())
        try:
            times.append(server.start())
        finally:
            server.stop()
        result.rows.append((str(i + 1), ms(times[-1])))
    median = sorted(times)[len(times) // 2]
    statements = asyncio.run(_startup_statements(large.path))
    scans = []
    with large.connect() as conn:
        for sql, params in statements:
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
            for step in plan:
                # A scan of the catalog (sqlite_master), one that stops at its LIMIT, or of a table
                # of a handful of rows (the schema identity singleton) reads no audit data.
                scanned = re.match(r"SCAN (\w+)", step)
                if scanned is None or re.search(r"\bLIMIT\b", sql, re.I):
                    continue
                # The scanned name may be an alias, in a FROM list: "FROM a AS x, f(x.name) AS y".
                alias = re.search(rf"(?:FROM|,|JOIN)\s*(\w+)(?:\([^)]*\))?\s+(?:AS\s+)?{scanned.group(1)}\b",
                                  sql, re.I)
                table = alias.group(1) if alias else scanned.group(1)
                if table.startswith(("sqlite_", "pragma_")):
                    continue  # the catalog, and its table-valued functions, hold no audit data
                (rows,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                if rows > 100:
                    scans.append(f"{step} ({rows:,} rows)")
            result.notes.append(f"start-up statement `{' '.join(sql.split())}`: plan {plan or ['(none)']}")
    result.checks += [
        Check("ready in < 1 s (median)", ms(median), median < 1.0),
        Check("no full-table scan at start-up", "none" if not scans else "; ".join(scans), not scans),
    ]
    result.notes.insert(0, "`landscape-graphql serve --db …` spawned afresh each run (imports, the epoch check, "
                           "the app's own open, the first /readyz), timed to the first 200 \"ready\".")
    return result


async def _startup_statements(db: Path) -> list[tuple[str, tuple[Any, ...]]]:
    """The SQL the server sends while starting and answering its first /readyz, in this process."""
    seen: list[tuple[str, tuple[Any, ...]]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, tuple(parameters) if isinstance(parameters, list | tuple) else ()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        app = create_app(AppConfig(database=str(db), graphiql=False))
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await messages.put({"type": "lifespan.startup"})
        started = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        lifespan = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send))
        await started.wait()
        status, _ = await _asgi_get(app, "/readyz")
        assert status == 200
        await messages.put({"type": "lifespan.shutdown"})
        await lifespan
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return seen


async def _asgi_get(app: Any, path: str) -> tuple[int, bytes]:
    status = 0
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
               "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
               "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}, receive, send)
    return status, b"".join(body)


SCENARIOS: dict[int, Callable[..., Any]] = {1: scenario_1, 2: scenario_2, 3: scenario_3, 4: scenario_4,
                                            5: scenario_5, 6: scenario_6}


def datasets(quick: bool) -> tuple[Landscape, Landscape | None]:
    return landscape(25_000), (None if quick else landscape(250_000))


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z")
