"""HTTP caching of unchanged answers: the database's data version, ETags, and a response cache.

An answer is a function of the document, the variables, the operation name, the caller's scope
(the runs it may see) and the data. The ETag hashes all five; the data enters as its *version*:

- SQLite: ``PRAGMA data_version`` is per connection (its values say whether *other*
  connections committed since this connection last looked; two connections' values are not
  comparable), so a tag built on it would differ between pooled connections and between the
  workers of one server, and a client would never get a 304 from another worker. What that
  pragma is derived from is shared by every connection of every process: in WAL mode the
  wal-index header at the start of the ``-shm`` file (a change counter, the last frame, its
  checksum and the WAL's salts; the writer updates it on every commit and keeps two copies,
  equal when not mid-update), in rollback-journal mode the file change counter at byte 24 of
  the database header, updated by every commit. Both plus the file's identity (device, inode:
  a replaced file is another database) make the version. Read with one ``pread``, no SQL.
- PostgreSQL: the current snapshot (``pg_current_snapshot()``: xmin, xmax and the transactions
  in progress). A committed write had a transaction id that was in progress (or not yet
  assigned) before and is neither after, so the text changes with every commit. Reads never
  take a transaction id, so they leave it alone. The WAL position (``pg_current_wal_lsn()``),
  the first choice, also moves when a *read* sets hint bits on a checksummed cluster (a full
  page image) and with every other database's writes: answers read soon after a load were
  never tagged. Spurious changes (another database's commit, ANALYZE) only cost a
  revalidation, never a stale answer. One round trip; on a standby it follows replay.

When the version cannot be read (an encrypted rollback-mode file, a failing statement) there is
no tag and nothing is cached. An answer is tagged and stored only when it has no errors and the
version read after executing equals the one read before (no commit landed in between).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import text

from ._caches import compact
from .db.engine import Landscape

_WAL_INDEX_HEADER = 48  # bytes per copy; two copies at the start of the -shm file
_PG_VERSION = text("SELECT pg_current_snapshot()::text")


class DataVersion:
    """Reads a Landscape's data version (see the module docstring); None when it cannot."""

    def __init__(self, landscape: Landscape) -> None:
        self.landscape = landscape
        path = landscape.watch.path
        self._sqlite = None if path is None or landscape.backend == "postgresql" else SqliteVersion(str(path))

    async def current(self) -> str | None:
        if self._sqlite is not None:
            return self._sqlite.read()
        if self.landscape.backend != "postgresql":
            return None
        try:
            async with self.landscape.engine.connect() as conn:
                return str((await conn.execute(_PG_VERSION)).scalar_one())
        except Exception:
            return None


class SqliteVersion:
    """A SQLite file's version with two ``stat`` calls and two ``pread`` (files kept open).

    Each read checks that the paths still name the files held open (a replaced database, or a
    ``-shm`` file deleted and made anew when the last connection closed), and reopens if not.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: tuple[int, int, int] | None = None  # (fd, device, inode)
        self._shm: tuple[int, int, int] | None = None

    def _open(self, path: str, held: tuple[int, int, int] | None) -> tuple[int, int, int]:
        stat = os.stat(path)
        if held is not None and (held[1], held[2]) == (stat.st_dev, stat.st_ino):
            return held
        if held is not None:
            os.close(held[0])
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        opened = os.fstat(fd)
        return fd, opened.st_dev, opened.st_ino

    def read(self) -> str | None:
        try:
            self._db = db = self._open(self.path, self._db)
            # Read every time: a writer may switch the journal mode of the same file.
            header = os.pread(db[0], 28, 0)
            if not header.startswith(b"SQLite format 3\0") or len(header) < 28:
                return None  # encrypted (SQLCipher): the header is not readable
            identity = f"{db[1]}:{db[2]}"
            if header[18] != 2:  # the file format's write version: 2 = WAL
                return f"{identity}:r{int.from_bytes(header[24:28], 'big')}"
            self._shm = shm = self._open(f"{self.path}-shm", self._shm)
            for _ in range(100):
                both = os.pread(shm[0], 2 * _WAL_INDEX_HEADER, 0)
                if len(both) == 2 * _WAL_INDEX_HEADER and both[:_WAL_INDEX_HEADER] == both[_WAL_INDEX_HEADER:]:
                    return f"{identity}:w{both[:_WAL_INDEX_HEADER].hex()}"
            return None  # always mid-update: do not guess
        except OSError:
            return None


def sqlite_version(path: str) -> str | None:
    """One reading of a SQLite file's version (opens and closes the files)."""
    reader = SqliteVersion(path)
    try:
        return reader.read()
    finally:
        for held in (reader._db, reader._shm):
            if held is not None:
                os.close(held[0])


def scope_key(allowed_runs: Any) -> str:
    """The caller's scope: the runs it may see (every principal with the same scope sees the same)."""
    if allowed_runs is None:
        return "*"
    return "runs:" + ",".join(sorted(str(r) for r in allowed_runs))


def etag(document_sha256: str, variables: Any, operation_name: str | None, scope: str, version: str) -> str:
    material = orjson.dumps([document_sha256, variables, operation_name, scope, version],
                            option=orjson.OPT_SORT_KEYS)
    return '"' + hashlib.sha256(material).hexdigest()[:40] + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return tag in candidates or "*" in candidates


@dataclass(frozen=True)
class Entry:
    data_json: bytes  # the serialised ``"data"`` value
    landscape: dict[str, Any]  # the original extensions.landscape without its costs
    scope: str


# What an entry holds besides its JSON: the tag, the Entry, its extensions dict, the map's slot
# (measured with tracemalloc: ~550 bytes; tests/test_cache_bytes.py holds the cache to it).
ENTRY_OVERHEAD_BYTES = 640


class ResponseCache:
    """Answers by ETag (which includes the scope and data version), bounded by bytes, LRU."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    def get(self, tag: str, scope: str) -> Entry | None:
        entry = self._entries.get(tag)
        if entry is None or entry.scope != scope:  # the tag hashes the scope; this says it twice
            return None
        self._entries.move_to_end(tag)
        return entry

    def put(self, tag: str, entry: Entry) -> None:
        size = len(entry.data_json) + ENTRY_OVERHEAD_BYTES
        if size > self.max_bytes // 4 or tag in self._entries:
            return  # one answer never takes more than a quarter of the cache
        self._entries[tag] = replace(entry, data_json=compact(entry.data_json))
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.data_json) + ENTRY_OVERHEAD_BYTES

    def __len__(self) -> int:
        return len(self._entries)
