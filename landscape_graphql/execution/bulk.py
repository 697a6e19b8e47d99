"""Relation fields resolved for a whole list of parents at once.

Most relation resolvers of the schema are one DataLoader `load` and, sometimes, a check or a
reshaping of what it returns (`Token.outcome` is the current one of the token's outcomes).
Called once per parent, each costs a coroutine, an Info, a future to park on and a wake-up:
~8 µs, which for 500 tokens x 3 relations per export page is most of the page. A `Bulk` entry
states the same thing declaratively: which loader, which key from the parent, what is done with
the value. The executor then calls `load` for every parent of the list itself and waits once;
DataLoader batching and caching are untouched, so the SQL is the same.

Each entry mirrors resolver code it does not own, so it carries the hash of that code's source
(the resolver and the helpers it calls). If the source changes, the entry is not used and the
field is resolved by calling its resolver, as before; `tests/execution/test_bulk.py` fails until
the entry is reviewed and its hash updated (`python -m landscape_graphql.execution.bulk` prints
the current hashes).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["SKIP", "Bulk", "bulk_for", "entries", "source_hash"]


class _Skip:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIP"


SKIP: Final = _Skip()
"""Returned by a key function where the resolver returns None without loading anything."""


@dataclass(frozen=True, slots=True)
class Bulk:
    type_name: str  # GraphQL type
    field_name: str  # GraphQL field
    loader: str  # attribute of the request's Loaders
    key: Callable[[Any], Any]  # parent -> loader key, or SKIP
    then: Callable[[Any, Any], Any] | None  # (parent, loaded value) -> field value; may raise
    helpers: tuple[Callable[..., Any], ...]  # code besides the resolver that this mirrors

    @property
    def coordinate(self) -> str:
        return f"{self.type_name}.{self.field_name}"


def source_hash(functions: Iterable[Callable[..., Any]]) -> str:
    digest = hashlib.sha256()
    for function in functions:
        digest.update(textwrap.dedent(inspect.getsource(function)).strip().encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def entries() -> dict[tuple[str, str], Bulk]:
    # Imported here: the schema imports this package to build itself.
    from ..db import records as R
    from ..resolvers import tokens as T
    from ..schema.enums import MatchedBy
    from ..schema.row_errors import MatchedValidationError

    def token_id(t: Any) -> Any:
        return t.token_id

    def explained_token_id(e: Any) -> Any:
        return e.token.token_id

    def parents(t: Any, links: Any) -> Any:
        return R.check_parent_links(t, links)

    def children(t: Any, found: Any) -> Any:
        return R.check_children(t, found)

    def current(_t: Any, outcomes: Any) -> Any:
        return R.current_outcome(outcomes)

    def batches(_t: Any, found: Any) -> Any:
        return [batch for _, _, batch in found]

    def matched(_parent: Any, found: Any) -> Any:
        return [MatchedValidationError(record=rec, matched_by=MatchedBy(by)) for _, by, rec in found]

    def on_token(then: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return lambda e, value: then(e.token, value)

    def guarded(attribute: str) -> Callable[[Any], Any]:
        def key(parent: Any) -> Any:
            value = getattr(parent, attribute)
            return SKIP if value is None else value
        return key

    def attr(name: str) -> Callable[[Any], Any]:
        def key(parent: Any) -> Any:
            return getattr(parent, name)
        return key

    def pair(first: str, second: str) -> Callable[[Any], Any]:
        def key(parent: Any) -> Any:
            return (getattr(parent, first), getattr(parent, second))
        return key

    table: list[Bulk] = [
        # Token
        Bulk("Token", "row", "row_by_id", attr("row_id"), None, ()),
        Bulk("Token", "run", "run_by_id", attr("run_id"), None, ()),
        Bulk("Token", "parents", "parent_links_by_token_id", token_id, parents, (T.parents,)),
        Bulk("Token", "children", "children_by_token_id", token_id, children, (T.children,)),
        Bulk("Token", "nodeStates", "node_states_by_token_id", token_id, None, (T.node_states,)),
        Bulk("Token", "calls", "calls_by_token_id", token_id, None, (T.calls,)),
        Bulk("Token", "routingEvents", "routing_events_by_token_id", token_id, None, (T.routing_events,)),
        Bulk("Token", "outcome", "outcomes_by_token_id", token_id, current, (T.outcome, T.outcomes)),
        Bulk("Token", "outcomes", "outcomes_by_token_id", token_id, None, (T.outcomes,)),
        Bulk("Token", "transformErrors", "transform_errors_by_token_id", token_id, None,
             (T.transform_errors,)),
        Bulk("Token", "memberOfBatches", "batches_by_member_token_id", token_id, batches,
             (T.member_of_batches,)),
        Bulk("Token", "artifacts", "artifacts_by_token_id", token_id, None, ()),
        # Explanation (the token is parent.token)
        Bulk("Explanation", "sourceRow", "row_by_id", lambda e: e.token.row_id, None, ()),
        Bulk("Explanation", "nodeStates", "node_states_by_token_id", explained_token_id, None,
             (T.node_states,)),
        Bulk("Explanation", "routingEvents", "routing_events_by_token_id", explained_token_id, None,
             (T.routing_events,)),
        Bulk("Explanation", "calls", "calls_by_token_id", explained_token_id, None, (T.calls,)),
        Bulk("Explanation", "parentTokens", "parent_links_by_token_id", explained_token_id,
             on_token(parents), (T.parents,)),
        Bulk("Explanation", "children", "children_by_token_id", explained_token_id, on_token(children),
             (T.children,)),
        Bulk("Explanation", "validationErrors", "validation_errors_by_row_id", lambda e: e.token.row_id,
             matched, ()),
        Bulk("Explanation", "transformErrors", "transform_errors_by_token_id", explained_token_id, None,
             (T.transform_errors,)),
        Bulk("Explanation", "outcome", "outcomes_by_token_id", explained_token_id, current,
             (T.outcome, T.outcomes)),
        Bulk("Explanation", "schedulerEvents", "scheduler_events_by_token_id", explained_token_id, None,
             ()),
        Bulk("Explanation", "artifacts", "artifacts_by_token_id", explained_token_id, None, ()),
        # Row
        Bulk("Row", "run", "run_by_id", attr("run_id"), None, ()),
        Bulk("Row", "sourceNode", "node_by_key", pair("run_id", "source_node_id"), None, ()),
        Bulk("Row", "tokens", "tokens_by_row_id", attr("row_id"), None, ()),
        Bulk("Row", "validationErrors", "validation_errors_by_row_id", attr("row_id"), matched, ()),
        # NodeState, RoutingEvent, Call
        Bulk("NodeState", "node", "node_by_key", pair("run_id", "node_id"), None, ()),
        Bulk("NodeState", "token", "token_by_id", attr("token_id"), None, ()),
        Bulk("NodeState", "calls", "calls_by_state_id", attr("state_id"), None, ()),
        Bulk("NodeState", "routingEvents", "routing_events_by_state_id", attr("state_id"), None, ()),
        Bulk("RoutingEvent", "edge", "edge_by_id", attr("edge_id"), None, ()),
        Bulk("RoutingEvent", "state", "node_state_by_id", attr("state_id"), None, ()),
        Bulk("Call", "state", "node_state_by_id", guarded("state_id"), None, ()),
        Bulk("Call", "operation", "operation_by_id", guarded("operation_id"), None, ()),
        # outcomes, batches, pipeline
        Bulk("TokenOutcome", "batch", "batch_by_id", guarded("batch_id"), None, ()),
        Bulk("Batch", "members", "members_by_batch_id", attr("batch_id"), None, ()),
        Bulk("Batch", "outputs", "outputs_by_batch_id", attr("batch_id"), None, ()),
        Bulk("Batch", "aggregationState", "node_state_by_id", guarded("aggregation_state_id"), None, ()),
        Bulk("Batch", "aggregationNode", "node_by_key", pair("run_id", "aggregation_node_id"), None, ()),
        Bulk("BatchMember", "token", "token_by_id", attr("token_id"), None, ()),
        Bulk("Run", "nodes", "nodes_by_run_id", attr("run_id"), None, ()),
        Bulk("Run", "edges", "edges_by_run_id", attr("run_id"), None, ()),
        Bulk("PipelineEdge", "fromNode", "node_by_key", pair("run_id", "from_node_id"), None, ()),
        Bulk("PipelineEdge", "toNode", "node_by_key", pair("run_id", "to_node_id"), None, ()),
        Bulk("Operation", "node", "node_by_key", pair("run_id", "node_id"), None, ()),
        Bulk("Operation", "calls", "calls_by_operation_id", attr("operation_id"), None, ()),
    ]
    return {(b.type_name, b.field_name): b for b in table}


# source_hash(resolver, *helpers) of the code each entry was written against.
EXPECTED: dict[str, str] = {
    "Batch.aggregationNode": "51bb6920611aacac",
    "Batch.aggregationState": "90e9f2bb63022d9a",
    "Batch.members": "808524d3c5b3d7ce",
    "Batch.outputs": "7f262fef99f8ceb4",
    "BatchMember.token": "4a03aa1159c80288",
    "Call.operation": "2e4eb8aa7c2dec37",
    "Call.state": "49028c3049711341",
    "Explanation.artifacts": "f2bc17280c5352a6",
    "Explanation.calls": "3d774b47a5751b15",
    "Explanation.children": "bbda6dea81989ab6",
    "Explanation.nodeStates": "18d1faff7a1449e0",
    "Explanation.outcome": "2099ee185af355f0",
    "Explanation.parentTokens": "14c373db5981c4b9",
    "Explanation.routingEvents": "2392792815fd856e",
    "Explanation.schedulerEvents": "c7341fbee271e388",
    "Explanation.sourceRow": "441fb4185dc2c1b5",
    "Explanation.transformErrors": "f1722dc30a665305",
    "Explanation.validationErrors": "c09b9d895e981e86",
    "NodeState.calls": "501e5fe6796956c0",
    "NodeState.node": "75ff487a28af32ed",
    "NodeState.routingEvents": "de38a81ea4dbdcca",
    "NodeState.token": "fc1106af3513a0ff",
    "Operation.calls": "8643eba376c5a987",
    "Operation.node": "c68e796f2b3d42c3",
    "PipelineEdge.fromNode": "3f9b58903ff2bc5c",
    "PipelineEdge.toNode": "6a632ff1d1565d69",
    "RoutingEvent.edge": "6aacd730f34d9646",
    "RoutingEvent.state": "9fa6698c30f9be52",
    "Row.run": "bf4df959f67e06f3",
    "Row.sourceNode": "02235160c6f578b1",
    "Row.tokens": "6589e282e79e108e",
    "Row.validationErrors": "07820df0648aedc9",
    "Run.edges": "39b4dbe09f8e3332",
    "Run.nodes": "868b272bc75fcd59",
    "Token.artifacts": "b1b979b732dd4012",
    "Token.calls": "a0eef1fba45a6b24",
    "Token.children": "46c27c2da34e7e80",
    "Token.memberOfBatches": "f2a656ccfa4be7d3",
    "Token.nodeStates": "1febf5a785076db7",
    "Token.outcome": "ffd6050d5df697ef",
    "Token.outcomes": "47e430c6dacbc43b",
    "Token.parents": "33dd24bcb28ac69e",
    "Token.routingEvents": "310517a930193256",
    "Token.row": "32c3b54b9d7acba2",
    "Token.run": "79cb587a74afe952",
    "Token.transformErrors": "875474b5a9353b8b",
    "TokenOutcome.batch": "661cf925b76b8c2d",
}


def current_hash(entry: Bulk, resolver: Callable[..., Any]) -> str:
    return source_hash((resolver, *entry.helpers))


@functools.lru_cache(maxsize=1024)
def bulk_for(type_name: str, field_name: str, resolver: Callable[..., Any]) -> Bulk | None:
    """The entry for a field whose resolver (and helpers) are still what it was written for.

    Cached: the schema's resolvers do not change while it runs (reading their source does not
    belong on a request's path)."""
    entry = entries().get((type_name, field_name))
    if entry is None:
        return None
    try:
        if current_hash(entry, resolver) != EXPECTED.get(entry.coordinate):
            return None
    except (OSError, TypeError):  # no source to compare: trust nothing
        return None
    return entry


def _print_hashes() -> None:  # pragma: no cover - a maintenance aid
    from ..schema import build_schema

    schema: Any = build_schema()._schema
    for (type_name, field_name), entry in sorted(entries().items()):
        field = schema.type_map[type_name].fields[field_name]
        resolver = field.extensions["strawberry-definition"].base_resolver.wrapped_func
        print(f'    "{entry.coordinate}": "{current_hash(entry, resolver)}",')


if __name__ == "__main__":  # pragma: no cover
    _print_hashes()
