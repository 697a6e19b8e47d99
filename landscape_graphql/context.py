"""What every resolver of one request shares: its database session, loaders and settings.

Built fresh for each request by the app; nothing in here outlives the request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry

from .db.engine import Landscape
from .db.session import DbSession
from .loaders import Loaders
from .settings import Settings

if TYPE_CHECKING:
    from .payloads import ByteBudget, PayloadStore


@dataclass
class Context:
    landscape: Landscape
    db: DbSession
    loaders: Loaders
    settings: Settings
    payload_store: PayloadStore | None = None
    payload_budget: ByteBudget | None = None
    request: Any = None
    # Runs the caller may see; None means all (see auth).
    allowed_runs: frozenset[str] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # False once a resolver answered something the response cache must not keep: a bulk
    # export page (MBs a script reads once, which would only push out the answers the cache
    # is for and, long-lived among the request's transient MBs, fragment the heap).
    cacheable: bool = True

    @classmethod
    def create(cls, landscape: Landscape, settings: Settings, **kwargs: Any) -> Context:
        db = DbSession(landscape, timeout_s=settings.request_timeout_s, tracer=kwargs.pop("tracer", None),
                       allowed_runs=kwargs.get("allowed_runs"))
        loaders = Loaders(db, kwargs.get("payload_store"), kwargs.get("payload_budget"))
        return cls(landscape=landscape, db=db, loaders=loaders, settings=settings, **kwargs)

    @contextlib.asynccontextmanager
    async def held_connections(self) -> AsyncIterator[None]:
        """Execution of the request: its statements share the connections it checks out (one
        per batch running at once, not one per statement), given back when it ends."""
        self.db.hold()
        try:
            yield
        finally:
            await self.db.release()


Info = strawberry.Info[Context, None]
