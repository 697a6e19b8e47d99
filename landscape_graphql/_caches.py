"""Caches shared by requests, bounded by the bytes they hold rather than by their entries.

A count bound is no bound on memory: one cached document of a 1 MB query text holds its whole
token chain (every AST node's `loc` reaches it), about 2 MB, so 512 entries could hold a
gigabyte. Every cache here weighs an entry by the query text it was made from (measured:
~110 bytes of AST per character of a dense query, so 128 is an upper estimate), and only
documents of texts up to `MAX_CACHED_CHARS` are cached at all.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, GraphQLError, GraphQLSchema, Node
from strawberry.extensions import SchemaExtension

V = TypeVar("V")

# Estimated bytes held per character of the query text a cached entry was made from.
BYTES_PER_QUERY_CHAR = 128
# Longer texts are parsed, validated and planned afresh for each request.
MAX_CACHED_CHARS = 16 * 1024
# Each cache's share.
PARSE_CACHE_BYTES = 32 * 1024 * 1024
VALIDATION_CACHE_BYTES = 32 * 1024 * 1024
ESTIMATE_CACHE_BYTES = 16 * 1024 * 1024
PLAN_CACHE_BYTES = 32 * 1024 * 1024


def compact(data: bytes) -> bytes:
    """`data` in an allocation of its own length, for a cache to keep.

    orjson's output stays in the buffer it grew while serialising: measured (orjson 3.13) 4 KiB
    held for 108 bytes, 64 KiB for 5 KB, 1 MiB for 100 KB. A cache counting `len()` would
    hold ten times what it counts.
    """
    return memoryview(data).tobytes()


def text_weight(chars: int) -> int:
    return BYTES_PER_QUERY_CHAR * max(chars, 1)


def node_weight(node: Node | None) -> int | None:
    """The weight of what `node` keeps alive (its document), or None when it is not cacheable."""
    loc = getattr(node, "loc", None)
    source = getattr(loc, "source", None)
    body = getattr(source, "body", None)
    if not isinstance(body, str) or len(body) > MAX_CACHED_CHARS:
        return None
    return text_weight(len(body))


class ByteLRU(Generic[V]):
    """A least-recently-used map holding at most `max_bytes` of entries by their given weight."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, value: V, weight: int) -> None:
        if weight > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (value, weight)
        self.bytes += weight
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


_VALIDATIONS: ByteLRU[tuple[DocumentNode, list[GraphQLError]]] = ByteLRU(VALIDATION_CACHE_BYTES)
# The rules each schema's requests are validated with (its extensions add them per request,
# always the same ones), so that `known_valid` asks the cache what the extensions would.
_RULES: weakref.WeakKeyDictionary[GraphQLSchema, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def known_valid(document: DocumentNode, schema: GraphQLSchema) -> bool:
    """Whether `document` is in the validation cache, without errors, for `schema`'s rules."""
    rules = _RULES.get(schema)
    if rules is None:
        return False
    hit = _VALIDATIONS.get((id(document), id(schema), rules))
    return hit is not None and hit[0] is document and not hit[1]


class BoundedValidationCache(SchemaExtension):
    """Strawberry's ValidationCache, bounded by bytes.

    Keyed by the document's identity (the parse cache hands every request of one text the same
    document; the entry keeps it alive so its id is not reused), the schema and the rules.
    """

    def on_validate(self) -> Iterator[None]:
        from strawberry.schema.schema import validate_document

        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        schema: GraphQLSchema = context.schema._schema
        rules: Any = tuple(context.validation_rules)
        weight = node_weight(document)
        key = (id(document), id(schema), rules)
        _RULES[schema] = rules
        hit = _VALIDATIONS.get(key) if weight is not None else None
        if hit is not None and hit[0] is document:
            errors = hit[1]
        else:
            errors = validate_document(schema, document, rules)
            if weight is not None:
                _VALIDATIONS.put(key, (document, errors), weight)
        context.pre_execution_errors = errors
        yield
