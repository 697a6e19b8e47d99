"""Relation fields are declared once (schema/_relations.py): the resolver Strawberry calls and
the executor's fast path run the same `Relation`, which the planner finds in the field."""

from __future__ import annotations

from typing import Any

from landscape_graphql.execution.plans import _direct_call
from landscape_graphql.execution.relations import RELATION, Relation, relation_of
from landscape_graphql.schema import build_schema

# The relation fields of the schema whose lists an export or an explain() walks.
DECLARED = {
    "Token": {"row", "run", "parents", "children", "nodeStates", "calls", "routingEvents", "outcome",
              "outcomes", "transformErrors", "memberOfBatches", "artifacts"},
    "Explanation": {"sourceRow", "nodeStates", "routingEvents", "calls", "parentTokens", "children",
                    "validationErrors", "transformErrors", "outcome", "schedulerEvents", "artifacts"},
    "Row": {"run", "sourceNode", "tokens", "validationErrors"},
    "NodeState": {"node", "token", "calls", "routingEvents"},
    "RoutingEvent": {"edge", "state"},
    "Call": {"state", "operation"},
    "TokenOutcome": {"batch"},
    "Batch": {"members", "outputs", "aggregationState", "aggregationNode"},
    "BatchMember": {"token"},
    "Run": {"nodes", "edges", "checkpoints", "preflightResults"},
    "PipelineEdge": {"fromNode", "toNode"},
    "Operation": {"node", "calls"},
}


SCHEMA = build_schema()


def _fields(type_name: str) -> dict[str, Any]:
    schema: Any = SCHEMA._schema  # type: ignore[attr-defined]
    return dict(schema.type_map[type_name].fields)


def test_each_relation_field_carries_its_declaration_and_the_planner_can_use_it() -> None:
    missing = []
    for type_name, names in DECLARED.items():
        fields = _fields(type_name)
        for name in sorted(names):
            definition = fields[name].extensions["strawberry-definition"]
            # The planner takes the declaration where it may call the resolver directly.
            if relation_of(definition.metadata) is None or _direct_call(definition, SCHEMA) is None:
                missing.append(f"{type_name}.{name}")
    assert not missing, missing


def test_a_field_with_arguments_or_no_declaration_has_none() -> None:
    fields = _fields("Token")
    for name in ("ancestors", "producedByBatch", "data", "tokenId"):
        assert relation_of(fields[name].extensions["strawberry-definition"].metadata) is None, name
    assert relation_of({RELATION: "not a relation"}) is None
    assert relation_of(None) is None


class _Loader:
    def __init__(self) -> None:
        self.keys: list[Any] = []

    def load(self, key: Any) -> Any:
        import asyncio
        self.keys.append(key)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result([key, key])
        return future


class _Loaders:
    def __init__(self) -> None:
        self.things_by_id = _Loader()


async def test_the_resolver_runs_key_load_then() -> None:
    relation: Relation[dict[str, Any], str, list[str]] = Relation(
        "things_by_id", lambda parent: parent.get("id"), lambda parent, found: (parent["id"], len(found)))
    loaders = _Loaders()
    assert await relation.resolve({"id": "t1"}, loaders) == ("t1", 2)
    # No key: null, and nothing is loaded.
    assert await relation.resolve({}, loaders) is None
    assert loaders.things_by_id.keys == ["t1"]
