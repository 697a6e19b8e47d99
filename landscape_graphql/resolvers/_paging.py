"""Page-size rules shared by every connection."""

from __future__ import annotations

from ..db.pages import PageRequest
from ..errors import BadArgument
from ..limits import check_page_size
from ..settings import Settings


def page_request(settings: Settings, first: int | None, after: str | None,
                 last: int | None, before: str | None, coordinate: str = "") -> tuple[PageRequest, int]:
    """Validate first/last and return the request with the page size to fetch.

    The query-limits extension refuses oversized pages before execution with the same rule;
    `coordinate` (`Type.field`) names the connection, for the limits that differ by field.
    """
    limits = settings.limits
    for name, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise BadArgument(name, "must not be negative")
    check_page_size(first, last, limits, coordinate)
    if first is not None and last is not None:
        raise BadArgument("last", "cannot be combined with first")
    size = first if first is not None else last if last is not None else limits.default_page_size
    return PageRequest(first=first, after=after, last=last, before=before), size
