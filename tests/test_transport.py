"""Connection-level protection through the real `landscape-graphql serve` on 127.0.0.1, with
small numbers: a connection that sends nothing, or its head too slowly, is closed; past the
connection cap new connections are closed at once; /livez keeps answering; the access log never
holds a query string.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from landscape_graphql.auth import hash_token
from tests.conftest import FIXTURES
from tests.live_server import free_port

HEAD_TIMEOUT = 0.5
MAX_CONNECTIONS = 4
TOKEN = "transport-test-token"


@dataclass
class Server:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.settimeout(5)
        return sock


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("transport")
    db = folder / "fork-coalesce.db"
    shutil.copy2(FIXTURES / "epoch2" / "fork-coalesce.db", db)
    tokens = folder / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "t", "sha256": hash_token(TOKEN)}]}))
    port, log = free_port(), folder / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "landscape_graphql.cli", "serve", "--db", str(db), "--port", str(port),
             "--auth-tokens", str(tokens), "--head-timeout", str(HEAD_TIMEOUT),
             "--max-connections", str(MAX_CONNECTIONS)],
            stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield Server(port, log)
    finally:
        process.terminate()
        process.wait(30)


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (reading nothing), or None if it did not."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        data = sock.recv(1024)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started
    assert data == b"", data
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with server.connect() as sock:
        waited = _closed_within(sock, HEAD_TIMEOUT + 3)
    assert waited is not None, "an idle connection stayed open"
    assert waited < HEAD_TIMEOUT + 1.5


def test_a_head_sent_too_slowly_is_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < HEAD_TIMEOUT + 3:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.1)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed = True
                break
        assert closed, "a slowloris head kept its connection"
        assert time.monotonic() - started < HEAD_TIMEOUT + 1.5


def test_the_connection_cap_is_honoured_and_livez_answers_again(server: Server) -> None:
    held = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.05)
        with server.connect() as extra:
            waited = _closed_within(extra, HEAD_TIMEOUT * 0.8)
        assert waited is not None, "a connection past the cap was kept"
    finally:
        for sock in held:
            sock.close()
    # The held ones are gone (or timed out): the server answers again.
    deadline = time.monotonic() + HEAD_TIMEOUT + 3
    while True:
        try:
            assert httpx.get(f"{server.url}/livez", timeout=1).status_code == 200
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "/livez did not answer after the idle connections went"
            time.sleep(0.05)


def test_livez_answers_while_connections_idle_under_the_cap(server: Server) -> None:
    held = [server.connect() for _ in range(MAX_CONNECTIONS - 1)]
    try:
        assert httpx.get(f"{server.url}/livez", timeout=2).status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_a_query_string_is_never_logged(server: Server) -> None:
    secret = "leaked-secret-in-the-url"
    response = httpx.post(f"{server.url}/graphql?access_token={secret}&x=1",
                          json={"query": "{ runs { totalCount } }"})
    assert response.status_code == 401
    assert httpx.post(f"{server.url}/graphql?access_token={secret}", json={"query": "{ runs { totalCount } }"},
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    time.sleep(0.3)
    text = server.log.read_text()
    assert "POST /graphql?" in text  # the access line is there ...
    assert secret not in text and "x=1" not in text  # ... without its query string


def test_a_line_repeated_in_a_tight_loop_is_rate_limited() -> None:
    import logging

    from landscape_graphql._logging import RepeatLimiter

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    keep = Keep()
    now = [0.0]
    limiter = RepeatLimiter(burst=10, window_s=10.0, clock=lambda: now[0])
    keep.addFilter(limiter)
    log = logging.getLogger("tests.transport.repeat")
    log.propagate = False
    log.addHandler(keep)
    try:
        for _ in range(10_000):
            log.error("socket.accept() out of system resource", exc_info=False)
        log.error("another message")
        assert len(keep.lines) == 11
        now[0] = 10.0
        log.error("socket.accept() out of system resource")
        assert keep.lines[-1] == "socket.accept() out of system resource (9990 similar lines dropped)"
    finally:
        log.removeHandler(keep)


def test_a_body_sent_too_slowly_is_closed(fixture_copies: Path) -> None:
    import threading

    import uvicorn

    from landscape_graphql._transport import TransportLimits, server_options
    from landscape_graphql.app import AppConfig, create_app

    app = create_app(AppConfig(database=str(fixture_copies / "epoch2" / "fork-coalesce.db")))
    port = free_port()
    options = server_options(TransportLimits(body_timeout_s=0.5, head_timeout_s=5))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"query\":")
            started = time.monotonic()
            sock.settimeout(5)
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except (ConnectionResetError, TimeoutError):
                pass
            waited = time.monotonic() - started
        assert waited < 3, "a trickled body kept its connection"
        assert b"200 OK" not in received
    finally:
        server.should_exit = True
        thread.join(20)
