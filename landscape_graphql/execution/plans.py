"""Selection plans: what completing one selection set on one object type takes, decided once.

graphql-core decides, for every field of every object it completes, which resolver to call,
whether arguments must be coerced, how the result is completed and serialised. For a list of
10,000 objects those decisions are the same 10,000 times. A plan makes them once per
(object type, selection set) of an operation: for each response key, whether the field is a
plain attribute (a Strawberry field without a resolver), `__typename`, or a resolver call,
its arguments when they do not depend on the object, and the fast coercer of a leaf.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.values import get_argument_values
from graphql.pyutils import Undefined
from graphql.type.introspection import TypeNameMetaFieldDef

from .._caches import PLAN_CACHE_BYTES, ByteLRU, node_weight
from .leaves import Coercer, fast_coercer
from .relations import Relation, relation_of

__all__ = ["PLAIN", "RESOLVE", "TYPENAME", "FieldPlan", "ObjectPlan", "build_plan", "shared_plan"]

TYPENAME = 0
PLAIN = 1
RESOLVE = 2

_STRAWBERRY_BACKREF = "strawberry-definition"


def _unplanned(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("a field plan calls only what its kind planned")


@dataclass(slots=True)
class FieldPlan:
    name: str  # the response key
    field_name: str
    kind: int  # TYPENAME, PLAIN or RESOLVE
    field_def: GraphQLField
    details: FieldDetailsList
    return_type: GraphQLOutputType
    nullable: bool
    nodes: list[Any]  # the field's AST nodes, for errors and infos
    # PLAIN: reads the attribute; `leaf` is the fast coercer of a (non-list) leaf, if any.
    getter: Callable[[Any], Any] = _unplanned
    leaf: Coercer | None = None
    is_leaf: bool = False
    # RESOLVE: the resolver, and its arguments when they are the same for every object
    # (`args` None means: coerce them per object, as graphql-core does, errors included).
    resolve: Callable[..., Any] = _unplanned
    args: dict[str, Any] | None = None
    # A Strawberry resolver taking only parent/root/self and info: called directly.
    direct: Callable[..., Any] | None = None
    direct_self: bool = False
    direct_parent: str | None = None
    direct_info: str | None = None
    strawberry_field: Any = None
    # The field's relation declaration: resolved for a whole list of parents at once.
    relation: Relation[Any, Any, Any] | None = None
    has_arguments: bool = False
    # A list of objects of one type ([T], [T!]!, ...): its item type and the object type.
    list_item_type: GraphQLOutputType | None = None
    list_object_type: GraphQLObjectType | None = None


@dataclass(slots=True)
class ObjectPlan:
    object_type: GraphQLObjectType
    fields: list[FieldPlan]
    # True when completing the object may leave work for later (a resolver field, or a field
    # whose value is an object or a list that might have one): such objects get a position.
    deferrable: bool
    # Only plain leaf fields (and __typename): the object completes in one loop.
    flat: bool
    # The fields that are not plain leaves (resolvers, object-valued attributes), in order.
    complex: list[FieldPlan] = field(default_factory=list)
    # The compiled builder of the plain leaves (builders.py), when they all have one.
    builder: Callable[[Any], dict[str, Any]] | None = None
    has_arguments: bool = False  # some field's arguments are coerced per request


def _default_resolver_is_getattr(strawberry_schema: Any) -> bool:
    config = getattr(strawberry_schema, "config", None)
    return getattr(config, "default_resolver", getattr) is getattr


def _direct_call(field: Any, strawberry_schema: Any) -> tuple[Callable[..., Any], bool, str | None, str | None] | None:
    """How to call a Strawberry field's resolver without Strawberry's per-call wrapper, or None.

    Only for the wrapper's trivial case: a resolver whose parameters are the reserved ones
    (self / parent / root / info), no field extensions (permissions are extensions), and no
    schema exception handlers; the wrapper then only builds an Info and passes it on.
    """
    resolver = getattr(field, "base_resolver", None)
    if resolver is None or field.extensions or field.arguments:
        return None
    converter = getattr(strawberry_schema, "schema_converter", None)
    if converter is None or getattr(converter, "_exception_handler_specs", None):
        return None
    func = getattr(resolver, "wrapped_func", None)
    if not callable(func):
        return None
    reserved = {p.name for p in (resolver.self_parameter, resolver.parent_parameter,
                                 resolver.root_parameter, resolver.info_parameter) if p is not None}
    if set(resolver.signature.parameters) - reserved:
        return None
    if resolver.root_parameter is not None and resolver.parent_parameter is not None:
        return None
    parent = resolver.parent_parameter or resolver.root_parameter
    info = resolver.info_parameter
    return (func, resolver.self_parameter is not None, parent.name if parent is not None else None,
            info.name if info is not None else None)


def build_plan(executor: Any, object_type: GraphQLObjectType, grouped: Any,
               strawberry_schema: Any) -> ObjectPlan:
    """The plan for `grouped` (response key -> field details) on `object_type`."""
    schema = executor.schema
    plain_ok = _default_resolver_is_getattr(strawberry_schema)
    fields: list[FieldPlan] = []
    deferrable = False
    flat = True
    for name, details in grouped.items():
        node = details[0].node
        nodes = [d.node for d in details]
        field_name = node.name.value
        field_def = schema.get_field(object_type, field_name)
        if field_def is None:
            continue  # graphql-core leaves the key out (Undefined)
        return_type = field_def.type
        nullable = not is_non_null_type(return_type)
        if field_def is TypeNameMetaFieldDef:
            fields.append(FieldPlan(name, field_name, TYPENAME, field_def, details, return_type, nullable, nodes))
            continue
        named = get_named_type(return_type)
        inner = return_type.of_type if not nullable else return_type
        is_leaf = is_leaf_type(inner)
        list_item_type = list_object_type = None
        if is_list_type(inner):
            item = inner.of_type
            item_named = item.of_type if is_non_null_type(item) else item
            if is_object_type(item_named):
                list_item_type, list_object_type = item, item_named
        resolve = field_def.resolve
        has_args = bool(field_def.args or node.arguments)
        if (plain_ok and not has_args and resolve is not None and getattr(resolve, "_is_default", False)
                and _STRAWBERRY_BACKREF in (field_def.extensions or {})):
            strawberry_field = field_def.extensions[_STRAWBERRY_BACKREF]
            plan = FieldPlan(name, field_name, PLAIN, field_def, details, return_type, nullable, nodes,
                             getter=operator.attrgetter(strawberry_field.python_name),
                             is_leaf=is_leaf, strawberry_field=strawberry_field,
                             list_item_type=list_item_type, list_object_type=list_object_type)
            if is_leaf:
                plan.leaf = fast_coercer(named)
            else:
                deferrable = True
                flat = False
            fields.append(plan)
            continue
        flat = False
        deferrable = True
        plan = FieldPlan(name, field_name, RESOLVE, field_def, details, return_type, nullable, nodes,
                         resolve=resolve or executor.field_resolver, is_leaf=is_leaf,
                         list_item_type=list_item_type, list_object_type=list_object_type)
        if has_args:
            plan.has_arguments = True
            plan.args = _arguments(executor, plan)
        else:
            plan.args = {}
            strawberry_field = (field_def.extensions or {}).get(_STRAWBERRY_BACKREF)
            direct = _direct_call(strawberry_field, strawberry_schema) if strawberry_field else None
            if direct is not None:
                plan.direct, plan.direct_self, plan.direct_parent, plan.direct_info = direct
                plan.strawberry_field = strawberry_field
                plan.relation = relation_of(getattr(strawberry_field, "metadata", None))
        if is_leaf and not is_list_type(inner):
            plan.leaf = fast_coercer(named)
        fields.append(plan)
    object_plan = ObjectPlan(object_type, fields, deferrable, flat and all(f.kind != RESOLVE for f in fields),
                             [f for f in fields if f.kind != TYPENAME and not (f.kind == PLAIN and f.is_leaf)],
                             has_arguments=any(f.has_arguments for f in fields))
    from .builders import compile_builder  # builders import this module
    object_plan.builder = compile_builder(object_plan)
    return object_plan


def is_undefined(value: Any) -> bool:
    return value is Undefined


# Plans shared by requests. The parse cache hands every request of the same query text the same
# AST, so (object type, the AST nodes of each response key) names the same plan; the entry keeps
# its nodes alive, so their ids cannot be reused while it is cached. Arguments are the only part
# that depends on the request (its variables): they are coerced again for each request. Bounded
# by bytes: a plan keeps its document alive, weighed by the document's text (_caches.py).
_SHARED: ByteLRU[ObjectPlan] = ByteLRU(PLAN_CACHE_BYTES)


def shared_plan(executor: Any, object_type: GraphQLObjectType, grouped: Any,
                strawberry_schema: Any) -> ObjectPlan:
    key_parts = []
    weight: int | None = 0
    for name, details in grouped.items():
        if any(d.fragment_variable_values is not None for d in details):
            return build_plan(executor, object_type, grouped, strawberry_schema)
        key_parts.append((name, tuple(id(d.node) for d in details)))
        if weight is not None:
            weight = node_weight(details[0].node)
    if weight is None:  # a document too long to cache: planned for this request only
        return build_plan(executor, object_type, grouped, strawberry_schema)
    key = (object_type, tuple(key_parts))
    plan = _SHARED.get(key)
    if plan is None:
        plan = build_plan(executor, object_type, grouped, strawberry_schema)
        _SHARED.put(key, plan, weight)
    if not plan.has_arguments:
        return plan
    return _with_arguments(plan, executor)


def _with_arguments(plan: ObjectPlan, executor: Any) -> ObjectPlan:
    """A copy of a shared plan with its fields' arguments coerced for this request."""
    fields = []
    for shared in plan.fields:
        if shared.kind == RESOLVE and shared.has_arguments:
            shared = dataclasses.replace(shared, args=_arguments(executor, shared))
        fields.append(shared)
    return dataclasses.replace(plan, fields=fields, complex=[
        f for f in fields if f.kind != TYPENAME and not (f.kind == PLAIN and f.is_leaf)])


def _arguments(executor: Any, field: FieldPlan) -> dict[str, Any] | None:
    details = field.details[0]
    try:
        return get_argument_values(field.field_def, details.node, executor.variable_values,
                                   details.fragment_variable_values, executor.hide_suggestions)
    except GraphQLError:
        return None  # raised again for each object, where graphql-core raises it
