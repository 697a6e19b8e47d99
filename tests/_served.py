"""`landscape-graphql serve` in a subprocess on 127.0.0.1, for tests of the whole server process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.live_server import free_port


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = self.connection()
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def post(self, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        conn = self.connection()
        try:
            conn.request("POST", "/graphql", body=json.dumps(payload),
                         headers={"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
        finally:
            conn.close()


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the server did not become ready")


@contextmanager
def serve(db: str, *options: str, env: dict[str, str] | None = None,
          timeout_s: float = 60.0) -> Iterator[Served]:
    port = free_port()
    argv: Sequence[str] = [sys.executable, "-m", "landscape_graphql.cli", "serve", "--db", db,
                           "--port", str(port), "--no-graphiql", *options]
    process = subprocess.Popen(argv, env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, process, timeout_s)
        yield Served(process, port)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
