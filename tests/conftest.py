"""Fixtures shared by every test: a database on each backend, a registry on it, a real PostgreSQL.

``database_url`` is parametrized over ``sqlite`` and ``postgresql``, so every storage test runs on
both backends. The PostgreSQL server is a throwaway one started for the session (one per
pytest-xdist worker): initdb into a temporary folder, trust authentication, loopback only, stopped
and deleted at the end. Where PostgreSQL is not installed its tests skip with the reason on a
developer's machine, and fail when ``CI`` is set, so CI can never pass by skipping them.

The digit registry's fixtures (``trained``, ``digits``) are registered here for every test module,
so a module imports only the types it annotates with.
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

pytest_plugins = ["tests.digit_registry"]

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


# What an in-process ``pytest --registry`` imports lazily: imported afresh inside one pytester run
# they would be dropped after it, and imported again by the next (matplotlib cannot be).
PLUGIN_MODULES = (
    "problem_registry.pytest_plugin.options",
    "problem_registry.pytest_plugin.session",
    "problem_registry.replay.engine",
    "problem_registry.report.builder",
    "problem_registry.verdicts.gates",
    "problem_registry.verdicts.summary",
)


@pytest.fixture(scope="session", autouse=True)
def _core_imported_once() -> None:
    """Import every core module before any test runs (see the note on pytester above)."""
    for name in CORE_MODULES:
        importlib.import_module(name)


@pytest.fixture(scope="session")
def _plugin_imported_once() -> None:
    """Import the plugin's lazy modules once, for the sessions that run pytest in process."""
    for name in PLUGIN_MODULES:
        importlib.import_module(name)


@pytest.fixture
def pytester(_plugin_imported_once: None, pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's own ``pytester``, created after the plugin's modules are imported: it snapshots
    ``sys.modules`` when created and restores that snapshot after the test."""
    return pytester


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
