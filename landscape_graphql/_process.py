"""Process-wide tuning for a server process (the CLI's and the benchmarks'), never for a library user."""

from __future__ import annotations

import gc

# Generation-0 collections every 50,000 net allocations instead of 700. A large response is
# tens of thousands of young objects that all stay alive until it is sent: at the default the
# collector runs through them again and again for nothing (measured 25-30 % of a 500-token
# page in-process). Older generations keep their default ratios.
GEN0_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Call once the app is built: what exists by then (modules, the schema) lives forever."""
    # Frozen objects are never traversed again by a collection, however full. No collection
    # first: it costs ~40 ms of start-up, for the little garbage that importing leaves.
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    gc.enable()  # the CLI disables it while importing
