"""A throwaway PostgreSQL server: initdb into a temporary folder, loopback only, then deleted.

Test tooling, used by the suite (every storage test runs on SQLite and on PostgreSQL) and by
``benchmarks/postgres.py`` (which puts the checkout on ``sys.path`` for it). Trust authentication
and no durability: nothing in it outlives the process that started it, so it is safe only on
the loopback interface it listens on::

    with throwaway_server() as server:
        url = server.create_database()

Only the standard library at import; psycopg is imported when a statement is run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_POSTGRES_TOOLS = ("initdb", "pg_ctl", "postgres")


class ServerUnavailable(RuntimeError):
    """No throwaway server can be had here: not installed, or it would not start; says why."""


def unavailable_reason() -> str | None:
    """Why no throwaway server can be started on this machine, or None when one can be tried."""
    if find_postgres_bin() is None:
        return f"PostgreSQL not found on PATH nor in {POSTGRES_BIN_GLOB}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and postgres refuses root"
    return None


@contextlib.contextmanager
def throwaway_server(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """A started server in a new folder under the system's temporary one; stopped and deleted on
    exit. :class:`ServerUnavailable` when it cannot be started (``unavailable_reason`` or its
    initdb / pg_ctl output), so a caller can skip what needs it."""
    reason = unavailable_reason()
    found = bin_dir or find_postgres_bin()
    if reason or found is None:
        raise ServerUnavailable(reason or f"PostgreSQL not found in {bin_dir}")
    # The system's /tmp rather than a private folder: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="problem-registry-pg-"))
    server = PostgresServer(bin_dir=found, base=base)
    try:
        try:
            server.initdb()
            server.start()
        except Exception as exc:
            message = f"cannot start a throwaway PostgreSQL from {found}: {exc}"
            raise ServerUnavailable(message) from exc
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def find_postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: PATH, else the newest Debian install."""
    on_path = [shutil.which(tool) for tool in _POSTGRES_TOOLS]
    if all(on_path):
        return Path(on_path[0]).resolve().parent  # type: ignore[arg-type]
    candidates = []
    for folder in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")):
        version = re.sub(r"\D", "", folder.parent.name)
        if version and all((folder / tool).is_file() for tool in _POSTGRES_TOOLS):
            candidates.append((int(version), folder))
    return max(candidates)[1] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: ``url(name)`` names a database; ``create_database()`` makes a new one."""

    bin_dir: Path
    base: Path
    port: int = 0
    user: str = "postgres"
    host: str = "127.0.0.1"
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new, empty database on this server; its URL."""
        name = f"t_{os.getpid()}_{next(self._counter)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database`, closing whatever still uses it."""
        name = url.rsplit("/", 1)[1]
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        conninfo = f"host={self.host} port={self.port} user={self.user} dbname={dbname}"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    # -- lifecycle ---------------------------------------------------------------------------

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [str(arg) for arg in args]
        if os.geteuid() == 0:
            # postgres refuses to run as root; run its tools as the postgres OS user.
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def initdb(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, user=self.user)
        result = self._run(
            self.bin_dir / "initdb",
            "-D",
            self.data_dir,
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self, attempts: int = 5) -> None:
        """Start on a free loopback port; no socket is opened on any other address."""
        # A free port can be taken by someone else between probing and binding (another xdist
        # worker starting its own server): retry on a new port.
        log = self.base / "server.log"
        for _ in range(attempts):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    f"-c unix_socket_directories={self.base}",
                    # Durability is worthless for a throwaway server and costs seconds per test.
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=200",
                ]
            )
            result = self._run(
                self.bin_dir / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data_dir,
                "-l", log, "-o", options,
            )  # fmt: skip
            if result.returncode == 0:
                return
            time.sleep(0.2)
        details = log.read_text(errors="replace") if log.exists() else result.stderr
        raise RuntimeError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{details}")

    def stop(self) -> None:
        self._run(self.bin_dir / "pg_ctl", "stop", "-m", "immediate", "-w", "-D", self.data_dir)
