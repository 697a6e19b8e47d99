"""Query limits, all enforced before any resolver (and so any SQL) runs.

Static limits (depth, aliases, root fields, directives) are graphql-core
validation rules built by :func:`limit_rules`.  The token limit is applied while
parsing and the node budget after validation, both by
:class:`QueryLimitsExtension`, which also reports ``extensions.landscape.
estimatedNodes`` on every response whose document parsed.

Node budget, modelled on GitHub's GraphQL API.  A *sized* field yields:

* a connection (declares ``first``/``last``): ``first``/``last``, or
  ``default_page_size`` when neither is given;
* a traversal (declares ``maxDepth``): ``min(traversal_token_budget,
  traversal_fanout ** maxDepth)``, the whole budget when the depth is unbounded;
* a list looked up by ids (returns a list, takes a list argument): the number of
  ids.  A field that is several of these takes the smallest.

Lists of objects inside a sized field's wrapper (``edges``, ``nodes``, a lineage
graph's ``tokens``) are its items and add nothing; any other list of objects
counts as ``unpaginated_list_size``; a root field returning one object counts 1.
Each counted field contributes its size times the sizes of the fields enclosing
it, and the estimate is the sum over the operation.  Fragments are expanded and
``@skip``/``@include`` honoured with the request's variables.  Raising any page
size, depth or id count never lowers the estimate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import orjson
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Lexer,
    NamedTypeNode,
    Node,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
    get_named_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
    is_object_type,
    parse,
    type_from_ast,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from graphql.type.definition import GraphQLInterfaceType, get_nullable_type
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from ._caches import (
    ESTIMATE_CACHE_BYTES,
    MAX_CACHED_CHARS,
    PARSE_CACHE_BYTES,
    ByteLRU,
    node_weight,
    text_weight,
)
from .error_masking import ClientFacingError

__all__ = [
    "DEFAULT_QUERY_LIMITS",
    "MAX_BODY_BYTES",
    "QUERY_LIMIT_CODE",
    "BodySizeLimitMiddleware",
    "PageSizeError",
    "QueryLimitError",
    "QueryLimits",
    "QueryLimitsExtension",
    "effective_page_size",
    "estimate_nodes",
    "limit_rules",
    "parse_with_limits",
]

QUERY_LIMIT_CODE = "QUERY_LIMIT"
MAX_BODY_BYTES = 1024 * 1024


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
    max_body_bytes: int = MAX_BODY_BYTES
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
    """The same page-size refusal, raised from a resolver (see effective_page_size)."""

    code = QUERY_LIMIT_CODE

    def __init__(self, found: int, maximum: int, argument: str) -> None:
        super().__init__(
            _limit_message("Page size", "pageSize", found, maximum, False),
            extensions=_limit_extensions("pageSize", found, maximum, {"argument": argument}),
        )


def effective_page_size(
    first: int | None, last: int | None, limits: QueryLimits = DEFAULT_QUERY_LIMITS
) -> int:
    """The number of rows a connection resolver should fetch.

    The extension already refuses oversized pages before execution; this is the
    resolver-side guard for schemas or callers that bypass it.
    """
    if first is not None and last is not None:
        raise ClientFacingError("Pass either `first` or `last`, not both", code="BAD_USER_INPUT")
    requested, argument = (first, "first") if first is not None else (last, "last")
    if requested is None:
        return limits.default_page_size
    if requested < 0:
        raise ClientFacingError(f"`{argument}` must not be negative", code="BAD_USER_INPUT")
    if requested > limits.max_page_size:
        raise PageSizeError(requested, limits.max_page_size, argument)
    return requested


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


# ---------------------------------------------------------------- node budget


# Where a selection set sits: at the operation root; directly inside a sized
# wrapper (so its lists are the wrapper's items); or anywhere else.
_Mode = Literal["root", "items", "plain"]


class _Estimator:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: VariableValues | None,
        limits: QueryLimits,
        check_page_sizes: bool,
    ) -> None:
        self.schema, self.variables, self.limits = schema, variables, limits
        self.check_page_sizes = check_page_sizes
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        # Cost is linear in the enclosing multiplier, so a fragment's cost per
        # unit can be memoised: exponential fragment fan-out stays linear.
        self.memo: dict[tuple[str, _Mode], int] = {}
        self.visiting: set[str] = set()

    def included(self, node: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> bool:
        try:
            skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
            include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        except GraphQLError:
            return True  # unresolvable condition: count it, to stay an upper bound
        return not (skip and skip.get("if") is True) and not (include and include.get("if") is False)

    def field_def(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is self.schema.query_type and name in ("__schema", "__type"):
            return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field: GraphQLField | None = parent.fields.get(name)
            return field
        return None

    def traversal_factor(self, depth: int | None) -> int:
        budget, fanout = self.limits.traversal_token_budget, self.limits.traversal_fanout
        if depth is None:
            return budget
        # Multiply step by step instead of fanout ** depth: maxDepth is client input.
        factor = 1
        for _ in range(max(depth, 0)):
            factor *= fanout
            if factor >= budget:
                return budget
        return factor

    def size(self, field_def: GraphQLField, node: FieldNode, coordinate: str) -> int | None:
        """Items a sized field yields per parent; None when the field is not sized."""
        is_connection = "first" in field_def.args or "last" in field_def.args
        depth_arg = self.limits.traversal_depth_argument
        is_traversal = depth_arg in field_def.args
        id_lists = (
            [name for name, arg in field_def.args.items() if is_list_type(get_nullable_type(arg.type))]
            if is_list_type(get_nullable_type(field_def.type))
            else []
        )
        if not (is_connection or is_traversal or id_lists):
            return None
        try:
            args = get_argument_values(field_def, node, self.variables)
        except GraphQLError:
            args = {}
        sizes: list[int] = []
        if is_connection:
            requested = [(a, args[a]) for a in ("first", "last") if isinstance(args.get(a), int)]
            maximum = self.limits.page_size_limit(coordinate)
            for argument, value in requested:
                if self.check_page_sizes and value > maximum:
                    raise QueryLimitError(
                        "Page size",
                        "pageSize",
                        value,
                        maximum,
                        nodes=node,
                        details={"argument": argument},
                    )
            sizes.append(max((max(v, 0) for _, v in requested), default=self.limits.default_page_size))
        if is_traversal:
            depth = args.get(depth_arg)
            sizes.append(self.traversal_factor(depth if isinstance(depth, int) else None))
        if id_lists:
            sizes.append(max((len(args[a]) for a in id_lists if isinstance(args.get(a), list)), default=0))
        return min(sizes)

    def fragment_cost(self, name: str, mode: _Mode) -> int:
        key = (name, mode)
        if key in self.memo:
            return self.memo[key]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return 0
        self.visiting.add(name)
        parent = type_from_ast(self.schema, fragment.type_condition)
        cost = self.cost(fragment.selection_set, parent, mode)
        self.visiting.discard(name)
        self.memo[key] = cost
        return cost

    def cost(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, mode: _Mode) -> int:
        total = 0
        for selection in selection_set.selections:
            if not isinstance(selection, FieldNode | InlineFragmentNode | FragmentSpreadNode):
                continue
            if not self.included(selection):
                continue
            if isinstance(selection, FragmentSpreadNode):
                total += self.fragment_cost(selection.name.value, mode)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = type_from_ast(self.schema, condition) if condition else parent
                total += self.cost(selection.selection_set, inner, mode)
                continue
            field_def = self.field_def(parent, selection.name.value)
            if field_def is None:
                continue
            coordinate = f"{parent.name}.{selection.name.value}" if parent is not None else ""
            if coordinate in self.limits.whole_run_fields:
                total += self.limits.whole_run_nodes
            named = get_named_type(field_def.type)
            if not is_composite_type(named):
                continue
            is_list = is_list_type(get_nullable_type(field_def.type))
            size = self.size(field_def, selection, coordinate)
            child_mode: _Mode
            if size is not None:
                # A sized field returning a wrapper object (a connection, a lineage
                # graph): the lists directly inside it are its items, already counted.
                own, factor, child_mode = size, size, "plain" if is_list else "items"
            elif is_list and mode == "items":
                own, factor, child_mode = 0, 1, "plain"
            elif is_list:
                own = factor = self.limits.unpaginated_list_size
                child_mode = "plain"
            else:
                own, factor, child_mode = (1 if mode == "root" else 0), 1, "plain"
            children = self.cost(selection.selection_set, named, child_mode) if selection.selection_set else 0
            total += own + factor * children
        return total


def _graphql_schema(schema: GraphQLSchema | Any) -> GraphQLSchema:
    if isinstance(schema, GraphQLSchema):
        return schema
    core = getattr(schema, "_schema", None)  # a strawberry.Schema
    if not isinstance(core, GraphQLSchema):
        raise TypeError(f"Expected a GraphQLSchema or strawberry.Schema, got {type(schema).__name__}")
    return core


def _estimate(
    document: DocumentNode,
    schema: GraphQLSchema,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    limits: QueryLimits,
    check_page_sizes: bool,
) -> int:
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    coerced = get_variable_values(schema, operation.variable_definitions or (), dict(variables or {}))
    # Bad variables fail execution later with their own error; estimate with defaults meanwhile.
    values = coerced if isinstance(coerced, VariableValues) else None
    estimator = _Estimator(schema, document, values, limits, check_page_sizes)
    root = schema.get_root_type(operation.operation)
    if not is_object_type(root):
        return 0
    return estimator.cost(operation.selection_set, root, "root")


def _coerces(document: DocumentNode, schema: GraphQLSchema, variables: Mapping[str, Any] | None,
             operation_name: str | None) -> bool:
    operation = get_operation_ast(document, operation_name)
    return operation is not None and isinstance(
        get_variable_values(schema, operation.variable_definitions or (), dict(variables or {})), VariableValues)


# Estimates of recent (document, variables) pairs: a client repeating a query (a viewer, an
# export paging through a run, a load balancer's probe) pays the walk once. The parse cache
# hands back the same DocumentNode for the same text, so its identity is the key (kept alive in
# the entry, so an id is never reused while cached). Bounded by bytes: no request can grow it.
_estimates: ByteLRU[tuple[DocumentNode, int]] = ByteLRU(ESTIMATE_CACHE_BYTES)


def _sizing_variables(document: DocumentNode, variables: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The variables an estimate can depend on: all but those declared String or ID.

    A size comes from Int arguments (first, last, maxDepth), Boolean conditions (@skip,
    @include) and the length of list arguments; a String or ID variable is never any of those
    (in a list literal it is one item whatever its value). So requests that differ only in ids,
    the usual case (a viewer, a client looking up token after token), share one estimate.
    """
    if not variables:
        return {}
    opaque = {
        definition.variable.name.value
        for operation in document.definitions if isinstance(operation, OperationDefinitionNode)
        for definition in operation.variable_definitions or ()
        if isinstance(nullable := definition.type.type if isinstance(definition.type, NonNullTypeNode)
                      else definition.type, NamedTypeNode) and nullable.name.value in ("String", "ID")
    }
    return {name: value for name, value in variables.items() if name not in opaque}


def _cached_estimate(document: DocumentNode, schema: GraphQLSchema, variables: Mapping[str, Any] | None,
                     operation_name: str | None, limits: QueryLimits) -> int:
    weight = node_weight(document)
    try:
        frozen = orjson.dumps(_sizing_variables(document, variables), option=orjson.OPT_SORT_KEYS)
    except TypeError:  # values no JSON client could send (in-process callers): no caching
        weight = None
    if weight is None:
        return _estimate(document, schema, variables, operation_name, limits, True)
    key = (id(document), id(schema), operation_name, frozen, limits)
    hit = _estimates.get(key)
    if hit is not None and hit[0] is document:
        return hit[1]
    # A limit it breaks raises here, and nothing is cached: the next try walks again. Nor is
    # an estimate made on defaults because the variables did not coerce: keyed by the sizing
    # variables alone, it would stand for valid requests with the same sizes.
    found = _estimate(document, schema, variables, operation_name, limits, True)
    if not _coerces(document, schema, variables, operation_name):
        return found
    _estimates.put(key, (document, found), weight + len(frozen))
    return found


def estimate_nodes(
    document: DocumentNode,
    schema: GraphQLSchema | Any,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    limits: QueryLimits = DEFAULT_QUERY_LIMITS,
) -> int:
    """Upper-bound node count of the operation, as described in the module docstring."""
    return _estimate(document, _graphql_schema(schema), variables, operation_name, limits, False)


# ---------------------------------------------------------------- strawberry


class QueryLimitsExtension(SchemaExtension):
    """Applies every query limit before execution and reports the estimate.

    Register with ``QueryLimitsExtension.factory(limits)``, before any
    ``ParserCache`` (which parses unconditionally; this extension already caches
    parsed documents, so ParserCache can simply be dropped).  The estimate goes to
    ``execution_context.extensions_results["landscape"]["estimatedNodes"]``,
    merged with anything else stored under ``"landscape"``.
    """

    def __init__(
        self,
        *,
        limits: QueryLimits = DEFAULT_QUERY_LIMITS,
        execution_context: ExecutionContext | None = None,
    ) -> None:
        self.limits = limits
        if execution_context is not None:
            self.execution_context = execution_context

    @classmethod
    def factory(cls, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> Callable[[], QueryLimitsExtension]:
        return functools.partial(cls, limits=limits)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *limit_rules(self.limits))
        # Bounds any other parser in the chain too (Strawberry's own, ParserCache),
        # should one run before on_parse below.
        context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # A QueryLimitError raised here ends the request before any other parse
        # and becomes the response's only error.
        if context.graphql_document is None and context.query:
            # The app may have parsed a long text off the loop already (_document_checks).
            extras = getattr(context.context, "extras", None)
            parsed = extras.get("parsed") if isinstance(extras, dict) else None
            if parsed is not None and parsed[0] is context.query:
                context.graphql_document = parsed[1]
            else:
                context.graphql_document = parse_with_limits(context.query, self.limits)
        if context.graphql_document is not None:
            # The name the client gave: `operation_name` falls back to the first operation's.
            from ._document_checks import check_document
            check_document(context.graphql_document, context._provided_operation_name, self.limits)
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            return
        found = _cached_estimate(
            context.graphql_document,
            _graphql_schema(context.schema),
            context.variables,
            context.operation_name,
            self.limits,
        )
        landscape = context.extensions_results.setdefault("landscape", {})
        landscape["estimatedNodes"] = found
        if found > self.limits.max_nodes:
            raise QueryLimitError("Query estimated node count", "nodes", found, self.limits.max_nodes)


# ---------------------------------------------------------------- HTTP body


class BodySizeLimitMiddleware:
    """Pure ASGI middleware answering 413 for bodies over ``max_bytes``.

    A declared Content-Length over the limit is refused without reading; a
    chunked body is buffered up to the limit and then replayed to the app, so the
    app never sees a partial body and never holds more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, found: int, lower_bound: bool
    ) -> None:
        message = _limit_message("Request body size", "bodyBytes", found, self.max_bytes, lower_bound)
        payload = {
            "errors": [
                {
                    "message": message,
                    "extensions": _limit_extensions("bodyBytes", found, self.max_bytes, None),
                }
            ]
        }
        await JSONResponse(payload, status_code=413)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, int(declared), False)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away before sending its body
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, size, True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
