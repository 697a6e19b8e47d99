"""The canonical form and the Merkle tree against their definitions."""

from __future__ import annotations

import hashlib

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from landscape_graphql.canonical import (
    Frontier,
    audit_path,
    canonical,
    leaf_hash,
    node_hash,
    root_from_path,
    root_of,
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                    st.text(), st.floats(allow_nan=False, allow_infinity=False))
records = st.dictionaries(st.text(min_size=1), st.one_of(scalars, st.lists(scalars, max_size=3),
                                                        st.dictionaries(st.text(), scalars, max_size=3)))


@settings(max_examples=300, deadline=None)
@given(records)
def test_canonical_is_rfc8785(record: dict[str, object]) -> None:
    # The orjson fast path must give exactly rfc8785's bytes wherever it is taken.
    assert canonical(record) == rfc8785.dumps(record)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written out as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def test_tree_matches_rfc6962() -> None:
    for n in (1, 2, 3, 5, 7, 8, 13, 64, 100):
        data = [f"record {i}".encode() for i in range(n)]
        leaves = [leaf_hash(d) for d in data]
        frontier = Frontier()
        for leaf in leaves:
            frontier.add(leaf)
        assert frontier.root() == root_of(leaves) == mth(data)
        for i in range(n):
            assert root_from_path(leaves[i], i, n, audit_path(leaves, i)) == mth(data)
        # chunks aligned to the tree: the root over chunk roots is the root over the records
        if n >= 8:
            chunk_roots = [root_of(leaves[i:i + 4]) for i in range(0, n, 4)]
            assert root_of(chunk_roots) == mth(data)


def test_node_hash_prefix() -> None:
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_fast_floats_match_rfc8785() -> None:
    import random
    rng = random.Random(7)
    for _ in range(20_000):
        value = rng.choice([1, -1]) * 10 ** rng.uniform(-6, 22)
        if rng.random() < 0.3:
            value = round(value, rng.randint(0, 6))
        record = {"a": value, "b": "x"}
        assert canonical(record) == rfc8785.dumps(record), value
