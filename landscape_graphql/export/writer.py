"""Writing an export: FILE.part, the Merkle tree and chunks as records pass, the checkpoint.

Records go to `FILE.part`, which is renamed to FILE only when the last page is written; the
manifest comes after that. After each flushed page (at most every `checkpoint_every_s`) the
checkpoint `FILE.checkpoint.json` is replaced atomically: the cursor of the next page, the
records and bytes written, the finished chunks and the Merkle frontier of the open one.
`--resume` truncates FILE.part to the checkpoint's bytes and carries on from its cursor, so the
result is byte for byte what an uninterrupted export writes. A gzip stream cannot be resumed
mid-way (its compressor state is not saved), so a .gz export starts over instead.
"""

from __future__ import annotations

import gzip
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson

from ..canonical import Frontier, frontier_of, leaf_hashes, root_of
from . import CHUNK_RECORDS
from .formats import RecordFormat
from .manifest import ExportError

BLOCK = 1024  # leaves hashed into a subtree root at once: a checkpoint re-hashes fewer than this


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoint.json")


def part_path(out: Path) -> Path:
    return out.with_name(out.name + ".part")


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


class ExportWriter:
    def __init__(self, out: Path | None, fmt: RecordFormat, fingerprint: str, *, resume: bool = False,
                 checkpoint_every_s: float = 1.0) -> None:
        self.out = out
        self.fmt = fmt
        self.fingerprint = fingerprint
        self.gzip = out is not None and out.name.endswith(".gz")
        self.checkpoint_every_s = checkpoint_every_s
        self.records = 0
        self.bytes = 0  # uncompressed bytes of records written, header included
        self.chunks: list[dict[str, Any]] = []
        # The open chunk: roots of its complete blocks of BLOCK leaves, then the leaf hashes
        # after them; a chunk resumed in the middle is a Frontier the leaves are added to.
        self.blocks: list[bytes] = []
        self.leaves: list[bytes] = []
        self.prefix: Frontier | None = None
        self.chunk_offset = 0
        self.cursor: str | None = None
        self._last_checkpoint = 0.0
        self._raw: IO[bytes]
        self._stream: IO[bytes]
        state = self._load_checkpoint() if resume else None
        if out is None:
            self._raw = sys.stdout.buffer
            self._stream = self._raw
        elif state is not None:
            self._raw = part_path(out).open("r+b")
            self._raw.truncate(state["bytes"])
            self._raw.seek(state["bytes"])
            self._stream = self._raw
        else:
            self._raw = part_path(out).open("wb")
            # mtime=0 and no file name: the same records always give the same .gz bytes.
            self._stream = (gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0, filename="")  # type: ignore[assignment]
                            if self.gzip else self._raw)
        self.resumed = state is not None
        if state is None:
            self._emit(fmt.header())
            self.chunk_offset = self.bytes

    def _load_checkpoint(self) -> dict[str, Any] | None:
        assert self.out is not None
        if self.gzip:
            print("landscape-graphql: a .gz export cannot resume mid-stream; starting over", file=sys.stderr)
            return None
        path = checkpoint_path(self.out)
        try:
            state: dict[str, Any] = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise ExportError(f"nothing to resume: {path} does not exist", 2) from None
        except orjson.JSONDecodeError:
            raise ExportError(f"the checkpoint {path} is not valid JSON", 1) from None
        if state.get("fingerprint") != self.fingerprint:
            raise ExportError("the checkpoint was written for another export (query, variables, run status, "
                              "format or schema changed): export again without --resume", 1)
        part = part_path(self.out)
        if not part.exists() or part.stat().st_size < state["bytes"]:
            raise ExportError(f"{part} is missing or shorter than the checkpoint says", 1)
        self.records, self.bytes, self.cursor = state["records"], state["bytes"], state["cursor"]
        self.chunks = state["chunks"]
        if state["chunk_records"]:
            self.prefix = Frontier.load(state["frontier"], state["chunk_records"])
        self.chunk_offset = state["chunk_offset"]
        return state

    def _emit(self, data: bytes) -> None:
        if data:
            self._stream.write(data)
            self.bytes += len(data)

    def _open_count(self) -> int:
        if self.prefix is not None:
            return self.prefix.count
        return len(self.blocks) * BLOCK + len(self.leaves)

    def _frontier(self) -> Frontier:
        if self.prefix is not None:
            return Frontier(self.prefix.stack, self.prefix.count)
        # Blocks are complete, aligned subtrees: the frontier over the blocks, scaled, then the
        # frontier of the leaves after them.
        over_blocks = frontier_of(self.blocks)
        tail = frontier_of(self.leaves)
        return Frontier([(size * BLOCK, h) for size, h in over_blocks.stack] + tail.stack, self._open_count())

    def _close_chunk(self) -> None:
        n = self._open_count()
        if self.prefix is not None:
            root = self.prefix.root()
        else:
            root = root_of(self.blocks + ([root_of(self.leaves)] if self.leaves else []))
        self.chunks.append({"index": len(self.chunks), "first_record": self.records - n, "count": n,
                            "byte_offset": self.chunk_offset, "byte_length": self.bytes - self.chunk_offset,
                            "root": root.hex()})
        self.blocks, self.leaves, self.prefix = [], [], None
        self.chunk_offset = self.bytes

    def write_page(self, lines: list[bytes], objects: list[dict[str, Any]] | None,
                   next_cursor: str | None) -> None:
        """Write a page's records (their canonical lines, and the objects when at hand) and
        add them to the tree; a chunk that fills is closed where it fills."""
        start = 0
        while start < len(lines):
            end = min(len(lines), start + CHUNK_RECORDS - self._open_count())
            self._write_run(lines[start:end], objects[start:end] if objects is not None else None)
            start = end
            if self._open_count() == CHUNK_RECORDS:
                self._close_chunk()
        self.cursor = next_cursor
        self._stream.flush()
        now = time.monotonic()
        if self.out is not None and not self.gzip and now - self._last_checkpoint >= self.checkpoint_every_s:
            self._last_checkpoint = now
            self._write_checkpoint()

    def _write_run(self, lines: list[bytes], objects: list[dict[str, Any]] | None) -> None:
        """Records that all fall in the open chunk."""
        fmt = self.fmt
        if type(fmt) is RecordFormat:  # jsonl: the lines themselves
            self._emit(b"\n".join(lines) + b"\n")
        else:
            first = self.records
            self._emit(b"".join([fmt.encode(first + i, line, objects[i] if objects is not None else None)
                                 for i, line in enumerate(lines)]))
        hashes = leaf_hashes(lines)
        self.records += len(lines)
        if self.prefix is not None:
            for leaf in hashes:
                self.prefix.add(leaf)
            return
        leaves = self.leaves
        leaves += hashes
        if len(leaves) >= BLOCK:
            whole = len(leaves) - len(leaves) % BLOCK
            self.blocks += [root_of(leaves[i:i + BLOCK]) for i in range(0, whole, BLOCK)]
            self.leaves = leaves[whole:]

    def _write_checkpoint(self) -> None:
        assert self.out is not None
        frontier = self._frontier()
        state = {"fingerprint": self.fingerprint, "cursor": self.cursor, "records": self.records,
                 "bytes": self.bytes, "chunks": self.chunks, "frontier": frontier.dump(),
                 "chunk_records": frontier.count, "chunk_offset": self.chunk_offset}
        path = checkpoint_path(self.out)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(state))
        os.replace(tmp, path)

    def finish(self) -> tuple[list[dict[str, Any]], str]:
        """Close the last chunk and the file, rename it into place; return (chunks, root hex)."""
        if self._open_count():
            self._close_chunk()
        self._emit(self.fmt.footer(self.records))
        self._stream.flush()
        if self._stream is not self._raw:
            self._stream.close()
        if self.out is not None:
            self._raw.close()
            os.replace(part_path(self.out), self.out)
            checkpoint_path(self.out).unlink(missing_ok=True)
        root = root_of([bytes.fromhex(c["root"]) for c in self.chunks]).hex()
        if not self.fmt.line_based or self.gzip:
            # Offsets into a CSV or compressed stream do not address records: leave them out.
            for c in self.chunks:
                c["byte_offset"] = c["byte_length"] = None
        return self.chunks, root

    def abort(self) -> None:
        """Keep FILE.part and the checkpoint for --resume."""
        try:
            self._stream.flush()
            if self.out is not None and not self.gzip:
                self._write_checkpoint()
        except (OSError, ValueError):
            pass
