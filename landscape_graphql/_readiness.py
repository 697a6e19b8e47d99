"""The readiness check, which must not wait behind the requests it is asked about.

A probe needs a pool connection, and when every connection is serving requests it would wait
for one up to the pool timeout (5 s): an orchestrator would then take a healthy, merely busy,
instance out of service. So when the pool is saturated and the database answered a statement
within `RECENT_S` (requests record when, in `Landscape.activity`), that answer is the
evidence and /readyz says ready at once; otherwise it probes, as before.
"""

from __future__ import annotations

import time
from typing import Any

RECENT_S = 5.0


def busy_and_answering(landscape: Any) -> bool:
    """True when no pool connection is free and the database answered within RECENT_S."""
    pool = landscape.engine.pool
    size = getattr(pool, "size", None)
    if size is None or pool.checkedout() < size():
        return False
    answered = landscape.activity.answered_at
    return answered is not None and time.monotonic() - answered < RECENT_S
