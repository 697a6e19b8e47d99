"""Caches shared by requests are bounded by the bytes they hold, not by their entries: a long
valid query (a megabyte of string literal passes the token limit) is never kept, and short
ones are kept only up to each cache's byte share."""

from __future__ import annotations

import gc

from graphql import DocumentNode

from landscape_graphql import _caches, _node_budget, limits
from landscape_graphql.execution import plans
from tests.conftest import Api, truth

TOKEN = truth(2, "fork-coalesce")["runs"][0]["cases"]["forked_parent"]["token_id"]


def _long_documents() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, DocumentNode) and o.loc is not None
               and len(o.loc.source.body) > _caches.MAX_CACHED_CHARS)


async def test_long_queries_are_not_kept_by_any_cache(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    before = _long_documents()
    for i in range(20):
        # A valid ~100 KB query: a long (distinct) string in an argument, then a real lookup.
        padding = f"{i:04d}" + "x" * 100_000
        query = (f'query {{ a: token(tokenId: "{TOKEN}") {{ tokenId row {{ rowId }} }} '
                 f'b: runs(filter: {{statuses: []}}, after: null, first: 1) {{ totalCount }} }} # {padding}')
        result = await api.run(query)
        assert not result.errors, result.errors
    assert _long_documents() - before == 0, "a long query's document outlived its request"


async def test_short_queries_are_kept_within_each_caches_bytes(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "fork-coalesce")]
    for i in range(40):
        fields = " ".join(f"f{i}_{j}: tokenId" for j in range(20))
        data = await api.ok(f'{{ token(tokenId: "{TOKEN}") {{ {fields} }} }}')
        assert data["token"][f"f{i}_0"] == TOKEN
    for cache in (limits._parsed, _node_budget._estimates, _caches._VALIDATIONS, plans._SHARED):
        assert 0 < cache.bytes <= cache.max_bytes
        assert len(cache) > 0


def test_a_byte_lru_evicts_by_weight() -> None:
    cache: _caches.ByteLRU[str] = _caches.ByteLRU(100)
    for key in "abcd":
        cache.put(key, key, 30)
    assert len(cache) == 3 and cache.get("a") is None and cache.bytes == 90
    cache.get("b")  # recently used: survives the next eviction
    cache.put("e", "e", 30)
    assert cache.get("b") == "b" and cache.get("c") is None
    cache.put("huge", "x", 101)  # heavier than the whole cache: never kept
    assert cache.get("huge") is None and cache.bytes <= 100


def test_the_response_cache_holds_no_more_memory_than_it_counts() -> None:
    # Its bound counts an answer's JSON plus ENTRY_OVERHEAD_BYTES for the rest of the entry:
    # measured, what it holds must fit, or 64 MiB of cache would hold more than 64 MiB (it held
    # ~9x: orjson's output keeps the whole buffer it grew; see _caches.compact). Answers of the
    # mixed load's small sizes, three times as many bytes as fit, so it evicts all along.
    import hashlib
    import tracemalloc

    import orjson

    from landscape_graphql.http_cache import Entry, ResponseCache, etag

    cache = ResponseCache(1024 * 1024)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        put = 0
        i = 0
        while put < 3 * cache.max_bytes:
            data = orjson.dumps({"token": {f"a{j}": f"token-{i:08d}" for j in range(i % 30)}})
            tag = etag(hashlib.sha256(str(i).encode()).hexdigest(), {"n": i}, None, "*", "v1")
            cache.put(tag, Entry(data, {"estimatedNodes": i}, "*"))
            put += len(data)
            i += 1
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) < i
    assert held <= cache.max_bytes, f"{held} bytes held by a cache bounded at {cache.max_bytes}"


def test_compact_keeps_only_the_bytes() -> None:
    import tracemalloc

    import orjson

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [_caches.compact(orjson.dumps({"a": "x" * size})) for size in (100, 5_000, 100_000)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= sum(len(k) for k in kept) + 3 * 64 + 128
