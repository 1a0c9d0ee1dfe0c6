"""A PostgreSQL server of its own, in a temporary directory on a free loopback port: the tests'
and the federation benchmark's city database, never the machine's own service.

It runs Debian's server binaries (package ``postgresql``, ``/usr/lib/postgresql/<version>/bin``).
PostgreSQL refuses to run as root: started by root, the cluster belongs to the ``postgres`` user
(the package creates it) and its programs run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 60.0
SUPERUSER = "lightctl"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server programs on this machine, or the server did not start."""


def server_bin_dir() -> Path:
    """The newest installed server's programs (``initdb``, ``pg_ctl``, ``postgres``, ``psql``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL's server programs are not installed (Debian: apt-get install postgresql; `make test` does it)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryPostgres:
    """``start()``, ``create_database(name)`` -> URL, ``stop()`` (removes everything).

    ``durable=False`` (tests) turns off fsync and synchronous commit: fast, and a crash of the
    machine loses the cluster, which nobody keeps anyway. The benchmark runs it durable."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.port = 0
        self.dir: Path | None = None
        self._bin = server_bin_dir()
        self._as_user: Callable[[], None] | None = None

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            [str(self._bin / args[0]), *args[1:]],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, preexec_fn=self._as_user, check=False,
            cwd=self.dir,
        )
        if result.returncode != 0:
            log = self.dir / "server.log" if self.dir else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise PostgresUnavailable(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
        return result.stdout

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lightctl-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)

            def as_postgres() -> None:
                os.setgid(owner.pw_gid)
                os.setuid(owner.pw_uid)

            self._as_user = as_postgres
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
                  *(() if self.durable else ("--no-sync",)))
        options = [f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1", "-c max_connections=200"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            self._run("pg_ctl", "-D", str(self.data), "-o", " ".join(options), "-l", str(self.dir / "server.log"),
                      "-w", "-t", str(START_TIMEOUT_S), "start")
        except BaseException:
            self.stop()
            raise

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                         "-U", SUPERUSER, "-d", database, "-c", sql)

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again on the same port and data."""
        assert self.dir is not None
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-l", str(self.dir / "server.log"), "-w",
                  "-t", str(START_TIMEOUT_S), "restart")

    def stop(self) -> None:
        if self.dir is None:
            return
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
