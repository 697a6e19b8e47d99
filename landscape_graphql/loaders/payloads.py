"""Loader of payloads by (ref, recorded hash): one worker-thread hop per level of a query."""

from __future__ import annotations

from ..payloads import ByteBudget, Payload, PayloadStore
from ._base import Loader

PayloadKey = tuple[str | None, str | None]


class PayloadByRefLoader(Loader[PayloadKey, Payload]):
    """Loads are batched but not cached: every occurrence of a payload in the response carries
    its bytes, so each is charged to the response's byte budget (`read_many` still reads a ref
    that repeats in a batch only once). With a cache, 216 rows sharing one 5 MiB payload were
    charged 5 MiB and sent 216 times that."""

    def __init__(self, store: PayloadStore, budget: ByteBudget) -> None:
        super().__init__(cache=False)
        self.store = store
        self.budget = budget
        self.bytes_served = 0

    async def batch_load_fn(self, keys: list[PayloadKey]) -> list[Payload]:
        payloads = await self.store.read_many(keys, budget=self.budget)
        self.bytes_served += sum(len(p.data or b"") for p in payloads)
        return payloads
