"""Schema migrations on SQLite and PostgreSQL: agreement with the models, first use, concurrency,
refusals of schemas this code does not know, and a core that imports no UI or test libraries."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

import problem_registry
from problem_registry.errors import SchemaMismatch
from problem_registry.store import migrations
from problem_registry.store.engines import create_registry_engine
from problem_registry.store.registry import Registry
from problem_registry.store.tables import SQLModel

TABLES = set(SQLModel.metadata.tables)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    created = create_registry_engine(database_url)
    yield created
    created.dispose()


def revisions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [
            row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        ]


def tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def open_registry(url: str, tmp_path: Path) -> Registry:
    return Registry.open(url=url, patterns_dir=tmp_path / "patterns", user="tester")


def test_models_and_migrations_agree(engine: Engine) -> None:
    """Autogenerate against a database migrated to head finds nothing to do."""
    migrations.upgrade(engine)

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, SQLModel.metadata)

    assert differences == []


def test_new_database_is_created_at_head_on_first_open(database_url: str, tmp_path: Path) -> None:
    with open_registry(database_url, tmp_path) as registry:
        registry.problems.add("hats")

    # A separate engine sees it: the migration was committed, not rolled back behind our back.
    fresh = create_registry_engine(database_url)
    try:
        assert revisions(fresh) == [migrations.head_revision()]
        assert tables(fresh) == TABLES
        assert migrations.schema_state(fresh).is_current
    finally:
        fresh.dispose()


def test_upgrade_twice_is_a_no_op_the_second_time(engine: Engine) -> None:
    first = migrations.upgrade(engine)
    second = migrations.upgrade(engine)

    assert (first.migrated, first.previous, first.current) == (
        True,
        None,
        migrations.head_revision(),
    )
    assert (second.migrated, second.previous) == (False, migrations.head_revision())
    assert second.is_current
    assert revisions(engine) == [migrations.head_revision()]


def test_sqlite_foreign_keys_are_back_on_after_a_migration(tmp_path: Path) -> None:
    """The upgrade turns them off around batch table rebuilds; they must not stay off."""
    engine = create_registry_engine(f"sqlite:///{tmp_path}/registry.db")
    try:
        migrations.upgrade(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


_UPGRADER = """
import sys, time
from pathlib import Path
from problem_registry.store.engines import create_registry_engine
from problem_registry.store.migrations import upgrade

url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
engine = create_registry_engine(url)
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():  # start together: every process has imported everything by now
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.002)
state = upgrade(engine)
print(state.current, state.migrated)
"""


@pytest.mark.slow  # three interpreters importing SQLAlchemy and Alembic: 4-6 s on 2 cores
def test_processes_upgrading_an_empty_database_at_once_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    count = 3
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(count)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _UPGRADER, database_url, str(flag), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for flag in ready
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes):
                break
            time.sleep(0.01)
        go.touch()
        outcomes = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    assert [code for code, _out, _err in outcomes] == [0] * count, outcomes
    head = migrations.head_revision()
    reports = sorted(out.split() for _code, out, _err in outcomes)
    # Everyone ends at head; exactly one of them ran the migration, the others found it done.
    assert reports == [[head, "False"]] * (count - 1) + [[head, "True"]], outcomes
    engine = create_registry_engine(database_url)
    try:
        assert revisions(engine) == [head]
        assert tables(engine) == TABLES
    finally:
        engine.dispose()


def test_schema_from_a_newer_release_is_refused_with_the_fix(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    migrations.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")

    with pytest.raises(SchemaMismatch, match="ffff") as opened:
        open_registry(database_url, tmp_path)
    assert "upgrade problem-registry" in str(opened.value)
    with pytest.raises(SchemaMismatch, match="upgrade problem-registry"):
        migrations.upgrade(engine)
    with pytest.raises(SchemaMismatch, match="upgrade problem-registry"):
        migrations.schema_state(engine)

    assert revisions(engine) == ["ffff"]  # refused, not "repaired"
    assert tables(engine) == TABLES


def test_tables_without_a_revision_are_refused_not_overwritten(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """A database that is not (or no longer knows it is) a registry is never migrated over."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")

    with pytest.raises(SchemaMismatch, match="holds tables but no problem-registry schema"):
        open_registry(database_url, tmp_path)

    assert tables(engine) == {"someone_elses"}


def test_registry_whose_revision_was_lost_is_refused(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    migrations.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM alembic_version")

    with pytest.raises(SchemaMismatch, match="no problem-registry schema revision"):
        open_registry(database_url, tmp_path)
    assert revisions(engine) == []


def test_downgrade_to_base_then_upgrade_gives_a_working_registry(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    with open_registry(database_url, tmp_path) as registry:
        registry.problems.add("hats")

    down = migrations.downgrade(engine, "base")
    assert down.current is None
    assert tables(engine) == set()
    assert revisions(engine) == []

    # An empty database again: the next open recreates the schema by itself.
    with open_registry(database_url, tmp_path) as registry:
        assert registry.problems.list() == []
        registry.problems.add("hats")
        assert [p.slug for p in registry.problems.list()] == ["hats"]
    assert revisions(engine) == [migrations.head_revision()]
    assert migrations.upgrade(engine).migrated is False


def test_migrations_are_found_in_the_checkout_or_the_wheel() -> None:
    folder = migrations.alembic_dir()

    assert (folder / "env.py").is_file()
    assert any((folder / "versions").glob("0001_*.py"))
    assert migrations.head_revision()


def test_head_revision_constant_is_the_scripts_head() -> None:
    """The constant that lets a command skip importing Alembic names the newest migration."""
    assert migrations.head_revision() == migrations.HEAD_REVISION


def test_opening_a_current_registry_does_not_import_alembic(
    database_url: str, tmp_path: Path
) -> None:
    """Start-up of every command: a schema already at head is checked with plain SQL (issue 7)."""
    open_registry(database_url, tmp_path).close()
    probe = (
        "import sys\n"
        "from problem_registry.store.registry import Registry\n"
        f"Registry.open(url={database_url!r}, patterns_dir={str(tmp_path / 'p')!r}, user='t')"
        ".problems.list()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako', 'pygments'}))\n"
    )
    outcome = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )

    assert outcome.returncode == 0, outcome.stderr
    assert outcome.stdout.strip() == "[]"


# --- the core stays free of UI, plotting and test libraries ----------------------------------

BANNED = ("typer", "rich", "pytest", "matplotlib", "_pytest", "click")
# The layers allowed to use them (the CLI, the pytest plugin and its pytest_* helpers, charts and
# reports); every other module of the package is core and is checked, new ones included.
NOT_CORE = ("cli", "plugin", "charts", "gallery", "report", "demo")


def core_modules() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(problem_registry.__path__, "problem_registry."):
        parts = info.name.split(".")
        if parts[1] in NOT_CORE or parts[1].startswith(("pytest", "_pytest", "_alembic")):
            continue
        found.append(info.name)
    return sorted(found)


def test_core_modules_import_no_ui_plotting_or_test_library() -> None:
    modules = core_modules()
    assert {"problem_registry.store.registry", "problem_registry.store.patterns"} <= set(modules)
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"banned = {set(BANNED)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in banned)))\n"
    )
    outcome = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )

    assert outcome.returncode == 0, outcome.stderr
    assert json.loads(outcome.stdout) == [], modules


def test_new_loader_kinds_are_stored_and_a_downgrade_that_cannot_hold_them_is_refused(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """0004 (issue 18): an endpoint version with its options is stored; going back to 0003,
    whose CHECK allows only python and predictions, is refused with nothing lost."""
    from problem_registry.enums import LoaderKind

    with open_registry(database_url, tmp_path) as registry:
        registry.models.register(
            "served",
            "v1",
            loader="http://127.0.0.1:1/v2/models/served",
            loader_kind=LoaderKind.endpoint,
            options={"protocol": "v2", "batch": 8},
        )
        assert registry.models.get("served", "v1").loader_options == {"protocol": "v2", "batch": 8}
    with pytest.raises(RuntimeError, match="cannot hold"):
        migrations.downgrade(engine, "0003")
    assert revisions(engine) == [migrations.head_revision()]
    with open_registry(database_url, tmp_path) as registry:
        assert registry.models.get("served", "v1").loader_kind == "endpoint"
