"""Fixtures shared by every test: a database on each backend, a registry on it, a real PostgreSQL.

``database_url`` is parametrized over ``sqlite`` and ``postgresql``, so every storage test runs on
both backends. The PostgreSQL server is a throwaway one started for the session (one per
pytest-xdist worker): initdb into a temporary folder, trust authentication, loopback only, stopped
and deleted at the end. Where PostgreSQL is not installed its tests skip with the reason on a
developer's machine, and fail when ``CI`` is set, so CI can never pass by skipping them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported here, once, at collection: pytester restores sys.modules after each test, and a module
# imported afresh inside one test (SQLModel's metadata, Alembic's env) breaks the next test that
# migrates. See also the session fixture below for the modules imported lazily by the library.
import problem_registry.store.registry
from tests.throwaway_postgres import (
    PostgresServer,
    ServerUnavailable,
    throwaway_server,
)

CORE_MODULES = (
    "problem_registry.config",
    "problem_registry.store.engines",
    "problem_registry.errors",
    "problem_registry.expectations",
    "problem_registry.store.content",
    "problem_registry.store.migrations",
    "problem_registry.store.model_versions",
    "problem_registry.store.tables",
    "problem_registry.store.patterns",
    "problem_registry.store.problems",
    "problem_registry.store.registry",
    "problem_registry.store.views",
)


@pytest.fixture(scope="session", autouse=True)
def _core_imported_once() -> None:
    """Import every core module before any test runs (see the note on pytester above)."""
    for name in CORE_MODULES:
        importlib.import_module(name)


# --------------------------------------------------------------------------------------------
# A throwaway PostgreSQL server (tests.throwaway_postgres, shared with the benchmark)


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests (.ci/run installs it)")
    pytest.skip(f"{reason}; install PostgreSQL (apt-get install postgresql) to run these tests")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this session (this xdist worker), stopped and deleted at the end."""
    try:
        with throwaway_server() as server:
            yield server
    except ServerUnavailable as exc:
        _postgres_unavailable(str(exc))


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
def registry(
    database_url: str, tmp_path: Path
) -> Iterator[problem_registry.store.registry.Registry]:
    from problem_registry.store.registry import Registry

    opened = Registry.open(url=database_url, patterns_dir=tmp_path / "patterns", user="tester")
    try:
        yield opened
    finally:
        opened.close()
