"""The node budget: an upper bound of the objects an operation can return, before it runs.

Modelled on GitHub's GraphQL API.  A *sized* field yields:

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

Called by `limits_extension.QueryLimitsExtension` after validation; a page over `max_page_size` met on the
way is refused with `limits.check_page_size`'s error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from graphql import (
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
    InlineFragmentNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
    is_object_type,
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

from ._caches import ESTIMATE_CACHE_BYTES, ByteLRU, compact, node_weight
from .limits import DEFAULT_QUERY_LIMITS, PageSizeError, QueryLimitError, QueryLimits, check_page_size

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
            if self.check_page_sizes:
                try:
                    given = dict(requested)
                    check_page_size(given.get("first"), given.get("last"), self.limits, coordinate)
                except PageSizeError as refused:
                    # The same refusal, located in the document: before execution it is the answer.
                    raise QueryLimitError("Page size", "pageSize", refused.found, refused.maximum, nodes=node,
                                          details={"argument": refused.argument}) from None
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


def graphql_schema(schema: GraphQLSchema | Any) -> GraphQLSchema:
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


def cached_estimate(document: DocumentNode, schema: GraphQLSchema, variables: Mapping[str, Any] | None,
                     operation_name: str | None, limits: QueryLimits) -> int:
    weight = node_weight(document)
    try:
        frozen = compact(orjson.dumps(_sizing_variables(document, variables), option=orjson.OPT_SORT_KEYS))
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
    return _estimate(document, graphql_schema(schema), variables, operation_name, limits, False)
