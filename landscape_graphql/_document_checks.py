"""Checks of a parsed document that must come before validation, each in linear time.

Validation itself is not linear (graphql-core's overlapping-fields rule compares same-named
fields of a selection set pairwise), so what would make it expensive is refused first, as is a
document the spec says must not run at all. Called by `limits.QueryLimitsExtension` on parse.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from .errors import VALIDATION_FAILED_CODE
from .limits import DEFAULT_QUERY_LIMITS, QueryLimitError, QueryLimits, parse_with_limits

# Longer query texts are parsed on a worker thread. Parsing is pure Python, so the GIL is still
# shared, but the event loop gets its turn every switch interval (5 ms) instead of waiting for
# the whole parse (~0.1 s for a dense 16 KB document on a busy machine): /livez, /readyz and
# small requests keep answering while large documents come in.
PARSE_OFF_LOOP_CHARS = 4096
# One parsing thread: twenty threads parsing at once would each take a turn at the GIL before
# the loop's thread got its next one; with one, the loop gets every other turn.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="landscape-parse")


async def parse_off_loop(query: str, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> DocumentNode | None:
    """The document of a long query text, parsed and checked off the loop; None if it fails
    (the query-limits extension then parses it again and reports why)."""
    if len(query) <= PARSE_OFF_LOOP_CHARS:
        return None

    def parse_and_check() -> DocumentNode | None:
        try:
            return parse_with_limits(query, limits)
        except GraphQLError:
            return None

    return await asyncio.get_running_loop().run_in_executor(_PARSER, parse_and_check)


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
