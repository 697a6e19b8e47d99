"""What the worker processes of one server share: a folder the supervisor makes for them.

It holds each worker's metrics (a memory-mapped file that only that worker writes and any
worker reads, so ``/metrics`` reports the whole server), a marker per worker that has started,
and the flag the supervisor raises when shutdown begins (so every worker's ``/readyz`` fails at
once, before any of them has been told to stop). Alone, a process needs none of this.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

FOLDER_ENV = "LANDSCAPE_GRAPHQL_SERVER_DIR"
WORKERS_ENV = "LANDSCAPE_GRAPHQL_WORKERS"
_STOPPING = "stopping"


class ServerGroup:
    def __init__(self, folder: Path, workers: int) -> None:
        self.folder = folder
        self.workers = workers
        self._own: mmap.mmap | None = None

    @classmethod
    def from_env(cls) -> ServerGroup | None:
        folder = os.environ.get(FOLDER_ENV)
        if not folder:
            return None
        return cls(Path(folder), int(os.environ.get(WORKERS_ENV, "1")))

    def environment(self) -> dict[str, str]:
        """What a worker needs to find the group (it inherits the supervisor's environment)."""
        return {FOLDER_ENV: str(self.folder), WORKERS_ENV: str(self.workers)}

    # metrics

    def own(self, size: int) -> mmap.mmap:
        """This process's metrics buffer, zeroed, in the shared folder."""
        if self._own is None:
            path = self.folder / f"metrics-{os.getpid()}.bin"
            with open(path, "w+b") as f:
                f.truncate(size)
                self._own = mmap.mmap(f.fileno(), size)
        return self._own

    def all(self, size: int) -> list[bytearray]:
        """Every worker's metrics, including workers that have exited: counters never go back."""
        buffers = []
        for path in sorted(self.folder.glob("metrics-*.bin")):
            data = path.read_bytes()
            if len(data) == size:  # a worker still creating its file
                buffers.append(bytearray(data))
        return buffers

    # readiness and shutdown

    def mark_started(self) -> None:
        (self.folder / f"started-{os.getpid()}").touch()

    def mark_stopped(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / f"started-{os.getpid()}").unlink()

    def begin_stopping(self) -> None:
        (self.folder / _STOPPING).touch()

    def stopping(self) -> bool:
        return (self.folder / _STOPPING).exists()

    def started_workers(self) -> int:
        alive = 0
        for marker in self.folder.glob("started-*"):
            try:
                os.kill(int(marker.name.split("-", 1)[1]), 0)
            except (ProcessLookupError, ValueError):
                continue  # a worker that died without cleaning up
            except PermissionError:
                pass  # exists, owned by someone else: cannot be ours, but count it as alive
            alive += 1
        return alive

    def ready(self) -> tuple[bool, str]:
        """Whether the whole server is ready, and if not why."""
        if self.stopping():
            return False, "stopping"
        started = self.started_workers()
        if started < self.workers:
            return False, f"starting: {started} of {self.workers} workers ready"
        return True, ""
