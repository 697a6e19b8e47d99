"""The execution path: graphql-core's executor with breadth-first, plan-driven completion.

`executor_class(settings)` is what the schema passes to Strawberry as its execution context
class; `Settings(fast_execution=False)` keeps graphql-core's own completion (the stock path
the differential tests compare against).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .executor import FastExecutor

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["FastExecutor", "executor_class"]


def executor_class(settings: Settings) -> type[FastExecutor] | None:
    return FastExecutor if settings.fast_execution else None
