"""When the fast path's DataLoader batches are sent.

aiodataloader sends a batch a fixed number of loop turns after its first key: in time for the
tasks of stock execution, each resumed one turn after the future it awaits. A driver
(_completion.py) resumes its coroutines a turn later (the future's callback wakes the driver),
and its lineage walks await gathers, so with the fixed delay a walk's next level could be sent
just before another walk of the same request queued its keys for the same loader, one
statement more than stock execution sends. The gate sends a batch no sooner than
aiodataloader would, and not while a driver of the request still has a finished future to
resume from: what that resumption loads joins the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# aiodataloader's delay: its batch runs on the third loop turn after the first key is queued.
_TURNS = 2


class BatchGate:
    """One request's gate: its drivers register how to tell whether they have work waiting."""

    def __init__(self) -> None:
        self.busy: list[Callable[[], bool]] = []  # one per running driver
        self.waiting: list[tuple[int, Callable[[], None]]] = []  # (turns left, dispatch)
        self.scheduled = False

    def schedule(self, dispatch: Callable[[], None]) -> None:
        self.waiting.append((_TURNS, dispatch))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.turn)

    def turn(self) -> None:
        self.scheduled = False
        waiting = [(turns - 1, dispatch) for turns, dispatch in self.waiting]
        due = [dispatch for turns, dispatch in waiting if turns <= 0]
        if due and any(busy() for busy in self.busy):
            due = []
        self.waiting = [entry for entry in waiting if entry[0] > 0] if due else waiting
        for dispatch in due:
            dispatch()
        if self.waiting:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.turn)
