"""Records in RFC 8785 canonical JSON, and the RFC 6962 Merkle tree over them.

A record's hashed form is its canonical JSON (the `rfc8785` package, which ELSPETH uses) and
the JSONL line is that same form. `rfc8785` is pure Python: a run has millions of records, so a
flat record with ASCII keys and no floats goes through orjson with sorted keys instead, which
produces the same bytes for those (strings are escaped alike, integers up to 2^53 printed
alike, ASCII keys sort alike by UTF-16 unit and by byte, fractions between 1e-4 and 1e16
printed alike; tests/test_canonical.py checks it against `rfc8785` on generated
records). Anything else (other floats, nested values, non-ASCII keys) takes `rfc8785` itself.

The tree is RFC 6962's: leaf `SHA-256(0x00 || record)`, node `SHA-256(0x01 || left || right)`,
split at the largest power of two below the size. Chunks of 2^16 records are complete subtrees,
so the root over all records equals the same tree built over the chunk roots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import partial
from itertools import repeat
from operator import methodcaller
from typing import Any

import orjson
import rfc8785

_FLAT = frozenset({str, int, bool, type(None)})
_FLAT_OR_FLOAT = _FLAT | {float}
_SORTED_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_dumps_sorted = partial(orjson.dumps, option=_SORTED_STRICT)
_digest = methodcaller("digest")
_sha256 = hashlib.sha256


def _float_safe(value: float) -> bool:
    # Where ECMAScript's Number-to-string and the shortest round-trip repr orjson prints agree:
    # plain decimal notation, a fraction (an integral float prints as "5.0" in orjson, "5" in JCS).
    return 1e-4 <= abs(value) < 1e16 and not value.is_integer()


def canonical(record: dict[str, Any]) -> bytes:
    """The RFC 8785 form of a JSON object."""
    types = set(map(type, record.values()))
    if types <= _FLAT_OR_FLOAT and all(map(str.isascii, record)) and (
            float not in types or all(_float_safe(v) for v in record.values() if type(v) is float)):
        try:
            # STRICT_INTEGER refuses integers beyond 2^53, which JCS prints differently.
            return orjson.dumps(record, option=_SORTED_STRICT)
        except orjson.JSONEncodeError:
            pass
    return rfc8785.dumps(record)


def canonical_columns(keys: Sequence[str], columns: Sequence[Sequence[Any]]
                      ) -> tuple[list[bytes], list[dict[str, Any]]]:
    """`canonical()` of each record given column by column (`keys[i]`'s values in
    `columns[i]`), with the records as objects.

    The same bytes as `canonical()` record by record: when every key is ASCII and every
    column holds only values `canonical()` would give orjson, all records go through orjson
    at once (a loop in C, not Python); any other page takes `canonical()` record by record.
    """
    records = list(map(dict, map(zip, repeat(keys), zip(*columns, strict=True))))
    if all(map(str.isascii, keys)) and all(map(_flat_column, columns)):
        try:
            return list(map(_dumps_sorted, records)), records
        except orjson.JSONEncodeError:
            pass  # an integer beyond 2^53: canonical() sends that record to rfc8785
    return list(map(canonical, records)), records


def _flat_column(column: Sequence[Any]) -> bool:
    types = set(map(type, column))
    if types <= _FLAT:
        return True
    return types <= _FLAT_OR_FLOAT and all(_float_safe(v) for v in column if type(v) is float)


def leaf_hashes(records: Iterable[bytes]) -> list[bytes]:
    """`leaf_hash` of each record."""
    return list(map(_digest, map(_sha256, map(b"\x00".__add__, records))))


def leaf_hash(record: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes (or over chunk roots, chunks being complete subtrees).

    Built bottom-up, an odd last node carried up unchanged: for RFC 6962's left-complete trees
    that is the same tree as the recursive split, without the recursion.
    """
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    while len(level) > 1:
        pairs = map(bytes.__add__, level[::2], level[1::2])  # map stops at the shorter
        paired = list(map(_digest, map(_sha256, map(b"\x01".__add__, pairs))))
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def frontier_of(leaves: Sequence[bytes], prefix: Frontier | None = None) -> Frontier:
    """The frontier after `leaves` (following `prefix`, a resumed chunk's first part)."""
    if prefix is not None:
        frontier = Frontier(prefix.stack, prefix.count)
        for leaf in leaves:
            frontier.add(leaf)
        return frontier
    stack: list[tuple[int, bytes]] = []
    start, n = 0, len(leaves)
    for bit in reversed(range(n.bit_length())):
        size = 1 << bit
        if n & size:
            stack.append((size, root_of(leaves[start:start + size])))
            start += size
    return Frontier(stack, n)


def audit_path(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): the sibling hashes from leaf `index` up to the root."""
    if len(hashes) <= 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return [*audit_path(hashes[:k], index), root_of(hashes[k:])]
    return [*audit_path(hashes[k:], index - k), root_of(hashes[:k])]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf hash and its audit path (RFC 9162 2.1.3.2)."""
    if index >= size:
        raise ValueError("index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path too short")
    return r


class Frontier:
    """The roots of the complete subtrees seen so far: O(log n) hashes, enough to resume."""

    __slots__ = ("count", "stack")

    def __init__(self, stack: Iterable[tuple[int, bytes]] = (), count: int = 0) -> None:
        self.stack: list[tuple[int, bytes]] = list(stack)
        self.count = count

    def add(self, leaf: bytes) -> None:
        stack = self.stack
        size, h = 1, leaf
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            h = node_hash(left, h)
            size *= 2
        stack.append((size, h))
        self.count += 1

    def root(self) -> bytes:
        if not self.stack:
            return hashlib.sha256(b"").digest()
        h = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            h = node_hash(left, h)
        return h

    def dump(self) -> list[list[Any]]:
        return [[size, h.hex()] for size, h in self.stack]

    @classmethod
    def load(cls, data: Sequence[Sequence[Any]], count: int) -> Frontier:
        return cls(((int(s), bytes.fromhex(h)) for s, h in data), count)
