"""A safe, async, batched reader of ELSPETH's content-addressed payload store.

The store holds `<root>/<first two hex chars>/<sha256 hex>`, each file named by the sha256 of
its bytes. Refs come from the audit database, which this API must treat as possibly hostile
or corrupt: a ref is validated before it is turned into a path, the resolved path must stay
under a configured root, and every byte returned has been hashed and matched against its ref.

Each `read_many` call does all of its file I/O in one worker-thread hop, so a resolver that
batches its refs costs the event loop one hop regardless of how many files it touches.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import re
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "DEFAULT_MAX_BYTES_PER_PAYLOAD",
    "DEFAULT_MAX_BYTES_PER_RESPONSE",
    "ByteBudget",
    "Payload",
    "PayloadState",
    "PayloadStore",
]

DEFAULT_MAX_BYTES_PER_RESPONSE = 8 * 1024 * 1024
DEFAULT_MAX_BYTES_PER_PAYLOAD = 1024 * 1024

# fullmatch, not match with `$`: `$` also accepts a trailing newline.
_REF_PATTERN = re.compile(r"[0-9a-f]{64}")
_CHUNK_BYTES = 64 * 1024
_ECHO_CHARS = 80
# O_NOFOLLOW guards the last component against a symlink swapped in after resolution;
# O_NONBLOCK keeps a FIFO planted in the store from blocking the open.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class PayloadState(enum.Enum):
    AVAILABLE = "available"
    PURGED = "purged"
    HASH_ONLY = "hash_only"
    NEVER_STORED = "never_stored"
    STORE_NOT_CONFIGURED = "store_not_configured"
    INTEGRITY_FAILED = "integrity_failed"


@dataclass(frozen=True, slots=True)
class Payload:
    """One payload as the audit trail knows it.

    `size_bytes` is the full file size; `data` may be a prefix of it (`truncated`), cut by the
    per-payload cap or the response budget. Integrity was verified over the full file either way.
    """

    state: PayloadState
    ref: str | None
    hash: str | None
    size_bytes: int | None = None
    data: bytes | None = None
    truncated: bool = False
    problem: str | None = None

    @property
    def text(self) -> str | None:
        if self.data is None:
            return None
        return self.data.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The parsed JSON value, or None when the bytes are absent, cut or not JSON.

        A prefix of a JSON document can itself be valid JSON (`123` of `1234`), so cut bytes
        are never parsed.
        """
        if self.data is None or self.truncated:
            return None
        try:
            return orjson.loads(self.data)
        except orjson.JSONDecodeError:
            return None


class ByteBudget:
    """A cap on the payload bytes one response may carry, shared by all its resolvers.

    Reservations come from worker threads and may race across concurrent `read_many` calls
    of the same request, hence a real lock rather than relying on the event loop.
    """

    __slots__ = ("_limit", "_lock", "_remaining")

    def __init__(self, limit_bytes: int = DEFAULT_MAX_BYTES_PER_RESPONSE) -> None:
        if limit_bytes < 0:
            raise ValueError(f"limit_bytes must be >= 0, got {limit_bytes}")
        self._limit = limit_bytes
        self._remaining = limit_bytes
        self._lock = threading.Lock()

    @property
    def limit_bytes(self) -> int:
        return self._limit

    @property
    def remaining_bytes(self) -> int:
        with self._lock:
            return self._remaining

    def reserve(self, wanted: int) -> int:
        """Take up to `wanted` bytes from the budget; returns how many were granted."""
        if wanted < 0:
            raise ValueError(f"wanted must be >= 0, got {wanted}")
        with self._lock:
            granted = min(wanted, self._remaining)
            self._remaining -= granted
            return granted


class PayloadStore:
    """Reads payloads from one or more store roots, first root holding the file wins.

    Several roots exist because one database's runs may have been configured with
    different stores.
    """

    __slots__ = ("_max_bytes_per_payload", "_roots")

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        *,
        max_bytes_per_payload: int = DEFAULT_MAX_BYTES_PER_PAYLOAD,
    ) -> None:
        if isinstance(roots, (str, os.PathLike)):
            # A bare string is a Sequence too; iterating it would make one root per character.
            raise TypeError("roots must be a sequence of folders, not a single folder")
        if max_bytes_per_payload < 0:
            raise ValueError(f"max_bytes_per_payload must be >= 0, got {max_bytes_per_payload}")
        resolved: list[Path] = []
        for root in roots:
            real = Path(os.path.realpath(root))
            if not real.is_dir():
                # A typo in configuration would otherwise report every payload as PURGED.
                raise ValueError(f"payload store root is not a directory: {os.fspath(root)}")
            resolved.append(real)
        self._roots: tuple[Path, ...] = tuple(resolved)
        self._max_bytes_per_payload = max_bytes_per_payload

    @classmethod
    def unconfigured(cls) -> PayloadStore:
        return cls(())

    async def read_many(
        self,
        refs: Sequence[tuple[str | None, str | None]],
        *,
        budget: ByteBudget,
    ) -> list[Payload]:
        """One Payload per (ref, recorded_hash) pair, in the same order.

        Identical refs are read once, but the budget is charged per returned payload,
        because the response carries each occurrence's bytes.
        """
        results: list[Payload | None] = []
        pending: list[tuple[int, str, str | None]] = []
        for index, (ref, recorded) in enumerate(refs):
            decided = self._decide_without_io(ref, recorded)
            results.append(decided)
            if decided is None:
                assert isinstance(ref, str)  # _decide_without_io returns None only for valid refs
                pending.append((index, ref, recorded))
        if pending:
            for index, read in await asyncio.to_thread(self._read_files, pending, budget):
                results[index] = read
        complete: list[Payload] = []
        for answer in results:
            assert answer is not None, "every pending ref gets an answer from _read_files"
            complete.append(answer)
        return complete

    def _decide_without_io(self, ref: object, recorded: object) -> Payload | None:
        """Every answer that needs no file; None means the file must be read."""
        ref_text = _as_text(ref)
        hash_text = _as_text(recorded)
        if ref is None:
            state = PayloadState.NEVER_STORED if recorded is None else PayloadState.HASH_ONLY
            return Payload(state=state, ref=None, hash=hash_text)
        if not isinstance(ref, str) or not _REF_PATTERN.fullmatch(ref):
            return Payload(
                state=PayloadState.INTEGRITY_FAILED,
                ref=ref_text,
                hash=hash_text,
                problem=f"payload ref {_echo(ref_text)} is malformed: a ref is 64 lowercase hex characters",
            )
        if recorded is not None and recorded != ref:
            # ELSPETH writes the ref as the content hash, so a disagreement means the row was altered.
            return Payload(
                state=PayloadState.INTEGRITY_FAILED,
                ref=ref,
                hash=hash_text,
                problem=f"payload ref {ref} differs from its recorded hash {_echo(hash_text)}",
            )
        if not self._roots:
            return Payload(state=PayloadState.STORE_NOT_CONFIGURED, ref=ref, hash=hash_text)
        return None

    def _read_files(
        self, pending: Sequence[tuple[int, str, str | None]], budget: ByteBudget
    ) -> list[tuple[int, Payload]]:
        """Runs in the worker thread: every file access of one read_many call."""
        seen: dict[str, Payload] = {}
        out: list[tuple[int, Payload]] = []
        for index, ref, recorded in pending:
            first = seen.get(ref)
            if first is None:
                payload = self._read_one(ref, recorded, budget)
                seen[ref] = payload
            else:
                payload = _charge_again(first, recorded, budget)
            out.append((index, payload))
        return out

    def _read_one(self, ref: str, recorded: str | None, budget: ByteBudget) -> Payload:
        relative = os.path.join(ref[:2], ref)
        for root in self._roots:
            candidate = root / relative
            real = Path(os.path.realpath(candidate))
            if not real.is_relative_to(root):
                return _failed(
                    ref, recorded, f"payload file for ref {ref} resolves outside the payload store"
                )
            try:
                fd = os.open(real, _OPEN_FLAGS)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                # ELOOP here means a symlink appeared after resolution; EACCES, an unreadable file.
                return _failed(
                    ref, recorded, f"payload file for ref {ref} could not be opened ({exc.strerror})"
                )
            try:
                # fstat the opened descriptor, not the path, so the check covers what is read.
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return _failed(ref, recorded, f"payload file for ref {ref} is not a regular file")
                size, digest, kept = _hash_keeping_prefix(fd, self._max_bytes_per_payload)
            except OSError as exc:
                return _failed(
                    ref, recorded, f"payload file for ref {ref} could not be read ({exc.strerror})"
                )
            finally:
                os.close(fd)
            if digest != ref:
                return _failed(
                    ref, recorded, f"payload file for ref {ref} has sha256 {digest}: its content was altered"
                )
            granted = budget.reserve(len(kept))
            data = kept[:granted]
            return Payload(
                state=PayloadState.AVAILABLE,
                ref=ref,
                hash=recorded,
                size_bytes=size,
                data=data,
                truncated=len(data) < size,
            )
        return Payload(
            state=PayloadState.PURGED,
            ref=ref,
            hash=recorded,
            problem=f"payload file for ref {ref} is not in the payload store (purged by retention?)",
        )


def _hash_keeping_prefix(fd: int, keep: int) -> tuple[int, str, bytes]:
    """Stream the whole file through sha256, keeping only its first `keep` bytes."""
    digest = hashlib.sha256()
    kept = bytearray()
    size = 0
    while chunk := os.read(fd, _CHUNK_BYTES):
        digest.update(chunk)
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
        size += len(chunk)
    return size, digest.hexdigest(), bytes(kept)


def _charge_again(first: Payload, recorded: str | None, budget: ByteBudget) -> Payload:
    """A repeated ref reuses the first read; its bytes still count against the response."""
    if first.state is not PayloadState.AVAILABLE or first.data is None or first.size_bytes is None:
        return Payload(
            state=first.state,
            ref=first.ref,
            hash=recorded,
            size_bytes=first.size_bytes,
            problem=first.problem,
        )
    # The budget only shrinks, so the first occurrence kept at least as much as this one can get.
    data = first.data[: budget.reserve(len(first.data))]
    return Payload(
        state=PayloadState.AVAILABLE,
        ref=first.ref,
        hash=recorded,
        size_bytes=first.size_bytes,
        data=data,
        truncated=len(data) < first.size_bytes,
    )


def _failed(ref: str, recorded: str | None, problem: str) -> Payload:
    return Payload(state=PayloadState.INTEGRITY_FAILED, ref=ref, hash=recorded, problem=problem)


def _as_text(value: object) -> str | None:
    """Database columns are typed loosely in SQLite: keep the Payload's fields strings."""
    if value is None or isinstance(value, str):
        return value
    return repr(value)[: _ECHO_CHARS * 2]


def _echo(value: str | None) -> str:
    if value is None:
        return "None"
    if len(value) <= _ECHO_CHARS:
        return repr(value)
    return repr(value[:_ECHO_CHARS]) + f"… ({len(value)} characters)"
