"""Where generated rows and payload files go: written inline, or by helper processes.

Large generations hand inserts and file writes to two spawned processes so that SQLite's
B-tree work and the kernel's file creation run beside the (GIL-bound) generator instead of
after it. Threads do not help here: the generator never yields the GIL long enough for a
writer thread to keep up. This module imports only the standard library, so a spawned child
starts quickly.
"""

from __future__ import annotations

import os
import pickle
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
import traceback
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

Job = tuple[str, list[tuple[Any, ...]]]
Files = list[tuple[str, bytes]]


def open_db(path: str, indexes: list[tuple[str, str]]) -> sqlite3.Connection:
    """A connection ready for the bulk load: no rollback journal or syncing (a failed load
    deletes the file anyway), the secondary indexes dropped, and a page cache of up to 2 GiB:
    random ids put the inserts all over the unique indexes (~1.6 GiB for a million epoch-29
    tokens), and once those outgrow the cache every insert waits on a page read."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-2097152")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("BEGIN")
    for name, _ in indexes:
        # Built once over the loaded data in `finish_db`: cheaper than row-by-row upkeep.
        conn.execute(f'DROP INDEX "{name}"')
    return conn


def finish_db(conn: sqlite3.Connection, indexes: list[tuple[str, str]], epoch: int) -> None:
    """Recreate the indexes, stamp the epoch, commit, and leave the file in WAL mode like
    ELSPETH, checkpointed so the .db file alone holds everything."""
    for _, ddl in indexes:
        conn.execute(ddl)
    conn.execute(f"PRAGMA user_version = {int(epoch)}")
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def insert(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    # Ids are random, so every key index takes inserts all over its B-tree; inserting each
    # batch in key order (first column: the primary key, or its leading part) saves about a third.
    rows.sort(key=itemgetter(0))
    conn.executemany(sql, rows)


def write_files(files: Files) -> None:
    for path, data in files:
        # Raw os calls: pathlib's overhead shows with hundreds of thousands of small files.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


class RowSink(Protocol):
    def insert(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...
    def close(self, *, commit: bool = True) -> None: ...


class FileSink(Protocol):
    def write(self, files: Files) -> None: ...
    def close(self, *, commit: bool = True) -> None: ...


class InlineRows:
    def __init__(self, path: str, indexes: list[tuple[str, str]], epoch: int) -> None:
        self._conn = open_db(path, indexes)
        self._indexes, self._epoch = indexes, epoch

    def insert(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        insert(self._conn, sql, rows)

    def close(self, *, commit: bool = True) -> None:
        if commit:
            finish_db(self._conn, self._indexes, self._epoch)
        else:
            self._conn.close()


class InlineFiles:
    def write(self, files: Files) -> None:
        write_files(files)

    def close(self, *, commit: bool = True) -> None:
        pass


def _serve(kind: str, path: str, indexes: list[tuple[str, str]], epoch: int) -> None:
    """The helper process's loop: read pickled batches from stdin until None, then a commit
    flag; answer with None or the error text on stdout."""
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    error = None
    conn = open_db(path, indexes) if kind == "rows" else None
    while (job := pickle.load(src)) is not None:
        if error is None:
            try:
                if conn is not None:
                    insert(conn, *job)
                else:
                    write_files(job)
            except Exception:
                # Keep draining so the parent never blocks on a full pipe; report at the end.
                error = traceback.format_exc()
    commit = pickle.load(src)
    if conn is not None:
        try:
            if error is None and commit:
                finish_db(conn, indexes, epoch)
            else:
                conn.close()
        except Exception:
            error = traceback.format_exc()
    pickle.dump(error, dst)
    dst.flush()


class _Child:
    """A helper Python process fed pickled batches through its stdin. A plain subprocess (not
    multiprocessing) so nothing depends on how the caller's __main__ module is guarded.

    A sender thread does the pipe writes: a blocked write releases the GIL, so the generator
    keeps producing the next batches while the helper works through the queued ones."""

    def __init__(self, kind: str, path: str = "", indexes: list[tuple[str, str]] | None = None,
                 epoch: int = 0) -> None:
        code = (f"from landscape_graphql.demo._sinks import _serve; "
                f"_serve({kind!r}, {path!r}, {indexes or []!r}, {epoch!r})")
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        # A file, not a pipe, for stderr: nobody reads it until the end, and a full pipe would
        # stall the helper.
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the helper; closed in close()
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._err, env=env)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in, self._out = self._proc.stdin, self._proc.stdout
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._broken = False
        self._sender = threading.Thread(target=self._send_loop, name=f"demo-{kind}-sender", daemon=True)
        self._sender.start()

    def _send_loop(self) -> None:
        while (data := self._queue.get()) is not None:
            if not self._broken:
                try:
                    self._in.write(data)
                except (BrokenPipeError, OSError):
                    self._broken = True  # reported by close(), which reads the helper's stderr

    def send(self, obj: Any) -> None:
        if self._broken:
            raise RuntimeError(f"demo generator helper died:\n{self._stderr()}")
        self._queue.put(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def _stderr(self) -> str:
        self._proc.kill()
        self._proc.wait()
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def close(self, *, commit: bool = True) -> None:
        self._queue.put(None)
        self._sender.join()
        try:
            if self._broken:
                raise BrokenPipeError
            pickle.dump(None, self._in)
            pickle.dump(commit, self._in)
            self._in.close()
            error = pickle.load(self._out)
        except (BrokenPipeError, EOFError):
            error = f"helper process died:\n{self._stderr()}"
        self._proc.wait()
        self._out.close()
        self._err.close()
        if error is not None and commit:
            raise RuntimeError(f"demo generator helper failed:\n{error}")


class ProcessRows(_Child):
    def __init__(self, path: str, indexes: list[tuple[str, str]], epoch: int) -> None:
        super().__init__("rows", path, indexes, epoch)

    def insert(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.send((sql, rows))


class ProcessFiles(_Child):
    def __init__(self) -> None:
        super().__init__("files")

    def write(self, files: Files) -> None:
        self.send(files)
