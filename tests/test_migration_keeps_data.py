"""Migrations keep data (issue 6, item 4): a registry filled at revision 0001 upgrades to head.

The fixture (``tests/fixtures/registry-0001.sqlite`` and its pattern store, made by
``tests/fixtures/make_registry_0001.py``) was written at the first schema revision. Today 0001 is
also the head, so the upgrade has nothing to do; the test guards every future revision: each row of
every table of 0001 must still be there, with the same value in every column both schemas have.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from problem_registry.store import migrations
from problem_registry.store.engines import create_registry_engine
from problem_registry.store.integrity import check
from problem_registry.store.registry import Registry

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCRIPT = str(Path(sys.executable).parent / "problem-registry")
# What the fixture holds, as its script wrote it: a change here means the fixture changed.
ROWS_AT_0001 = {
    "problem": 3,
    "pattern_file": 8,
    "pattern": 9,
    "expected_label": 7,
    "model_version": 2,
    "model_metric": 3,
    "run": 2,
    "result": 16,
}

Dump = dict[str, tuple[list[str], list[tuple[object, ...]]]]


def _copy_fixture(tmp_path: Path) -> tuple[str, Path]:
    database = tmp_path / "registry.db"
    shutil.copyfile(FIXTURES / "registry-0001.sqlite", database)
    shutil.copytree(FIXTURES / "registry-0001-patterns", tmp_path / "patterns")
    return f"sqlite:///{database}", tmp_path / "patterns"


def _dump(url: str) -> Dump:
    """Every row of every table, sorted, by column name."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = sorted(sa.inspect(connection).get_table_names())
            dump: Dump = {}
            for name in names:
                result = connection.exec_driver_sql(f'SELECT * FROM "{name}"')
                dump[name] = (list(result.keys()), sorted(map(tuple, result.all()), key=repr))
            return dump
    finally:
        engine.dispose()


def _columns(dump: Dump, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    names, rows = dump[table]
    return sorted((tuple(row[names.index(c)] for c in columns) for row in rows), key=repr)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_registry_from_revision_0001_upgrades_to_head_with_nothing_lost(tmp_path: Path) -> None:
    url, patterns = _copy_fixture(tmp_path)
    before = _dump(url)
    assert before["alembic_version"][1] == [("0001",)]
    assert {name: len(rows) for name, (_c, rows) in before.items()} == ROWS_AT_0001 | {
        "alembic_version": 1
    }

    upgraded = _cli("--url", url, "--patterns-dir", str(patterns), "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    # Issue 17: every pattern file's bytes are copied into the database by the upgrade.
    assert f"copied {ROWS_AT_0001['pattern_file']} pattern file(s)" in upgraded.stderr
    after = _dump(url)
    assert len(after["pattern_blob"][1]) == ROWS_AT_0001["pattern_file"]

    assert after["alembic_version"][1] == [(migrations.head_revision(),)]
    for table, (columns, rows) in before.items():
        if table == "alembic_version":
            continue
        assert table in after, f"the upgrade dropped table {table}"
        kept = [c for c in columns if c in after[table][0]]
        assert len(after[table][1]) == len(rows), table
        assert _columns(after, table, kept) == _columns(before, table, kept), table

    # A few values read back through the API, not just the tables.
    with Registry.open(url=url, patterns_dir=patterns) as registry:
        assert [p.slug for p in registry.problems.list()] == ["animals", "numbers", "threes"]
        champion = registry.models.champion("toy")
        assert champion is not None and champion.version == "v1"
        kinds = {pattern.expect["kind"] for pattern in registry.patterns.list()}
        assert kinds == {"exact", "any", "not", "range"}
        report = check(registry)
        assert report.ok, [finding.message for finding in report.errors]
        assert report.warnings == []  # nothing left to upload: the upgrade copied it all
        assert report.files_checked == ROWS_AT_0001["pattern_file"]
    checked = _cli("--url", url, "--patterns-dir", str(patterns), "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_registry_from_revision_0001_downgrades_to_base_and_back(tmp_path: Path) -> None:
    url, _patterns = _copy_fixture(tmp_path)
    engine = create_registry_engine(url)
    try:
        migrations.upgrade(engine)
        assert migrations.downgrade(engine, "base").current is None
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrations.upgrade(engine).current == migrations.head_revision()
    finally:
        engine.dispose()


def test_an_upgrade_made_without_the_files_is_completed_where_they_are(tmp_path: Path) -> None:
    """Issue 17: a runner with an empty folder upgrades first; the tester's `check` then puts
    the content in, and a replay from an empty folder reads it from the database."""
    url, patterns = _copy_fixture(tmp_path)
    engine = create_registry_engine(url)
    try:
        state = migrations.upgrade(engine, patterns_dir=tmp_path / "empty")
    finally:
        engine.dispose()
    assert (state.content_copied, state.content_missing) == (0, ROWS_AT_0001["pattern_file"])
    with Registry.open(url=url, patterns_dir=patterns) as registry:
        report = check(registry)
        assert report.ok
        assert [w.code for w in report.warnings] == ["content-uploaded"] * 8
    with Registry.open(url=url, patterns_dir=tmp_path / "elsewhere") as registry:
        assert check(registry).warnings == []
