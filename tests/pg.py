"""A real PostgreSQL 16 for tests and benches, from the ``pgserver`` package's binaries (PyPI ships them: nothing is
installed by hand), listening on a free TCP port on 127.0.0.1 with trust authentication.

As root (CI, this machine) PostgreSQL refuses to run, so it runs as the system user ``pgserver`` (created when
missing, as pgserver itself does) and the data folder's parents are made traversable for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from blendr.ports import free_port

PG_USER = "pgserver"  # the system user PostgreSQL runs as when we are root


@dataclass
class PostgresServer:
    """One PostgreSQL server: ``url`` is its ``postgres`` database; :meth:`database` makes fresh ones."""

    datadir: Path
    port: int
    user: str | None  # the system user it runs as (None: this process's user)

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.datadir), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=self.user, timeout=timeout)

    def start(self) -> None:
        """Starts the server and waits until it accepts connections (``pg_ctl -w``)."""
        sockets = self.datadir / "sock"
        self._pg_ctl("-w", "-l", str(self.datadir / "server.log"), "-o",
                     f"-h 127.0.0.1 -p {self.port} -k {sockets} -c fsync=off -c max_connections=200", "start")

    def stop(self) -> None:
        """Stops the server (fast: open connections are ended); a stopped server is left as it is."""
        if (self.datadir / "postmaster.pid").exists():
            self._pg_ctl("-w", "-m", "fast", "stop")

    def start_if_stopped(self) -> None:
        """Starts the server unless it runs (a test that stopped it and failed before starting it again)."""
        if not (self.datadir / "postmaster.pid").exists():
            self.start()

    def restart(self) -> None:
        """Stops and starts the server on the same port and data: every connection to it breaks once."""
        self.stop()
        self.start()

    def database(self, name: str) -> str:
        """Creates database ``name`` and returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres(datadir: Path | None = None) -> PostgresServer:
    """Initialises ``datadir`` (a fresh temporary folder when None) and starts PostgreSQL on a free port.

    Raises:
        RuntimeError: the server did not start (its log's tail is in the message).
    """
    from pgserver._commands import POSTGRES_BIN_PATH

    datadir = Path(datadir) if datadir is not None else Path(tempfile.mkdtemp(prefix="blendr-pg-"))
    datadir.mkdir(parents=True, exist_ok=True)
    user = None
    if os.geteuid() == 0:
        import pwd

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_USER)
        ensure_prefix_permissions(datadir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        pw = pwd.getpwnam(PG_USER)
        os.chown(datadir, pw.pw_uid, pw.pw_gid)
        user = PG_USER
    server = PostgresServer(datadir / "data", free_port(), user)
    if not (server.datadir / "PG_VERSION").exists():
        server.datadir.mkdir(exist_ok=True)
        if user is not None:
            shutil.chown(server.datadir, user, user)
        subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(server.datadir), "--auth=trust",
                        "--encoding=utf8", "-U", "postgres"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, user=user, timeout=120)
    (server.datadir / "sock").mkdir(exist_ok=True)
    if user is not None:
        shutil.chown(server.datadir / "sock", user, user)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.start()
            return server
        except subprocess.CalledProcessError:
            log = server.datadir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            if "could not bind" in tail and time.monotonic() < deadline:  # the free port was taken meanwhile
                server.port = free_port()
                continue
            raise RuntimeError(f"PostgreSQL did not start in {server.datadir}:\n{tail}") from None
