"""Query limits, all enforced before any resolver (and so any SQL) runs.

Static limits (depth, aliases, root fields, directives) are graphql-core
validation rules built by :func:`limit_rules`.  The token limit is applied while
parsing and the node budget after validation, both by
:class:`limits_extension.QueryLimitsExtension`, which also reports ``extensions.landscape.
estimatedNodes`` on every response whose document parsed.

The node budget is estimated by `_node_budget.py`, which says how.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Lexer,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
    parse,
)

from ._caches import (
    MAX_CACHED_CHARS,
    PARSE_CACHE_BYTES,
    ByteLRU,
    text_weight,
)
from .errors import QUERY_LIMIT_CODE, VALIDATION_FAILED_CODE, ClientFacingError

__all__ = [
    "DEFAULT_QUERY_LIMITS",
    "QUERY_LIMIT_CODE",
    "PageSizeError",
    "QueryLimitError",
    "QueryLimits",
    "check_document",
    "check_node_budget",
    "check_page_size",
    "limit_rules",
    "parse_with_limits",
    "request_body_refusal",
]


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 15
    max_aliases: int = 30
    max_root_fields: int = 20
    max_directives: int = 50
    # Fields of one selection set, fragments expanded. Validation compares same-named fields
    # of a set pairwise (OverlappingFieldsCanBeMerged): this bounds that quadratic before it runs.
    max_selections: int = 200
    # Lexical tokens; comments are capped by the same number separately.
    max_tokens: int = 5_000
    # The request body (limit name: requestBody), refused with HTTP 413 before it is parsed.
    max_body_bytes: int = 1024 * 1024
    max_page_size: int = 500
    default_page_size: int = 50
    max_nodes: int = 500_000
    traversal_fanout: int = 4
    traversal_token_budget: int = 10_000
    traversal_depth_argument: str = "maxDepth"
    # Assumed length of a list of objects without first/last (Token.children, ...).
    unpaginated_list_size: int = 5
    # Fields whose answer scans a whole run (a DAG's per-edge token counts read every node
    # state of the run), each counted as this many nodes per object that asks.
    whole_run_fields: frozenset[str] = frozenset({"Run.dag"})
    whole_run_nodes: int = 10_000
    # Connections for bulk export, whose page is one string of records rather than objects to
    # resolve: larger pages, so a script's round trips stay few (`landscape-graphql export`).
    bulk_page_fields: frozenset[str] = frozenset({"Run.exportRecords"})
    max_bulk_page_size: int = 5_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, int) and value < 1:
                raise ValueError(f"QueryLimits.{name} must be at least 1, got {value}")
        if self.default_page_size > self.max_page_size:
            raise ValueError("QueryLimits.default_page_size must not exceed max_page_size")

    def page_size_limit(self, coordinate: str) -> int:
        """The largest page the field `Type.field` may ask for."""
        return self.max_bulk_page_size if coordinate in self.bulk_page_fields else self.max_page_size


DEFAULT_QUERY_LIMITS = QueryLimits()


def _limit_message(subject: str, limit: str, found: int, maximum: int, lower_bound: bool) -> str:
    shown = f"over {found}" if lower_bound else str(found)
    return f"{subject} {shown} exceeds the maximum of {maximum} (limit: {limit})"


def _limit_extensions(
    limit: str, found: int, maximum: int, details: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {"code": QUERY_LIMIT_CODE, "limit": limit, "found": found, "maximum": maximum, **(details or {})}


class QueryLimitError(GraphQLError):
    """A limit exceeded before execution; reported as the response's error."""

    def __init__(
        self,
        subject: str,
        limit: str,
        found: int,
        maximum: int,
        *,
        nodes: Node | list[Node] | None = None,
        lower_bound: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            _limit_message(subject, limit, found, maximum, lower_bound),
            nodes=nodes,
            extensions=_limit_extensions(limit, found, maximum, details),
        )
        self.limit, self.found, self.maximum = limit, found, maximum


class PageSizeError(ClientFacingError):
    """A page over `max_page_size` (see check_page_size); the same error before execution and
    in a resolver."""

    code = QUERY_LIMIT_CODE

    def __init__(self, found: int, maximum: int, argument: str) -> None:
        super().__init__(
            _limit_message("Page size", "pageSize", found, maximum, False),
            extensions=_limit_extensions("pageSize", found, maximum, {"argument": argument}),
        )
        self.found, self.maximum, self.argument = found, maximum, argument


def check_page_size(first: int | None, last: int | None, limits: QueryLimits = DEFAULT_QUERY_LIMITS,
                    coordinate: str = "") -> None:
    """The page-size rule, for every path: the estimate before execution, each connection's
    resolver (where a value is finally used, so no path can skip it), and the export.
    `coordinate` (`Type.field`) names the connection, for the limits that differ by field."""
    maximum = limits.page_size_limit(coordinate)
    for argument, value in (("first", first), ("last", last)):
        if value is not None and value > maximum:
            raise PageSizeError(value, maximum, argument)


def check_node_budget(found: int, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> None:
    """The node budget's rule, for every path that estimated a document (`_node_budget`)."""
    if found > limits.max_nodes:
        raise QueryLimitError("Query estimated node count", "nodes", found, limits.max_nodes)


def request_body_refusal(found: int, maximum: int, lower_bound: bool) -> dict[str, Any]:
    """The response body refusing a request body over `QueryLimits.max_body_bytes` (HTTP 413)."""
    return {"errors": [{
        "message": _limit_message("Request body size", "requestBody", found, maximum, lower_bound),
        "extensions": _limit_extensions("requestBody", found, maximum, None)}]}


# ---------------------------------------------------------------- parsing


def _count_tokens(body: str, cap: int) -> tuple[int, bool]:
    lexer, count = Lexer(Source(body)), 0
    try:
        while lexer.advance().kind != TokenKind.EOF:
            count += 1
            if count > cap:
                return count, True
    except GraphQLSyntaxError:
        return count, True
    return count, False


# Documents are immutable once parsed, so repeated queries (dashboards polling
# the same text) can share one. Bounded by bytes (_caches.py): only texts of up to
# MAX_CACHED_CHARS, weighed by their length (a text under the token limit can
# still be a megabyte of string literal).
_parsed: ByteLRU[DocumentNode] = ByteLRU(PARSE_CACHE_BYTES)


def _cached_parse(query: str, max_tokens: int) -> DocumentNode:
    key = (query, max_tokens)
    document = _parsed.get(key)
    if document is None:
        document = parse(query, max_lexical_tokens=max_tokens, max_comments=max_tokens)
        _parsed.put(key, document, text_weight(len(query)))
    return document


def cached_document(query: str, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> DocumentNode | None:
    """The document `parse_with_limits` parsed from `query` earlier and still caches, if any."""
    return _parsed.get((query, limits.max_tokens))


def parse_with_limits(query: str, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> DocumentNode:
    """Parse ``query``; raise :class:`QueryLimitError` past the token limit."""
    try:
        if len(query) <= MAX_CACHED_CHARS:
            return _cached_parse(query, limits.max_tokens)
        return parse(query, max_lexical_tokens=limits.max_tokens, max_comments=limits.max_tokens)
    except GraphQLSyntaxError as error:
        if "contains more than" not in error.message:
            raise
        if "comments" in error.message:
            raise QueryLimitError(
                "Query comment count", "tokens", limits.max_tokens + 1, limits.max_tokens, lower_bound=True
            ) from None
        # Count for the message, but only up to twice the limit: lexing a 1 MB
        # body in full costs over a second, which a refusal must not cost.
        found, partial = _count_tokens(query, 2 * limits.max_tokens)
        raise QueryLimitError(
            "Query token count", "tokens", found, limits.max_tokens, lower_bound=partial
        ) from None


# ---------------------------------------------------------------- static rules


class _LimitRule(ASTValidationRule):
    limits: ClassVar[QueryLimits] = DEFAULT_QUERY_LIMITS

    def _fragment(self, name: str) -> FragmentDefinitionNode | None:
        return self.context.get_fragment(name)


class _DepthRule(_LimitRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> object:
        memo: dict[str, int] = {}

        def depth(selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> int:
            if selection_set is None:
                return 0
            deepest = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    deepest = max(deepest, 1 + depth(selection.selection_set, visiting))
                elif isinstance(selection, InlineFragmentNode):
                    deepest = max(deepest, depth(selection.selection_set, visiting))
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in visiting:  # cycle: NoFragmentCyclesRule reports it
                        continue
                    if name not in memo:
                        fragment = self._fragment(name)
                        memo[name] = depth(fragment.selection_set, visiting | {name}) if fragment else 0
                    deepest = max(deepest, memo[name])
            return deepest

        found = depth(node.selection_set, frozenset())
        if found > self.limits.max_depth:
            self.report_error(
                QueryLimitError("Query depth", "depth", found, self.limits.max_depth, nodes=node)
            )
        return self.SKIP


class _CountRule(_LimitRule):
    """Aliases and directives as executed: each fragment counted as many times as it is spread.

    A fragment spread twice into the same selection set merges into the same response keys,
    so within one set a fragment counts once; spread into different sets (say under four
    aliased fields) it runs, and counts, once per set. Memoised per fragment, so a document
    with exponential fragment fan-out is still counted in linear time.
    """

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> object:
        memo: dict[str, tuple[int, int]] = {}

        def count(selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> tuple[int, int]:
            if selection_set is None:
                return 0, 0
            aliases = directives = 0
            spread: set[str] = set()
            for selection in selection_set.selections:
                directives += len(selection.directives or ())
                if isinstance(selection, FieldNode):
                    aliases += selection.alias is not None
                    inner = count(selection.selection_set, visiting)
                elif isinstance(selection, InlineFragmentNode):
                    inner = count(selection.selection_set, visiting)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in spread or name in visiting:  # merged, or a cycle (reported elsewhere)
                        continue
                    spread.add(name)
                    if name not in memo:
                        fragment = self._fragment(name)
                        memo[name] = ((0, 0) if fragment is None else
                                      _add((0, len(fragment.directives or ())),
                                           count(fragment.selection_set, visiting | {name})))
                    inner = memo[name]
                else:
                    continue
                aliases, directives = aliases + inner[0], directives + inner[1]
            return aliases, directives

        own = len(node.directives or ()) + sum(len(v.directives or ()) for v in node.variable_definitions or ())
        aliases, directives = _add((0, own), count(node.selection_set, frozenset()))
        if aliases > self.limits.max_aliases:
            self.report_error(
                QueryLimitError("Query alias count", "aliases", aliases, self.limits.max_aliases, nodes=node)
            )
        if directives > self.limits.max_directives:
            self.report_error(
                QueryLimitError(
                    "Query directive count", "directives", directives, self.limits.max_directives, nodes=node
                )
            )
        return self.SKIP


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


class _RootFieldsRule(_LimitRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> object:
        seen: set[str] = set()

        def count(selection_set: SelectionSetNode) -> int:
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    total += 1
                elif isinstance(selection, InlineFragmentNode):
                    total += count(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                    seen.add(selection.name.value)
                    fragment = self._fragment(selection.name.value)
                    total += count(fragment.selection_set) if fragment else 0
            return total

        found = count(node.selection_set)
        if found > self.limits.max_root_fields:
            self.report_error(
                QueryLimitError(
                    "Query root field count", "rootFields", found, self.limits.max_root_fields, nodes=node
                )
            )
        return self.SKIP


@functools.cache
def limit_rules(limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> tuple[type[ASTValidationRule], ...]:
    """Validation rules for depth, aliases, root fields and directives.

    Usable with ``graphql.validate(..., rules=)`` or Strawberry's
    ``AddValidationRules``; :class:`QueryLimitsExtension` adds them itself.
    """
    return tuple(
        cast("type[ASTValidationRule]", type(base.__name__.lstrip("_"), (base,), {"limits": limits}))
        for base in (_DepthRule, _CountRule, _RootFieldsRule)
    )


# Validation itself is not linear (graphql-core's overlapping-fields rule compares same-named
# fields of a selection set pairwise), so what would make it expensive is refused first, on
# parse, as is a document the spec says must not run at all.
def check_document(document: DocumentNode, operation_name: str | None,
                   limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> None:
    """What must be refused before validation runs: in linear time, so a refusal is cheap.

    * several operations and no ``operationName`` (the spec's error; graphql-core's executor
      would otherwise be reached with the first one chosen by Strawberry);
    * a selection set wider than ``max_selections`` fields with fragments expanded: graphql-
      core's overlap validation is quadratic in it (1,200 same-named fields: ~0.5 s of CPU).
    """
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1 and operation_name is None:
        raise GraphQLError("Must provide operation name if query contains multiple operations.",
                           extensions={"code": VALIDATION_FAILED_CODE})
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    widths: dict[str, int] = {}

    def width(selection_set: SelectionSetNode, visiting: frozenset[str]) -> int:
        total = 0
        spread: set[str] = set()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1
            elif isinstance(selection, InlineFragmentNode):
                total += width(selection.selection_set, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in spread or name in visiting:
                    continue
                spread.add(name)
                if name not in widths:
                    widths[name] = width(fragment.selection_set, visiting | {name})
                total += widths[name]
            if total > limits.max_selections:
                raise QueryLimitError("Query selection set size", "selections", total,
                                      limits.max_selections, nodes=selection_set, lower_bound=True)
        return total

    stack: list[SelectionSetNode] = [d.selection_set for d in document.definitions
                                     if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)]
    while stack:
        selection_set = stack.pop()
        width(selection_set, frozenset())
        for selection in selection_set.selections:
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                stack.append(inner)
