"""Running the server: the listening socket, the event loop and HTTP parser, one process or several.

Why the server binds its own socket: uvicorn's multi-process mode binds one with
``socket.socket(family)``, whose protocol number is 0. Every connection accepted from it
inherits that 0, and asyncio only sets ``TCP_NODELAY`` on a socket whose protocol is
``IPPROTO_TCP`` (``asyncio.base_events._set_nodelay``). So with several workers on asyncio's
loop, Nagle's algorithm held each response's second write (uvicorn writes the headers and the
body separately) until the client ACKed the first, and the client delays that ACK by up to
40 ms: every request on a kept-alive connection took ~44 ms, with h11 or httptools alike.
uvloop sets ``TCP_NODELAY`` on every TCP connection, which hid it. A socket made with
``IPPROTO_TCP`` fixes it on both loops; ``tests/test_serving.py`` times it.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import pickle
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._shared import ServerGroup

GRACEFUL_SHUTDOWN_S = 30
_BUILD_ENV = "LANDSCAPE_GRAPHQL_WORKER_BUILD"


def server_stack(loop: str = "auto") -> tuple[str, str]:
    """(event loop, HTTP parser): uvloop and httptools when installed (the locked stack)."""
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return loop, http


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections get TCP_NODELAY on any loop (see above)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(app: Any, loop: str, transport: Any = None, **extra: Any) -> Any:
    import uvicorn

    from ._transport import server_options
    loop, http = server_stack(loop)
    # server_options wraps the HTTP parser with head/body timeouts and a connection cap.
    return uvicorn.Config(app, loop=loop, log_config=None, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                          **server_options(transport, http=http), **extra)


def run_single(app: Any, sock: socket.socket, loop: str = "auto", transport: Any = None) -> None:
    """Serve in this process until SIGTERM/SIGINT, then finish in-flight requests and return."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # /readyz fails from the first signal on, while in-flight requests still finish.
            app.state.landscape_state.shutting_down = True
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal after its graceful shutdown, so the process would
            # die by SIGTERM (exit 143 in a container) although it stopped cleanly: exit 0.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    Server(_config(app, loop, transport)).run(sockets=[sock])


def run_workers(build: Any, sock: socket.socket, workers: int, factory: str, loop: str = "auto",
                transport: Any = None) -> None:
    """Serve with ``workers`` processes accepting on one socket, until SIGTERM/SIGINT.

    ``build`` (picklable) is handed to each worker, which makes its own app from it with
    ``factory`` ("module:function", reading it with `worker_build`). On a signal the supervisor raises the group's stopping flag first (every
    worker's /readyz fails at once), then each worker finishes its in-flight requests.
    """
    from uvicorn.supervisors import Multiprocess

    folder = Path(tempfile.mkdtemp(prefix="landscape-graphql-"))
    group = ServerGroup(folder, workers)
    saved = {key: os.environ.get(key) for key in (*group.environment(), _BUILD_ENV)}
    os.environ.update(group.environment())
    os.environ[_BUILD_ENV] = base64.b64encode(pickle.dumps(build)).decode()

    class Supervisor(Multiprocess):
        def handle_int(self) -> None:
            group.begin_stopping()
            super().handle_int()

        def handle_term(self) -> None:
            group.begin_stopping()
            super().handle_term()

    try:
        config = _config(factory, loop, transport, factory=True, workers=workers)
        Supervisor(config, sockets=[sock]).run()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)


def worker_build() -> Any:
    """In a worker process: the description of the app that `run_workers` was given."""
    return pickle.loads(base64.b64decode(os.environ[_BUILD_ENV]))
