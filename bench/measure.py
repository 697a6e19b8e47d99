"""Timing, servers in subprocesses, and peak memory."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@dataclass
class Timing:
    """Wall times of repeated runs after warm-up."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> str:
        return f"{min(self.samples) * 1000:.1f}-{max(self.samples) * 1000:.1f} ms"

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def time_sync(fn: Callable[[], Any], *, repeat: int, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    timing = Timing()
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        timing.samples.append(time.perf_counter() - started)
    return timing


async def time_async(fn: Callable[[], Awaitable[Any]], *, repeat: int, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        await fn()
    timing = Timing()
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        await fn()
        timing.samples.append(time.perf_counter() - started)
    return timing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_status(pid: int, key: str) -> int:
    """A /proc/<pid>/status value in kB (VmHWM: peak resident set)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    return found


class Server:
    """A server in a subprocess, ready when GET /readyz answers 200."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        self.ready_s = 0.0
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout_s: float = 120.0) -> float:
        started = time.perf_counter()
        # The server logs every request: to a file, never to a pipe nobody reads (it would block).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server, closed in stop()
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = started + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    self.log.seek(0)
                    err = self.log.read().decode(errors="replace")
                    raise RuntimeError(f"server exited with {self.proc.returncode}: {err[-2000:]}")
                try:
                    response = client.get(f"{self.url}/readyz")
                    if response.status_code == 200 and response.json().get("status") == "ready":
                        self.ready_s = time.perf_counter() - started
                        return self.ready_s
                except httpx.HTTPError:
                    pass
                time.sleep(0.005)
        self.stop()
        raise TimeoutError(f"server not ready after {timeout_s} s")

    def peak_rss_mb(self) -> float:
        """The peak resident set of the server: its own, or its largest worker's."""
        assert self.proc is not None
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return max(_proc_status(pid, "VmHWM") for pid in pids) / 1024

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        self.proc = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def cli_server(db: Path, port: int, *extra: str) -> Server:
    """`landscape-graphql serve`, as an operator runs it."""
    return Server([str(VENV_BIN / "landscape-graphql"), "serve", "--db", str(db), "--port", str(port),
                   "--no-graphiql", *extra], port)


def factory_server(db: Path, port: int, *, workers: int = 1, fast: bool = True, cache_mb: float = 0) -> Server:
    """uvicorn with the benchmark's app factory (bench/app.py): several workers, or the stock path."""
    return Server([str(VENV_BIN / "uvicorn"), "bench.app:make", "--factory", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(workers), "--log-level", "warning",
                   "--no-access-log"], port,
                  env={"BENCH_DB": str(db), "BENCH_FAST": "1" if fast else "0", "BENCH_CACHE_MB": str(cache_mb)})


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect before a measurement so earlier garbage is not charged to it."""
    gc.collect()
    yield


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
