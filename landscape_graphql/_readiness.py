"""The readiness check, which must not wait behind the requests it is asked about.

A probe statement is the slowest thing /readyz could do under load. On SQLite through
SQLAlchemy's aiosqlite adapter it was four hops to the connection's thread and back (execute,
fetch, close, rollback), each waiting for the event loop's next turn and for the OS to run both
threads: with ten Run.dag requests and a busy machine, 45-80 ms at the median and 0.2-0.4 s at
p99 (BENCHMARKS.md, "Hardening"), while the loop itself answered in under 1 ms at the median.
And with every pool connection busy it would wait for one, up to the pool timeout.

Yet the requests' own statements already say whether the database answers (each records when,
in `Landscape.activity`, and when one found the database unavailable). So:

* a statement answered within `FRESH_S`, and none found the database unavailable since: ready,
  with no statement at all;
* every pool connection is busy and a statement answered within `RECENT_S` (none failed
  since): ready, rather than waiting for a connection;
* otherwise a probe: one prepared statement through `DbSession`, which on SQLite runs it on the
  loop's own thread (a short budget, no busy wait; see `DbSession._try_inline`), so an idle
  server's probe is no thread hop either, and which records its answer or fault like any other.

The file checks (deleted, replaced: `Landscape.check_file`) run on every probe whichever way it
answers.
"""

from __future__ import annotations

import time

from sqlalchemy import literal, select
from sqlalchemy.pool import QueuePool

from .db.engine import Landscape
from .db.session import DbSession, Prepared, prepare

FRESH_S = 1.0
RECENT_S = 5.0
# Bound on the probe statement itself (a PostgreSQL server that accepts but never answers).
PROBE_TIMEOUT_S = 5.0

_PROBES: dict[tuple[str, int], Prepared] = {}


def answered_within(landscape: Landscape, seconds: float) -> bool:
    """True when a statement answered within `seconds` and none found the database unavailable since."""
    activity = landscape.activity
    answered = activity.answered_at
    if answered is None or time.monotonic() - answered >= seconds:
        return False
    return activity.failed_at is None or activity.failed_at < answered


def busy_and_answering(landscape: Landscape) -> bool:
    """True when no pool connection is free and the database answered within RECENT_S."""
    pool = landscape.engine.pool
    if not isinstance(pool, QueuePool) or pool.checkedout() < pool.size():
        return False
    return answered_within(landscape, RECENT_S)


async def check_ready(landscape: Landscape) -> None:
    """Return when the database is known to answer; raise what stops it otherwise."""
    await landscape.check_file()
    if answered_within(landscape, FRESH_S) or busy_and_answering(landscape):
        return
    key = (landscape.dialect, landscape.epoch)
    probe = _PROBES.get(key)
    if probe is None:
        runs = landscape.tables.runs
        probe = _PROBES[key] = prepare(
            select(literal(1)).select_from(runs).limit(1), landscape.engine.dialect, ())
    await DbSession(landscape, timeout_s=PROBE_TIMEOUT_S).fetch(probe, {})
