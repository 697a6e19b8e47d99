"""Server settings, with the defaults the README documents."""

from __future__ import annotations

from dataclasses import dataclass, field

from .limits import DEFAULT_QUERY_LIMITS, QueryLimits


@dataclass(frozen=True, slots=True)
class Settings:
    # Query limits, page sizes and the traversal token budget live in one place.
    limits: QueryLimits = field(default_factory=lambda: DEFAULT_QUERY_LIMITS)
    # Recursive traversals: the deepest a caller may ask for.
    max_traversal_depth: int = 100
    request_timeout_s: float = 30.0
    # explainTokens(tokenIds:) batch bound
    max_explain_batch: int = 1_000
    introspection: bool = True
    # Breadth-first, plan-driven value completion (landscape_graphql/execution); False keeps
    # graphql-core's own, which gives the same responses more slowly.
    fast_execution: bool = True
    # A document already parsed and validated runs without Strawberry's per-request hooks
    # (landscape_graphql/_direct.py); False sends every request through `schema.execute`,
    # which gives the same responses (tests/test_direct_path.py).
    direct_path: bool = True

    @property
    def traversal_token_budget(self) -> int:
        return self.limits.traversal_token_budget
