"""The server process as shipped: kept-alive connections stay fast, and --workers N acts as one server."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import statistics
import time
from pathlib import Path

import pytest

from landscape_graphql.serving import bind_socket, server_stack
from tests._served import serve
from tests.conftest import FIXTURES

SMALL_QUERY = json.dumps({"query": "{ runs(first: 1) { totalCount } }"})


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("serving")
    shutil.copy2(FIXTURES / "epoch29" / "fork-coalesce.db", folder / "landscape.db")
    return str(folder / "landscape.db")


def test_the_locked_stack_is_uvloop_and_httptools() -> None:
    assert server_stack() == ("uvloop", "httptools")
    assert server_stack("asyncio") == ("asyncio", "httptools")


def test_the_listening_socket_is_tcp_so_asyncio_disables_nagle() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


_UNDER_STALL_MS = 30  # the delayed-ACK stall costs >= 40 ms a request


def _median_ms(conn: http.client.HTTPConnection, method: str, path: str, body: str | None) -> float:
    headers = {"Content-Type": "application/json"} if body else {}
    times = []
    for _ in range(21):
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])  # the first one warms the worker up


@pytest.mark.parametrize(("workers", "loop"), [("1", "auto"), ("2", "auto"), ("2", "asyncio")])
def test_requests_on_one_kept_alive_connection_are_fast(db: str, workers: str, loop: str) -> None:
    """20 sequential requests on one connection: ~0.5-3 ms each; the Nagle stall made it 44 ms.

    The stall is the peer's delayed-ACK timer (40 ms on Linux), so it adds 40 ms or more to every
    request: a bound well under that catches it, while leaving room for a machine busy with other
    jobs (19.8 ms was seen at a load average of 8.5 on two cores, with no stall).
    """
    with serve(db, "--workers", workers, "--loop", loop) as server:
        conn = server.connection()
        try:
            livez = _median_ms(conn, "GET", "/livez", None)
            graphql = _median_ms(conn, "POST", "/graphql", SMALL_QUERY)
        finally:
            conn.close()
    assert livez < _UNDER_STALL_MS, f"/livez median {livez:.1f} ms on one connection"
    assert graphql < _UNDER_STALL_MS, f"GraphQL median {graphql:.1f} ms on one connection"


def _requests_total(metrics: bytes) -> float:
    return sum(float(m) for m in re.findall(rb'^landscape_graphql_requests_total\{[^}]*\} (\S+)$',
                                            metrics, re.M))


def test_workers_report_the_whole_server_and_stop_together(db: str) -> None:
    with serve(db, "--workers", "2") as server:
        status, _, body = server.get("/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
        for _ in range(30):  # a new connection each: the kernel spreads them over the workers
            status, _, answer = server.post({"query": "{ runs(first: 1) { totalCount } }"})
            assert status == 200 and "errors" not in answer
        # Whichever worker answers /metrics counts all 30.
        seen = set()
        for _ in range(10):
            status, _, metrics = server.get("/metrics")
            assert status == 200
            seen.add(_requests_total(metrics))
        assert seen == {30.0}
        workers = _children(server.process.pid)
        assert len(workers) >= 2
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(40) == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived the server"


def test_readiness_fails_for_every_worker_once_shutdown_begins(db: str) -> None:
    from landscape_graphql._shared import ServerGroup
    group = ServerGroup(Path(db).parent / "group", workers=2)
    group.folder.mkdir()
    assert group.ready() == (False, "starting: 0 of 2 workers ready")
    group.mark_started()  # this process stands for a worker
    (group.folder / "started-999999999").touch()  # and a worker that died without cleaning up
    assert group.ready()[0] is False
    (group.folder / "started-1").touch()  # init stands for a second live worker
    assert group.ready() == (True, "")
    group.begin_stopping()
    assert group.ready() == (False, "stopping")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []
