"""(g) on PostgreSQL: the history copied into a throwaway server, the floor and the report timed.

Issue 7 sets the report's target "the same on PostgreSQL", so (g) and ``report --json`` are
measured there too, on the very rows measured on SQLite: every table is bulk-copied (``COPY``)
from the finished SQLite history into a database whose schema the registry's own migrations made,
in foreign-key order, and each ``id`` sequence is moved past the copied rows so the registry stays
writable. Building the history a second time through the API would take minutes and could differ
in the ~1% replayed; a copy takes seconds per million results and cannot differ.

The server is ``tests.throwaway_postgres`` (the test suite's): initdb into a temporary
folder, loopback only, stopped and deleted at the end. The floor is ``history.ERROR_RATES_SQL``
through psycopg alone, with the ``work_mem`` the report gives itself; the report is the CLI as a
child, start-up included, and the same CLI on an empty registry of the same server measures what
start-up, connecting and the empty queries cost on their own; importing the libraries the CLI
needs there (SQLAlchemy, SQLModel, psycopg) is timed alone too, the part no code of ours can cut.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from history import ERROR_RATES_SQL, History
from measure import Child, ChildFailed, cli, run_child

from problem_registry.store.registry import Registry
from problem_registry.store.tables import SQLModel
from problem_registry.verdicts.aggregation import POSTGRES_WORK_MEM

# The throwaway server is test tooling (tests/), found from the checkout the benchmark runs in.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.throwaway_postgres import ServerUnavailable, throwaway_server


@dataclass(frozen=True)
class PostgresTimes:
    """Medians of interleaved rounds (floor, report, empty report), each with its own rounds."""

    server_version: str
    copy_s: float
    rows_copied: int
    raw_group_by_s: float
    groups: int
    report_json_s: float
    report_json_empty_s: float
    imports_s: float
    rounds: dict[str, list[float]]
    load: tuple[float, float]  # 1-minute load average before and after the rounds


def measure(history: History, repeats: int) -> PostgresTimes | str:
    """Time (g) and ``report --json`` of ``history`` on a throwaway PostgreSQL server; or why not
    (not installed, would not start), so the run goes on and says so."""
    try:
        with throwaway_server() as server:
            folder = history.database.parent / "postgresql"
            folder.mkdir(exist_ok=True)
            url, empty = server.create_database(), server.create_database()
            Registry.open(url=empty, patterns_dir=folder / "patterns", user="benchmark").close()
            started = time.perf_counter()
            copied = copy_registry(history.database, url, folder / "patterns")
            copy_s = time.perf_counter() - started
            return _timed(url, empty, folder, repeats, copy_s, copied)
    except ServerUnavailable as exc:
        return str(exc).splitlines()[0]


def _timed(
    url: str, empty: str, folder: Path, repeats: int, copy_s: float, copied: int
) -> PostgresTimes:
    rounds: dict[str, list[float]] = {"raw": [], "report": [], "empty": [], "imports": []}
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        row = connection.execute("SHOW server_version").fetchone()
        version = str(row[0]).split()[0] if row else "?"  # "15.18", without the distribution's
        connection.execute(f"SET work_mem = '{POSTGRES_WORK_MEM}'")  # the report's own setting
        groups = len(connection.execute(ERROR_RATES_SQL).fetchall())  # warm: every page cached
        _report(url, folder, groups)
        # Interleaved, so a neighbour's burst of work slows one round of each, not one column.
        load_before = os.getloadavg()[0]
        for _ in range(max(repeats, 1)):
            started = time.perf_counter()
            connection.execute(ERROR_RATES_SQL).fetchall()
            rounds["raw"].append(time.perf_counter() - started)
            rounds["report"].append(_report(url, folder, groups).seconds)
            rounds["empty"].append(_report(empty, folder, 0).seconds)
            rounds["imports"].append(run_child(LIBRARIES, cwd=folder).seconds)
    median = {key: statistics.median(values) for key, values in rounds.items()}
    return PostgresTimes(
        version,
        copy_s,
        copied,
        median["raw"],
        groups,
        median["report"],
        median["empty"],
        median["imports"],
        rounds,
        (load_before, os.getloadavg()[0]),
    )


LIBRARIES = [sys.executable, "-c", "import sqlalchemy, sqlmodel, psycopg"]


def _report(url: str, folder: Path, rows: int) -> Child:
    """``report --json`` as a child; checked to have written one line per (problem, version)."""
    child = run_child([cli(), "--url", url, "report", "--json"], cwd=folder)
    written = child.stdout.count("\n{")  # a row per line, each an object
    if written != rows:
        raise ChildFailed(f"report --json wrote {written} rows, the raw GROUP BY {rows}")
    return child


def conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    plain = sa.engine.make_url(url).set(drivername="postgresql")
    return plain.render_as_string(hide_password=False)


def copy_registry(database: Path, url: str, patterns_dir: Path) -> int:
    """Copy every row of the SQLite registry ``database`` into the empty database ``url``.

    Returns the number of rows copied. The registry opens ``url`` first, so the schema (indexes,
    constraints, the migration's version) is exactly what a user's PostgreSQL registry has.
    """
    Registry.open(url=url, patterns_dir=patterns_dir, user="benchmark").close()
    copied = 0
    with (
        closing(sqlite3.connect(database)) as source,
        psycopg.connect(conninfo(url)) as target,
    ):
        for table in SQLModel.metadata.sorted_tables:  # parents before children
            columns = ", ".join(column.name for column in table.columns)
            with (
                target.cursor() as cursor,
                cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy,
            ):
                # Text format: SQLite's 0/1 booleans, JSON text and timestamps parse as they are.
                for row in source.execute(f"SELECT {columns} FROM {table.name}"):
                    copy.write_row(row)
                    copied += 1
            if "id" in table.columns and table.columns["id"].autoincrement in (True, "auto"):
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                    f" coalesce(max(id), 0) + 1, false) FROM {table.name}"
                )
    with psycopg.connect(conninfo(url), autocommit=True) as target:
        # What autovacuum does within a minute of a bulk load; measuring before it would measure
        # the planner guessing row counts (as synthetic.py does after its own COPY).
        target.execute("VACUUM ANALYZE")
    return copied
