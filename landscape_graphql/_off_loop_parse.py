"""Long query texts parsed (with the document limits) on a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from graphql import DocumentNode, GraphQLError

from .limits import DEFAULT_QUERY_LIMITS, QueryLimits, parse_with_limits

# Longer query texts are parsed on a worker thread. Parsing is pure Python, so the GIL is still
# shared, but the event loop gets its turn every switch interval (5 ms) instead of waiting for
# the whole parse (~0.1 s for a dense 16 KB document on a busy machine): /livez, /readyz and
# small requests keep answering while large documents come in.
PARSE_OFF_LOOP_CHARS = 4096
# One parsing thread: twenty threads parsing at once would each take a turn at the GIL before
# the loop's thread got its next one; with one, the loop gets every other turn.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="landscape-parse")


async def parse_off_loop(query: str, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> DocumentNode | None:
    """The document of a long query text, parsed and checked off the loop; None if it fails
    (the query-limits extension then parses it again and reports why)."""
    if len(query) <= PARSE_OFF_LOOP_CHARS:
        return None

    def parse_and_check() -> DocumentNode | None:
        try:
            return parse_with_limits(query, limits)
        except GraphQLError:
            return None

    return await asyncio.get_running_loop().run_in_executor(_PARSER, parse_and_check)
