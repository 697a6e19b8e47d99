"""DataLoader bases: a loader is one relation looked up by one key, built fresh per request.

A batch is one statement for the whole key set (see db/_keys.py). If the data of a batch breaks
an integrity rule, the batch is retried key by key so that only the keys whose records are bad
fail and every other object in the response still resolves; healthy data never pays for this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, cast

import aiodataloader
from aiodataloader import DataLoader

from ..db.session import DbSession
from ..errors import AuditIntegrityError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class BatchGate(Protocol):
    """Decides when a queued batch is sent (the fast executor's, see execution/_gate.py)."""

    def schedule(self, dispatch: Callable[[], None]) -> None: ...


_GATE: ContextVar[BatchGate | None] = ContextVar("landscape_batch_gate", default=None)


@contextmanager
def batch_gate(gate: BatchGate) -> Iterator[None]:
    """Loads started in this context (task) queue their batch with `gate`, not on a timer."""
    token = _GATE.set(gate)
    try:
        yield
    finally:
        # A coroutine closed by the garbage collector exits in another context.
        with suppress(ValueError):
            _GATE.reset(token)


class Loader(DataLoader[K, V]):
    """A DataLoader whose `load` and `load_many` are typed by its key and value types.

    aiodataloader sends a batch a fixed number of loop turns after its first key is queued.
    Under a `batch_gate` the gate sends it instead, no sooner, and later if the code that
    could still add keys has not run yet.
    """

    def do_resolve_reject(self, key: K, future: asyncio.Future[V]) -> None:
        gate = _GATE.get()
        if gate is None or not self.batch:
            super().do_resolve_reject(key, future)
            return
        self._queue.append(aiodataloader.Loader(key=key, future=future))
        if len(self._queue) == 1:
            gate.schedule(self._dispatch_queued)

    def _dispatch_queued(self) -> None:
        if self._queue:
            aiodataloader.dispatch_queue(self)


class _KeyedLoader(Loader[K, V]):
    def __init__(self, db: DbSession) -> None:
        super().__init__()
        self.db = db

    async def fetch(self, keys: Sequence[K]) -> Sequence[Any]:
        raise NotImplementedError

    def assemble(self, keys: Sequence[K], fetched: Sequence[Any]) -> list[V]:
        raise NotImplementedError

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        # An Exception in the list is that key's error (aiodataloader's annotation omits it).
        try:
            return list(self.assemble(keys, await self.fetch(keys)))
        except AuditIntegrityError as batch_error:
            if len(keys) == 1:
                return cast("list[V]", [batch_error])
        results: list[V | Exception] = []
        for key in keys:
            try:
                results.extend(self.assemble([key], await self.fetch([key])))
            except AuditIntegrityError as error:
                results.append(error)
        return cast("list[V]", results)


class OneByKey(_KeyedLoader[K, V | None]):
    """key -> the record with that key, or None."""

    key_of: Callable[[Any], K]

    def assemble(self, keys: Sequence[K], fetched: Sequence[Any]) -> list[V | None]:
        by_key = {type(self).key_of(record): record for record in fetched}
        return [by_key.get(key) for key in keys]


class ManyByKey(_KeyedLoader[K, list[V]]):
    """key -> the ordered list of records related to it.

    `fetch` returns records carrying their owner key (`key_of`), or (key, record) pairs when
    `key_of` is not set, already in the order the list must have.
    """

    key_of: Callable[[Any], K] | None = None

    def assemble(self, keys: Sequence[K], fetched: Sequence[Any]) -> list[list[V]]:
        grouped: dict[K, list[V]] = {key: [] for key in keys}
        key_of = type(self).key_of
        for item in fetched:
            if key_of is None:
                owner, record = item[0], item[-1]
            else:
                owner, record = key_of(item), item
            bucket = grouped.get(owner)
            if bucket is not None:
                bucket.append(record)
        return [grouped[key] for key in keys]


def fetcher(query: Callable[[DbSession, Sequence[K]], Awaitable[Sequence[Any]]]) -> Any:
    """Declare which query a loader runs: `fetch = fetcher(queries.tokens_by_id)`."""

    async def fetch(self: _KeyedLoader[K, Any], keys: Sequence[K]) -> Sequence[Any]:
        return await query(self.db, keys)

    return fetch
