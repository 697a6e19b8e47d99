"""Figures for the hardening of issue 10: what one client can do to the server.

`.venv/bin/python -m bench.hardening [--db FILE] [--seconds S] [--rounds N] [--baseline DIR]`

Against the real `landscape-graphql serve` (on the 25,000-row generated database by default):

1. idle connections: 1,000 connections that send nothing; how many are still open after 12 s,
   and /livez's latency meanwhile (items 4);
2. quadratic validation: 20 concurrent distinct documents of 1,150 same-named fields; their
   latency and /readyz's (item 5);
3. Run.dag: 10 clients asking for the DAG (distinct texts, so the response cache never answers),
   4 asking cheap queries, for `--seconds`; cheap p50 / p99 and /readyz p50 / max probed from
   the load generator's own event loop, and /readyz p50 / p99 / max probed from a process of its
   own (`readyz_apart_*`: the server's figure, without the load generator's loop delays) (item 6);
4. caches: 60 distinct valid ~900 KB queries; resident set before and after (item 7);
5. mixed load: `--rounds` rounds of `--seconds` of distinct queries, pages, lineage and DAGs;
   resident set after each round (item 9).

`--baseline DIR` runs the server from another checkout's package (e.g. `git archive` of the
commit before the fixes) through PYTHONPATH, for the before figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .data import landscape
from .measure import Server, cli_server, free_port


def _rss_mb(server: Server) -> float:
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pct(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def _probe(client: httpx.AsyncClient, path: str, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            await client.get(path, timeout=30)
        out.append(time.perf_counter() - started)
        await asyncio.sleep(0.1)


async def _post_loop(client: httpx.AsyncClient, query: Any, stop: asyncio.Event, out: list[float],
                     codes: dict[str, int]) -> None:
    while not stop.is_set():
        body = query() if callable(query) else query
        started = time.perf_counter()
        try:
            response = await client.post("/graphql", json=body, timeout=60)
            for error in response.json().get("errors") or []:
                code = error.get("extensions", {}).get("code", "?")
                codes[code] = codes.get(code, 0) + 1
        except httpx.HTTPError as exc:
            codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
        out.append(time.perf_counter() - started)


# /readyz probed from a process of its own (one kept-alive connection, every 100 ms): the
# in-process probe also times the load generator's own event loop, busy decoding responses.
_PROBE = """
import http.client, json, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
conn, out = http.client.HTTPConnection("127.0.0.1", port, timeout=30), []
end = time.monotonic() + seconds
while time.monotonic() < end:
    started = time.perf_counter()
    try:
        conn.request("GET", "/readyz")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out.append(time.perf_counter() - started)
    time.sleep(0.1)
print(json.dumps(out))
"""


async def _probe_process(server: Server, seconds: float) -> list[float]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _PROBE, str(server.port), str(seconds),
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    samples: list[float] = json.loads(out)
    return samples


def idle_connections(server: Server) -> dict[str, Any]:
    socks = []
    for _ in range(1000):
        try:
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
        except OSError:
            break
    livez = []
    started = time.monotonic()
    while time.monotonic() - started < 12:
        t = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{server.url}/livez", timeout=5)
        livez.append(time.perf_counter() - t)
        time.sleep(0.5)
    still_open = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            still_open += sock.recv(1) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        sock.close()
    return {"opened": len(socks), "open_after_12s": still_open, "livez_max_ms": round(max(livez) * 1000, 1)}


async def validation(server: Server) -> dict[str, Any]:
    readyz: list[float] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=server.url) as client:
        probe = asyncio.create_task(_probe(client, "/readyz", stop, readyz))
        await asyncio.sleep(0.3)

        async def one(i: int) -> float:
            doc = '{ token(tokenId: "x") { ' + " ".join("row { rowId }" for _ in range(1150)) + f" }} }} # {i}"
            started = time.perf_counter()
            await client.post("/graphql", json={"query": doc}, timeout=120)
            return time.perf_counter() - started

        took = await asyncio.gather(*(one(i) for i in range(20)))
        stop.set()
        await probe
    return {"requests_p50_ms": round(statistics.median(took) * 1000), "readyz_max_ms": round(max(readyz) * 1000)}


async def dag_load(server: Server, run_id: str, seconds: float) -> dict[str, Any]:
    counter = iter(range(1 << 30))

    def dag() -> dict[str, Any]:
        # Distinct texts: the response cache would otherwise answer all but the first few.
        return {"query": f"query ($r: String!) {{ run(runId: $r) {{ dag {{ edges {{ tokenCount }} }} }} }} "
                         f"# {next(counter)}", "variables": {"r": run_id}}

    cheap = {"query": "query ($r: String!) { run(runId: $r) { status tokens(first: 5) { nodes { tokenId } } } }",
             "variables": {"r": run_id}}
    stop = asyncio.Event()
    dag_t: list[float] = []
    cheap_t: list[float] = []
    readyz: list[float] = []
    codes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=server.url, limits=limits) as client:
        tasks = [asyncio.create_task(_post_loop(client, dag, stop, dag_t, codes)) for _ in range(10)]
        tasks += [asyncio.create_task(_post_loop(client, cheap, stop, cheap_t, codes)) for _ in range(4)]
        tasks.append(asyncio.create_task(_probe(client, "/readyz", stop, readyz)))
        # The separate probe starts after the load has (and stops before it ends).
        await asyncio.sleep(1.0)
        apart = await _probe_process(server, seconds - 2.0)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
    return {"dag_done": len(dag_t), "dag_p50_ms": round(_pct(dag_t, 0.5)), "cheap_p50_ms": round(_pct(cheap_t, 0.5)),
            "cheap_p99_ms": round(_pct(cheap_t, 0.99)), "readyz_p50_ms": round(_pct(readyz, 0.5)),
            "readyz_max_ms": round(_pct(readyz, 1.0)),
            "readyz_apart_p50_ms": round(_pct(apart, 0.5), 1), "readyz_apart_p99_ms": round(_pct(apart, 0.99), 1),
            "readyz_apart_max_ms": round(_pct(apart, 1.0), 1), "error_codes": codes}


async def caches(server: Server) -> dict[str, Any]:
    before = _rss_mb(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for i in range(60):
            literal = f"{i:05d}" + "x" * 900_000
            await client.post("/graphql", json={"query": f'{{ token(tokenId: "{literal}") {{ tokenId }} }}'},
                              timeout=120)
    return {"rss_before_mb": round(before), "rss_after_mb": round(_rss_mb(server))}


async def mixed(server: Server, run_id: str, tokens: list[str], seconds: float, rounds: int) -> dict[str, Any]:
    rng = random.Random(1)

    def distinct() -> dict[str, Any]:
        n = rng.randrange(1, 30)
        fields = " ".join(f"a{j}: tokenId" for j in range(n))
        return {"query": f'{{ token(tokenId: "{rng.choice(tokens)}") {{ {fields} row {{ rowId }} }} }} # {rng.random()}'}

    def page() -> dict[str, Any]:
        return {"query": "query ($r: String!, $n: Int) { run(runId: $r) { tokens(first: $n) { nodes { tokenId "
                         "nodeStates { stateId status } outcome { path } } } } }",
                "variables": {"r": run_id, "n": rng.randrange(50, 500)}}

    def lineage() -> dict[str, Any]:
        return {"query": "query ($t: String!) { token(tokenId: $t) { descendants(maxDepth: 10) { tokens { tokenId } } "
                         "ancestors(maxDepth: 10) { tokens { tokenId } } } }", "variables": {"t": rng.choice(tokens)}}

    def dag() -> dict[str, Any]:
        return {"query": "query ($r: String!) { run(runId: $r) { dag { mermaid } } }", "variables": {"r": run_id}}

    rss = [round(_rss_mb(server))]
    codes: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=server.url, limits=httpx.Limits(max_connections=100)) as client:
        for _ in range(rounds):
            stop = asyncio.Event()
            out: list[float] = []
            makers = [distinct] * 8 + [page] * 4 + [lineage] * 4 + [dag] * 2
            tasks = [asyncio.create_task(_post_loop(client, m, stop, out, codes)) for m in makers]
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
            rss.append(round(_rss_mb(server)))
    return {"rss_mb_by_round": rss, "error_codes": codes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--baseline", type=Path, help="run the server from this checkout's package")
    parser.add_argument("--only", default="1,2,3,4,5")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="an argument for `landscape-graphql serve` (repeatable), e.g. --serve-arg=--response-cache-mb=16")
    args = parser.parse_args(argv)
    wanted = {int(n) for n in args.only.split(",")}
    if args.db is None:
        ls = landscape(25_000)
        db = ls.path
    else:
        db = args.db
    import sqlite3
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        run_id = conn.execute("SELECT run_id FROM runs").fetchone()[0]
        tokens = [r[0] for r in conn.execute("SELECT token_id FROM tokens ORDER BY token_id LIMIT 2000")]
    env = {"PYTHONPATH": str(args.baseline)} if args.baseline else {}
    print(f"{'baseline ' + str(args.baseline) if args.baseline else 'this checkout'}; load {os.getloadavg()[0]:.1f}")

    def fresh() -> Server:
        server = cli_server(db, free_port(), *args.serve_arg)
        server.env.update(env)
        server.start()
        return server

    for number, name in [(1, "idle connections"), (2, "validation"), (3, "dag"), (4, "caches"), (5, "mixed")]:
        if number not in wanted:
            continue
        server = fresh()
        try:
            if number == 1:
                result: Any = idle_connections(server)
            elif number == 2:
                result = asyncio.run(validation(server))
            elif number == 3:
                result = asyncio.run(dag_load(server, run_id, args.seconds))
            elif number == 4:
                result = asyncio.run(caches(server))
            else:
                result = asyncio.run(mixed(server, run_id, tokens, args.seconds, args.rounds))
        finally:
            server.stop()
        print(f"{number}. {name}: {result}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
