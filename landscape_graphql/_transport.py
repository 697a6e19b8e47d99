"""Connection-level protection for the server: what uvicorn itself does not bound.

uvicorn closes a connection that stays idle *between* requests (`timeout_keep_alive`) but not
one that never sends a complete request head, nor one that trickles its body, and it accepts
connections until the process runs out of file descriptors (then /livez fails too and asyncio
logs every failed accept()). A thin subclass of whichever HTTP protocol uvicorn would use adds:

* a head timeout: a connection must deliver a complete request head within `head_timeout_s`
  of connecting (or of its first byte after a previous response), else it is closed;
* a body timeout: a request's body must arrive within `body_timeout_s` of its head;
* a cap on open connections: past `max_connections` a new one is closed at once, so
  descriptors stay free for the ones being served and for the database.

`server_options()` gives the uvicorn.Config arguments that install it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("landscape_graphql.transport")


@dataclass(frozen=True, slots=True)
class TransportLimits:
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    # Idle time allowed between two requests on one connection (uvicorn's timeout_keep_alive).
    keep_alive_s: float = 5.0
    max_connections: int = 512
    # A request head over this many bytes is refused (uvicorn's h11_max_incomplete_event_size).
    max_head_bytes: int = 16 * 1024
    backlog: int = 512


@dataclass
class _Open:
    count: int = 0


def guarded_protocol(base: type[asyncio.Protocol], limits: TransportLimits) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol `base` (h11 or httptools) enforcing `limits`."""
    open_connections = _Open()

    class Guarded(base):  # type: ignore[valid-type,misc]
        _head_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            open_connections.count += 1
            if open_connections.count > limits.max_connections:
                logger.warning("connection closed: %d connections are open (limit: maxConnections %d)",
                               open_connections.count - 1, limits.max_connections)
                transport.abort()
                return
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            open_connections.count -= 1
            self._cancel_timers()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._after_data()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        # -- timers --------------------------------------------------------------------------

        def _in_request(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is not None and not cycle.response_complete

        def _after_data(self) -> None:
            if self.transport.is_closing():
                return
            if self._in_request():
                # A complete head: its timer stops and, while the body is still coming, the
                # body's starts.
                if self._head_timer is not None:
                    self._head_timer.cancel()
                    self._head_timer = None
                if self._body_timer is None and getattr(self.cycle, "more_body", False):
                    self._body_timer = self.loop.call_later(limits.body_timeout_s, self._body_expired, self.cycle)
            elif self._head_timer is None:
                # Bytes of a next request's head, after a response: it gets the same time.
                self._start_head_timer()

        def _start_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(limits.head_timeout_s, self._head_expired)

        def _head_expired(self) -> None:
            self._head_timer = None
            if not self._in_request() and not self.transport.is_closing():
                self.transport.close()

        def _body_expired(self, cycle: Any) -> None:
            self._body_timer = None
            if cycle is getattr(self, "cycle", None) and getattr(cycle, "more_body", False):
                # The app is still waiting for the body: it sees a disconnect.
                self.transport.close()

        def _cancel_timers(self) -> None:
            for timer in (self._head_timer, self._body_timer):
                if timer is not None:
                    timer.cancel()
            self._head_timer = self._body_timer = None

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


# With --workers, uvicorn pickles its Config (the protocol class included) into each worker:
# the guarded class is found by name in this module (see __getattr__), with the limits the
# supervisor put in the environment.
_LIMITS_ENV = "LANDSCAPE_GRAPHQL_TRANSPORT"


def _base(http: str) -> type[asyncio.Protocol]:
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS.get(http, http))
    return base


def protocol_class(http: str, limits: TransportLimits) -> type[asyncio.Protocol]:
    """The guarded protocol for uvicorn's `http` implementation, importable by name."""
    os.environ[_LIMITS_ENV] = json.dumps(dataclasses.asdict(limits))
    guarded = guarded_protocol(_base(http), limits)
    guarded.__module__ = __name__
    globals()[guarded.__name__] = guarded
    return guarded


def __getattr__(name: str) -> Any:
    # A worker unpickling its Config: rebuild the class the supervisor made, with its limits.
    if name.startswith("Guarded"):
        from uvicorn.config import HTTP_PROTOCOLS
        limits = TransportLimits(**json.loads(os.environ.get(_LIMITS_ENV, "{}")))
        for http in HTTP_PROTOCOLS:
            try:
                base = _base(http)
            except Exception:  # an implementation not installed
                continue
            if f"Guarded{base.__name__}" == name:
                return protocol_class(http, limits)
    raise AttributeError(name)


def server_options(limits: TransportLimits | None = None, http: str = "auto") -> dict[str, Any]:
    """uvicorn.Config arguments that apply `limits`, on the HTTP implementation `http` names."""
    limits = limits or TransportLimits()
    return {
        "http": protocol_class(http, limits),
        "timeout_keep_alive": limits.keep_alive_s,
        "h11_max_incomplete_event_size": limits.max_head_bytes,
        "backlog": limits.backlog,
    }
