"""A throwaway PostgreSQL server for the registry tests.

The server binaries come from the Debian ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``,
not on PATH); the system service is never used. :class:`PgServer` makes a private cluster in a
fresh temporary directory (``initdb -A trust``), listens only on a Unix socket in that directory
(no TCP, so parallel sessions cannot collide), and is stopped with ``pg_ctl stop -m immediate``
and deleted by :meth:`PgServer.stop`. ``initdb`` refuses to run as root, so as root the cluster
belongs to the ``postgres`` system user and the commands run through ``runuser``.

The data directory lives under the system temporary directory rather than pytest's: pytest's
base temp dirs are mode 0700 and owned by the invoking user, so the ``postgres`` user could not
reach a cluster inside them; the socket path also has to stay under ~100 characters.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from glob import glob
from pathlib import Path

MISSING = "PostgreSQL server binaries not found (Debian package postgresql)"
SUPERUSER = "postgres"
# A throwaway cluster needs no durability; these make initdb/CREATE DATABASE/commits cheap.
SERVER_OPTIONS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``."""
    candidates = []
    for bindir in glob("/usr/lib/postgresql/*/bin"):
        version = Path(bindir).parent.name
        if all(os.access(Path(bindir) / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            key = tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)
            candidates.append((key, Path(bindir)))
    return max(candidates)[1] if candidates else None


def unavailable_reason() -> str | None:
    """Why no throwaway server can be started here, or None if it can."""
    if find_bindir() is None:
        return MISSING
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root and there is no '{SUPERUSER}' system user to own the cluster (initdb refuses root)"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing, so initdb cannot run as the postgres user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    return None


def _free_port() -> int:
    # The server listens only on its private socket directory, so the port merely names the
    # socket file; a free TCP port keeps it distinct from any system service anyway.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServerError(RuntimeError):
    pass


class PgServer:
    """One private PostgreSQL cluster: :meth:`start`, :meth:`create_database`, :meth:`stop`."""

    def __init__(self, bindir: Path | None = None):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise PgServerError(MISSING)
        self.root: Path | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._running = False
        self._n_databases = 0
        self._owner_pid = os.getpid()

    # -- lifecycle ---------------------------------------------------------------------------

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        cmd = self._as_owner() + [str(self.bindir / tool), *args]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            log = self._server_log()
            raise PgServerError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                                + (f"\nserver log:\n{log}" if log else ""))

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def _server_log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-2000:]
        except (OSError, AssertionError):
            return ""

    def start(self) -> "PgServer":
        started = time.monotonic()
        self.root = Path(tempfile.mkdtemp(prefix="aacbatch-pg-"))
        self._owner_pid = os.getpid()
        atexit.register(self.stop)  # backstop if the session never reaches its teardown
        try:
            if os.geteuid() == 0:
                owner = pwd.getpwnam(SUPERUSER)
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                      "--locale=C", "--no-sync")
            self.port = _free_port()
            options = " ".join([f"-k '{self.root}'", f"-p {self.port}"] + [f"-c {k}={v}" for k, v in SERVER_OPTIONS.items()])
            self._running = True  # from here on stop() must try to shut a server down
            self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", options, "-w", "-t", "60", "-s", "start")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop the server (immediate mode) and delete the cluster; safe to call twice."""
        if os.getpid() != self._owner_pid:
            return  # a forked child's exit must not stop the parent's server
        if self._running:
            self._running = False
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30", "-s", "stop", timeout=40)
            except (PgServerError, OSError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl cannot stop the server: SIGQUIT the postmaster we started."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    # -- databases ---------------------------------------------------------------------------

    def _admin_connect(self):
        import psycopg

        return psycopg.connect(host=str(self.root), port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; return its name (:meth:`url` makes the SQLAlchemy URL)."""
        if not self._running:
            raise PgServerError("the PostgreSQL test server is not running")
        self._n_databases += 1
        name = name or f"t{self._n_databases:04d}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        with self._admin_connect() as conn:
            # FILE_COPY (PostgreSQL 15+) skips WAL-logging the template copy: ~3x faster here.
            strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}"{strategy}')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open (best effort)."""
        if not self._running:
            return
        import psycopg

        try:
            with self._admin_connect() as conn:
                force = " WITH (FORCE)" if conn.info.server_version >= 130000 else ""
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
        except psycopg.Error:
            pass  # it goes with the cluster at the end of the session

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.root}&port={self.port}"
