"""A throwaway PostgreSQL cluster for tests: ``initdb`` in a temporary directory.

The cluster listens on 127.0.0.1 on a free port, with its unix sockets in
its own directory, trusts every local connection and is removed when the
tests are done.  ``initdb`` refuses to run as root, so as root the server
runs as an unprivileged system user (``restkit-pg``, created when missing;
``nobody`` if it cannot be created) through ``runuser``.

Durability is off (``fsync=off``): the cluster lives for one test session,
and the tests kill zoo instances; PostgreSQL is only ever stopped cleanly (``stop()``, ``start()``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.conftest import free_port

__all__ = ["PgCluster", "missing_postgres"]

USER = "restkit-pg"


def _bin_dir() -> Path | None:
    """The directory of initdb, pg_ctl and postgres: the newest Debian version, else initdb on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()])
    for directory in reversed(candidates):
        if all(os.access(Path(directory) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    found = shutil.which("initdb")
    if found:
        directory = Path(os.path.realpath(found)).parent
        if (directory / "pg_ctl").exists() and (directory / "postgres").exists():
            return directory
    return None


def missing_postgres() -> str | None:
    """Why a PostgreSQL test cannot run here, or None when it can."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg 3 and psycopg-pool are not installed (pip install '.[postgres]')"
    if _bin_dir() is None:
        return "PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb cannot run"
    return None


def _server_user() -> str | None:
    """The user that runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(USER)
        return USER
    except KeyError:
        pass
    if shutil.which("useradd"):
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                              capture_output=True, timeout=30)
        if made.returncode in (0, 9):  # 9: it exists (another test session made it)
            return USER
    return "nobody"


class PgCluster:
    """A running PostgreSQL cluster in a temporary directory.

    ``url(dbname)`` is a ``postgresql://`` URL for a database on it and
    ``create_database()`` makes a new empty one.
    """

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise RuntimeError(missing_postgres() or "no PostgreSQL")
        self.bin = bin_dir
        self.user = _server_user()
        # not under pytest's tmp_path: its 0700 parents would lock the server user out
        self.root = Path(tempfile.mkdtemp(prefix="restkit-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.sockets.mkdir()
        os.chmod(self.root, 0o755)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets}"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
                   " -c shared_buffers=32MB")
        self._options = options
        try:
            self.start()
        except RuntimeError:
            self.close()
            raise
        self._counter = 0

    def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server as an operator would (``pg_ctl stop``, fast mode: sessions are ended)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}{log}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "zoo") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._counter += 1
        name = f"{prefix}_{self._counter}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop the server now and remove its files."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        for _ in range(50):
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.1)
