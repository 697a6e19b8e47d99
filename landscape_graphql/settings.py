"""Server settings, with the defaults the README documents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    # Connections without first/last return this many; more than max_page_size is refused.
    default_page_size: int = 50
    max_page_size: int = 500
    # Recursive traversals: the depth a caller gets without asking, the deepest allowed, and the
    # most tokens one request may visit across all its traversals.
    default_traversal_depth: int = 10
    max_traversal_depth: int = 100
    traversal_token_budget: int = 10_000
    request_timeout_s: float = 30.0
    # explain(tokenIds:) batch bound
    max_explain_batch: int = 1_000
