"""`landscape-graphql verify`: recompute an export's chunks, root, file hashes and signatures.

A full check reads the file once, line by line: each record must be canonical JSON (a record
that is not is named), each chunk's recomputed root must be the manifest's (a chunk that
differs is named with its records), then the root over the chunk roots, the file's sha256
and size, and the signatures the given keys can check. `--records A-B` reads only the chunks
holding those records, through the manifest's byte offsets, and checks them against the
signed root. `--prove N` writes an evidence slip: the record, its RFC 6962 audit path and
the signed manifest, which `--slip` checks with nothing else.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ..canonical import Frontier, audit_path, canonical, leaf_hash, root_from_path, root_of
from . import CHUNK_RECORDS
from .formats import strip_line
from .manifest import ExportError, VerificationFailed, check_signatures, file_digest, manifest_bytes
from .writer import manifest_path

SLIP_FORMAT = "landscape-graphql-evidence/1"


def load_manifest(out: Path) -> dict[str, Any]:
    path = manifest_path(out)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read the manifest {path}: {exc.strerror}", 2) from None
    try:
        manifest: dict[str, Any] = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise VerificationFailed(f"the manifest {path} is not JSON") from None
    if manifest_bytes(manifest) != raw.rstrip(b"\n"):
        raise VerificationFailed(f"the manifest {path} is not in canonical form: it was edited")
    return manifest


def _check_record(line: bytes, index: int) -> None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise VerificationFailed(f"record {index} is not valid JSON") from None
    if not isinstance(obj, dict) or canonical(obj) != line:
        raise VerificationFailed(f"record {index} is not the canonical JSON of a record: it was edited")


def _lines(stream: IO[bytes], fmt: str) -> Iterator[bytes]:
    for raw in stream:
        if fmt == "json" and raw in (b"[\n", b"]\n"):
            continue
        yield strip_line(fmt, raw)


def _chunk_label(chunk: dict[str, Any]) -> str:
    first = chunk["first_record"]
    return f"chunk {chunk['index']} (records {first}-{first + chunk['count'] - 1})"


def verify_full(out: Path, manifest: dict[str, Any]) -> int:
    fmt = manifest["record_format"]
    chunks: list[dict[str, Any]] = manifest["chunks"]
    if fmt == "csv":
        return -1  # records cannot be recovered from CSV cells: the file hash and signatures carry it
    index = 0
    frontier = Frontier()
    chunk_i = 0
    stream: IO[bytes] = (gzip.open(out, "rb") if manifest.get("compression") == "gzip"  # type: ignore[assignment]  # noqa: SIM115
                         else out.open("rb"))
    with stream:
        for line in _lines(stream, fmt):
            _check_record(line, index)
            frontier.add(leaf_hash(line))
            index += 1
            if frontier.count == CHUNK_RECORDS:
                _close(chunks, chunk_i, frontier)
                chunk_i, frontier = chunk_i + 1, Frontier()
    if frontier.count:
        _close(chunks, chunk_i, frontier)
        chunk_i += 1
    if chunk_i < len(chunks):
        raise VerificationFailed(f"the file ends before {_chunk_label(chunks[chunk_i])}: records are missing")
    if index != manifest["record_count"]:
        raise VerificationFailed(f"the file holds {index} records, the manifest says {manifest['record_count']}")
    return index


def _close(chunks: list[dict[str, Any]], i: int, frontier: Frontier) -> None:
    if i >= len(chunks):
        raise VerificationFailed(f"the file holds more records than the manifest's {len(chunks)} chunks")
    chunk = chunks[i]
    if frontier.count != chunk["count"]:
        raise VerificationFailed(f"{_chunk_label(chunk)} has {frontier.count} records in the file: "
                                 "records were dropped or added")
    if frontier.root().hex() != chunk["root"]:
        raise VerificationFailed(f"{_chunk_label(chunk)} does not match its root: a record in it was changed")


def check_tree(manifest: dict[str, Any]) -> None:
    roots = [bytes.fromhex(c["root"]) for c in manifest["chunks"]]
    if root_of(roots).hex() != manifest["root"]:
        raise VerificationFailed("the chunk roots do not give the manifest's root: the manifest was edited")


def check_files(out: Path, manifest: dict[str, Any]) -> None:
    for entry in manifest["files"]:
        path = out.with_name(entry["name"])
        try:
            digest, size = file_digest(path)
        except OSError as exc:
            raise VerificationFailed(f"cannot read {path}: {exc.strerror}") from None
        if size != entry["size"] or digest != entry["sha256"]:
            raise VerificationFailed(f"{path.name} is {size} bytes with sha256 {digest[:16]}…, the manifest says "
                                     f"{entry['size']} bytes and {entry['sha256'][:16]}…")


def _addressable(manifest: dict[str, Any]) -> None:
    if not manifest["chunks"] or manifest["chunks"][0].get("byte_offset") is None:
        raise ExportError("this export's records cannot be addressed by offset (csv or compressed): "
                          "verify it whole", 2)


def _read_chunk(out: Path, manifest: dict[str, Any], chunk: dict[str, Any]) -> list[bytes]:
    with out.open("rb") as f:
        f.seek(chunk["byte_offset"])
        data = f.read(chunk["byte_length"])
    lines = [strip_line(manifest["record_format"], raw + b"\n") for raw in data.split(b"\n")[:-1]]
    frontier = Frontier()
    for i, line in enumerate(lines):
        _check_record(line, chunk["first_record"] + i)
        frontier.add(leaf_hash(line))
    if frontier.count != chunk["count"] or frontier.root().hex() != chunk["root"]:
        raise VerificationFailed(f"{_chunk_label(chunk)} does not match its root")
    return lines


def verify_range(out: Path, manifest: dict[str, Any], first: int, last: int) -> int:
    """Check records first..last (inclusive) reading only their chunks; return chunks read."""
    _addressable(manifest)
    if not 0 <= first <= last < manifest["record_count"]:
        raise ExportError(f"--records {first}-{last} is outside 0-{manifest['record_count'] - 1}", 2)
    check_tree(manifest)
    needed = [c for c in manifest["chunks"] if c["first_record"] <= last and c["first_record"] + c["count"] > first]
    for chunk in needed:
        _read_chunk(out, manifest, chunk)
    return len(needed)


def prove(out: Path, manifest: dict[str, Any], n: int) -> dict[str, Any]:
    _addressable(manifest)
    if not 0 <= n < manifest["record_count"]:
        raise ExportError(f"--prove {n} is outside 0-{manifest['record_count'] - 1}", 2)
    check_tree(manifest)
    chunk = next(c for c in manifest["chunks"] if c["first_record"] <= n < c["first_record"] + c["count"])
    lines = _read_chunk(out, manifest, chunk)
    leaves = [leaf_hash(line) for line in lines]
    roots = [bytes.fromhex(c["root"]) for c in manifest["chunks"]]
    path = audit_path(leaves, n - chunk["first_record"]) + audit_path(roots, chunk["index"])
    return {"format": SLIP_FORMAT, "record_index": n, "record": lines[n - chunk["first_record"]].decode(),
            "tree_size": manifest["record_count"], "audit_path": [h.hex() for h in path], "manifest": manifest}


def check_slip(slip: dict[str, Any], public: Any, hmac_secret: bytes | None) -> None:
    if slip.get("format") != SLIP_FORMAT:
        raise VerificationFailed("not an evidence slip of this tool")
    manifest = slip["manifest"]
    if public is None and hmac_secret is None:
        raise ExportError("a slip proves nothing without the key its manifest is signed with: "
                          "give --pubkey (or --hmac-key-env)", 2)
    check_signatures(manifest, public, hmac_secret)
    line = slip["record"].encode()
    _check_record(line, slip["record_index"])
    try:
        root = root_from_path(leaf_hash(line), slip["record_index"], slip["tree_size"],
                              [bytes.fromhex(h) for h in slip["audit_path"]])
    except ValueError as exc:
        raise VerificationFailed(f"the slip's audit path is malformed: {exc}") from None
    if slip["tree_size"] != manifest["record_count"] or root.hex() != manifest["root"]:
        raise VerificationFailed(f"record {slip['record_index']} of the slip does not lead to the signed root: "
                                 "the record or its path was edited")
