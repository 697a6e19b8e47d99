"""Bulk entries restate resolvers: each must still match the code it was written against."""

from __future__ import annotations

from typing import Any

from landscape_graphql.execution import bulk
from landscape_graphql.schema import build_schema


def _resolver(schema: Any, type_name: str, field_name: str) -> Any:
    field = schema.type_map[type_name].fields[field_name]
    return field.extensions["strawberry-definition"].base_resolver.wrapped_func


def test_every_entry_names_a_field_and_matches_its_resolver() -> None:
    schema = build_schema()._schema  # type: ignore[attr-defined]
    stale = []
    for (type_name, field_name), entry in sorted(bulk.entries().items()):
        resolver = _resolver(schema, type_name, field_name)
        if bulk.bulk_for(type_name, field_name, resolver) is None:
            stale.append(f"{entry.coordinate}: now {bulk.current_hash(entry, resolver)}")
    assert not stale, (
        "These resolvers changed since their bulk entry was written; review each entry in "
        "landscape_graphql/execution/bulk.py against the new code, then update EXPECTED "
        f"(python -m landscape_graphql.execution.bulk prints it): {stale}")
    assert set(bulk.EXPECTED) == {e.coordinate for e in bulk.entries().values()}


def test_a_changed_resolver_turns_its_entry_off() -> None:
    async def node_states(parent: Any, info: Any) -> Any:  # not the code the entry mirrors
        return await info.context.loaders.node_states_by_token_id.load(parent.row_id)

    schema = build_schema()._schema  # type: ignore[attr-defined]
    assert bulk.bulk_for("Token", "nodeStates", _resolver(schema, "Token", "nodeStates")) is not None
    assert bulk.bulk_for("Token", "nodeStates", node_states) is None
    assert bulk.bulk_for("Token", "noSuchField", node_states) is None
