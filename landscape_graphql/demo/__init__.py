"""Deterministic demo Landscape databases: `generate(out, epoch=…, rows=…, seed=…, shape=…)`.

The public names are loaded on first use, so the generator's helper processes, which import
only `landscape_graphql.demo._sinks`, start without loading SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .generator import SHAPES, GenerationReport, generate

__all__ = ["SHAPES", "GenerationReport", "generate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import generator

        return getattr(generator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
