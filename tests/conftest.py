"""Fixtures shared by every test: a database on each backend, a registry on it, a real PostgreSQL.

``database_url`` is parametrized over ``sqlite`` and ``postgresql``, so every storage test runs on
both backends. The PostgreSQL server is a throwaway one started for the session (one per
pytest-xdist worker): initdb into a temporary folder, trust authentication, loopback only, stopped
and deleted at the end. Where PostgreSQL is not installed its tests skip with the reason on a
developer's machine, and fail when ``CI`` is set, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import importlib
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

import pytest

# Imported here, once, at collection: pytester restores sys.modules after each test, and a module
# imported afresh inside one test (SQLModel's metadata, Alembic's env) breaks the next test that
# migrates. See also the session fixture below for the modules imported lazily by the library.
import problem_registry.registry

CORE_MODULES = (
    "problem_registry.config",
    "problem_registry.db",
    "problem_registry.errors",
    "problem_registry.expectations",
    "problem_registry.files",
    "problem_registry.migrations",
    "problem_registry.model_versions",
    "problem_registry.models",
    "problem_registry.patterns",
    "problem_registry.problems",
    "problem_registry.registry",
    "problem_registry.views",
)

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_POSTGRES_TOOLS = ("initdb", "pg_ctl", "postgres")


@pytest.fixture(scope="session", autouse=True)
def _core_imported_once() -> None:
    """Import every core module before any test runs (see the note on pytester above)."""
    for name in CORE_MODULES:
        importlib.import_module(name)


# --------------------------------------------------------------------------------------------
# A throwaway PostgreSQL server


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


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests (.ci/run installs it)")
    pytest.skip(f"{reason}; install PostgreSQL (apt-get install postgresql) to run these tests")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this session (this xdist worker), stopped and deleted at the end."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        _postgres_unavailable(f"PostgreSQL not found on PATH nor in {POSTGRES_BIN_GLOB}")
    assert bin_dir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _postgres_unavailable("running as root without runuser, and postgres refuses root")
    # /tmp rather than pytest's tmp_path_factory: the postgres user must be able to reach it, and
    # pytest's base folder is private to the user running the tests.
    base = Path(tempfile.mkdtemp(prefix="problem-registry-pg-"))
    server = PostgresServer(bin_dir=bin_dir, base=base)
    try:
        server.initdb()
        server.start()
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        _postgres_unavailable(f"cannot start a throwaway PostgreSQL from {bin_dir}: {exc}")
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# A fresh database on each backend, and a registry on it


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file in tmp_path, or a new database on the server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    # Each database is a ~7 MB copy of template1: dropped after its test, a session of a few
    # hundred tests does not leave gigabytes behind for the final cleanup to delete.
    request.addfinalizer(lambda: server.drop_database(url))
    return url


@pytest.fixture
def registry(database_url: str, tmp_path: Path) -> Iterator[problem_registry.registry.Registry]:
    from problem_registry.registry import Registry

    opened = Registry.open(url=database_url, patterns_dir=tmp_path / "patterns", user="tester")
    try:
        yield opened
    finally:
        opened.close()
