"""A throwaway PostgreSQL cluster for tests.

`PgCluster.start()` runs `initdb` into a fresh temporary directory and starts a server that
listens only on 127.0.0.1 (on a free port) and on a unix socket inside that directory, with
fsync off: the data is disposable, so durability only costs time.

PostgreSQL refuses to run as root, and CI runs as root, so as root the server runs as the
`postgres` OS user (created by Debian's package) and the directory is handed to it; as any
other user the server runs as that user.

Cleanup happens three ways, so a crashed test run never leaves a server behind:
`stop()` (fast shutdown, then the directory is removed); an `atexit` hook (immediate
shutdown) for clusters a test forgot; and a small reaper process per cluster that waits on
a pipe from the test process and shuts the cluster down when the pipe closes, which also
covers a test process killed by a signal, where `atexit` never runs.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

INSTALL_HINT = "run `sudo scripts/install-system-deps.sh` (Debian 12) to install the PostgreSQL server"
SUPERUSER = "postgres"
SERVER_OS_USER = "postgres"
_START_TIMEOUT_S = 60
_START_ATTEMPTS = 3


class PgClusterError(RuntimeError):
    """The throwaway cluster could not be created, started, stopped or used."""


class PostgresNotInstalled(PgClusterError):
    pass


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres/psql of the newest installed server."""
    candidates: list[Path] = []
    env = os.environ.get("LANDSCAPE_PG_BINDIR")
    if env:
        candidates.append(Path(env))
    # Debian's pg_config comes with libpq-dev, which may be present without the server, so
    # its answer is only a candidate: it must actually hold the server binaries.
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 check=True, timeout=10).stdout.strip()
            if out:
                candidates.append(Path(out))

    def version_key(p: str) -> tuple[int, ...]:
        parts = Path(p).parent.name.split(".")
        return tuple(int(x) for x in parts if x.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key,
                                           reverse=True)]
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return bindir
    raise PostgresNotInstalled(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) were not found in "
        f"{[str(c) for c in candidates] or '/usr/lib/postgresql/*/bin'}; {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quote_ident(name: str) -> str:
    if "\x00" in name:
        raise ValueError("identifier contains NUL")
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    if "\x00" in value:
        raise ValueError("literal contains NUL")
    return "'" + value.replace("'", "''") + "'"


# Runs in its own session so that a Ctrl-C or a kill of the test process group does not take
# it down with the tests: it is the one that must outlive them. It blocks on its stdin (the
# write end is held only by the test process) and, at EOF, stops the cluster if it still
# exists. Written out as source because it must not import anything from the test tree.
_REAPER_SOURCE = r"""
import os, shutil, subprocess, sys
pg_ctl, data, root, run_as = sys.argv[1:5]
sys.stdin.buffer.read()
prefix = ["runuser", "-u", run_as, "--"] if run_as else []
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run(prefix + [pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
shutil.rmtree(root, ignore_errors=True)
"""


# eq=False: clusters compare and hash by identity (they live in a set until stopped).
@dataclass(eq=False)
class PgCluster:
    """One running throwaway cluster. Create with `PgCluster.start()`; end with `stop()`."""

    root: Path
    port: int
    bindir: Path
    password: str
    run_as: str | None  # the OS user the server runs as, when we had to switch (root)
    _reaper: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def start(cls, *, extra_settings: dict[str, str] | None = None) -> PgCluster:
        """initdb + start; raises `PostgresNotInstalled` or `PgClusterError`."""
        bindir = find_bindir()
        run_as = cls._server_user()
        # Not under pytest's tmp_path: its parents are private to the test user, and the
        # server user must be able to reach its directory; also a unix socket path must stay
        # under ~100 bytes.
        base = tempfile.gettempdir()
        if len(base) > 60:
            base = "/tmp"
        root = Path(tempfile.mkdtemp(prefix="landscape-pg-", dir=base))
        cluster = cls(root=root, port=0, bindir=bindir, password=secrets.token_urlsafe(18),
                      run_as=run_as)
        _LIVE.add(cluster)
        try:
            cluster._initdb(extra_settings or {})
            cluster._start_reaper()
            cluster._start_on_free_port()
        except BaseException:
            cluster._teardown(mode="immediate")
            raise
        return cluster

    @staticmethod
    def _server_user() -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SERVER_OS_USER)
        except KeyError:
            raise PostgresNotInstalled(
                f"running as root, but there is no {SERVER_OS_USER!r} OS user to run the server "
                f"as (Debian's postgresql package creates it); {INSTALL_HINT}") from None
        if shutil.which("runuser") is None:
            raise PgClusterError("running as root, but runuser (util-linux) is not installed")
        return SERVER_OS_USER

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def _as_server_user(self, argv: Sequence[str]) -> list[str]:
        if self.run_as is None:
            return list(argv)
        return ["runuser", "-u", self.run_as, "--", *argv]

    def _run(self, argv: Sequence[str], *, as_server: bool = False, timeout: float = 120,
             input_text: str | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        cmd = self._as_server_user(argv) if as_server else list(argv)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              input=input_text, cwd=self.root,
                              env={**os.environ, **(env or {})}, check=False)
        if proc.returncode != 0:
            raise PgClusterError(
                f"{Path(argv[0]).name} failed with exit code {proc.returncode}:\n"
                f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _initdb(self, extra_settings: dict[str, str]) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        # Local (socket) connections are trusted: the socket's directory is private to the
        # server user (and root). TCP needs the password, like a real deployment would.
        self._run([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                   f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                   "-E", "UTF8", "--locale=C", "--no-sync"], as_server=True)
        pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": _quote_literal(str(self.socket_dir)),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            **extra_settings,
        }
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        # Appended as the server user so that the file keeps its owner.
        self._run(["sh", "-c", 'cat >> "$1"', "sh", str(self.data_dir / "postgresql.conf")],
                  as_server=True, input_text=conf)

    def _start_reaper(self) -> None:
        self._reaper = subprocess.Popen(
            [sys.executable, "-c", _REAPER_SOURCE, str(self.bindir / "pg_ctl"),
             str(self.data_dir), str(self.root), self.run_as or ""],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd="/")

    def _start_on_free_port(self) -> None:
        last: PgClusterError | None = None
        for _ in range(_START_ATTEMPTS):
            # Another process may grab the port between our probe and the server's bind;
            # then the start fails with a bind error and we simply try another port.
            self.port = _free_port()
            try:
                self.start_server()
                return
            except PgClusterError as exc:
                last = exc
                if "could not bind" not in self._log_tail() and "in use" not in self._log_tail():
                    raise
        assert last is not None
        raise last

    def _log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start_server(self) -> None:
        """Start the (stopped) server on the cluster's port; waits until it accepts connections."""
        self._check_alive()
        try:
            self._run([str(self.bindir / "pg_ctl"), "start", "-D", str(self.data_dir),
                       "-l", str(self.log_file), "-w", "-t", str(_START_TIMEOUT_S),
                       "-o", f"-p {self.port}"],
                      as_server=True, timeout=_START_TIMEOUT_S + 10)
        except PgClusterError as exc:
            raise PgClusterError(f"{exc}\n--- server log ---\n{self._log_tail()}") from None

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server but keep the cluster (for tests of PostgreSQL going away)."""
        self._check_alive()
        self._pg_ctl_stop(mode)

    def restart(self, mode: str = "fast") -> None:
        self.stop_server(mode)
        self.start_server()

    def is_running(self) -> bool:
        if self._stopped:
            return False
        proc = subprocess.run(
            self._as_server_user([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)]),
            capture_output=True, text=True, cwd=self.root, check=False)
        return proc.returncode == 0

    def _pg_ctl_stop(self, mode: str) -> None:
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        self._run([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode,
                   "-w", "-t", "60"], as_server=True, timeout=70)

    def stop(self) -> None:
        """Fast shutdown and remove the cluster's directory. Idempotent."""
        self._teardown(mode="fast")

    def _teardown(self, mode: str) -> None:
        if self._stopped:
            return
        self._stopped = True
        _LIVE.discard(self)
        try:
            if (self.data_dir / "postmaster.pid").exists():
                try:
                    self._pg_ctl_stop(mode)
                except (PgClusterError, subprocess.TimeoutExpired):
                    if mode != "immediate":
                        self._pg_ctl_stop("immediate")
                    else:
                        raise
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            if self._reaper is not None:
                # Closing the pipe lets the reaper find nothing left to do and exit.
                with contextlib.suppress(OSError):
                    if self._reaper.stdin is not None:
                        self._reaper.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._reaper.wait(timeout=10)

    def _check_alive(self) -> None:
        if self._stopped:
            raise PgClusterError("this cluster was stopped and removed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- connecting --------------------------------------------------------------------------

    def url(self, dbname: str, *, user: str = SUPERUSER, password: str | None = None) -> str:
        """SQLAlchemy URL: postgresql+asyncpg://USER:PASSWORD@127.0.0.1:PORT/DBNAME."""
        return self._tcp_url("postgresql+asyncpg", dbname, user, password)

    def libpq_url(self, dbname: str = "postgres", *, user: str = SUPERUSER,
                  password: str | None = None) -> str:
        """Plain libpq/asyncpg URL (postgresql://…) over TCP, for psql or asyncpg.connect."""
        return self._tcp_url("postgresql", dbname, user, password)

    @property
    def psql_url(self) -> str:
        """libpq URL of the superuser's `postgres` database, as psql takes it."""
        return self.libpq_url("postgres")

    def _tcp_url(self, scheme: str, dbname: str, user: str, password: str | None) -> str:
        self._check_alive()
        secret = self.password if password is None and user == SUPERUSER else password
        auth = quote(user, safe="")
        if secret is not None:
            auth += ":" + quote(secret, safe="")
        return f"{scheme}://{auth}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def psql(self, sql: str, dbname: str = "postgres", *, timeout: float = 120) -> str:
        """Run SQL through psql over the unix socket as the superuser; raises on any error."""
        proc = self._run(
            [str(self.bindir / "psql"), *self._psql_conn_args(dbname), "-v", "ON_ERROR_STOP=1",
             "-X", "-q", "-A", "-t", "-f", "-"],
            input_text=sql, timeout=timeout)
        return proc.stdout

    def _psql_conn_args(self, dbname: str) -> list[str]:
        self._check_alive()
        return ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, "-d", dbname]

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; returns its SQLAlchemy URL."""
        self.psql(f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0 ENCODING 'UTF8'")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def restore_dump(self, path: str | os.PathLike[str], dbname: str) -> None:
        """Load a plain-SQL `pg_dump` into an existing database (psql -v ON_ERROR_STOP=1 -f)."""
        self._run([str(self.bindir / "psql"), *self._psql_conn_args(dbname), "-v", "ON_ERROR_STOP=1",
                   "-X", "-q", "-o", os.devnull, "-f", str(Path(path).resolve())], timeout=600)

    def create_readonly_role(self, dbname: str, role: str, password: str | None = None) -> str:
        """A login role that may only read `dbname`'s public tables; returns its SQLAlchemy URL.

        Privileges, not settings, keep it read-only: `default_transaction_read_only` is set too,
        but any role may switch that off for its own session.
        """
        password = password or secrets.token_urlsafe(18)
        r, d = _quote_ident(role), _quote_ident(dbname)
        self.psql(f"""
            CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
                PASSWORD {_quote_literal(password)};
            ALTER ROLE {r} SET default_transaction_read_only = on;
            REVOKE ALL ON DATABASE {d} FROM PUBLIC;
            GRANT CONNECT ON DATABASE {d} TO {r};
        """)
        self.psql(f"""
            REVOKE CREATE ON SCHEMA public FROM PUBLIC;
            GRANT USAGE ON SCHEMA public TO {r};
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO {r};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {r};
        """, dbname)
        return self.url(dbname, user=role, password=password)


# Clusters not yet stopped; the atexit hook stops them. A plain set guarded by a lock: tests
# may start clusters from worker threads.
class _LiveSet:
    def __init__(self) -> None:
        self._items: set[PgCluster] = set()
        self._lock = threading.Lock()

    def add(self, c: PgCluster) -> None:
        with self._lock:
            self._items.add(c)

    def discard(self, c: PgCluster) -> None:
        with self._lock:
            self._items.discard(c)

    def drain(self) -> Iterator[PgCluster]:
        with self._lock:
            items, self._items = list(self._items), set()
        yield from items


_LIVE = _LiveSet()


@atexit.register
def _stop_leftover_clusters() -> None:
    for cluster in _LIVE.drain():
        with contextlib.suppress(Exception):
            cluster._teardown(mode="immediate")


def wait_until_accepting(cluster: PgCluster, timeout: float = 30) -> None:
    """Block until the server answers pg_isready (after a restart by something else)."""
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run([str(cluster.bindir / "pg_isready"), "-h", "127.0.0.1",
                               "-p", str(cluster.port)], capture_output=True, check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise PgClusterError(f"server on port {cluster.port} not ready after {timeout}s")
        time.sleep(0.1)
