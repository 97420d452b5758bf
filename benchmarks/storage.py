"""(f) The storage floor: raw ``sqlite3`` ``executemany`` of the very rows a cold replay stored.

The rows are read back from the replayed registry and inserted into a copy of the registry as it
was before the replay (same schema, same indexes, same pragmas as the tool sets: WAL,
``synchronous = NORMAL``, foreign keys on), in one ``BEGIN IMMEDIATE`` transaction. ``run_id`` is
left NULL, as the copy has no Run to point at.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from problem_registry.replay.results import COLUMNS as STORED_COLUMNS

COLUMNS = tuple(column for column in STORED_COLUMNS if column != "run_id")


@dataclass(frozen=True)
class Storage:
    rows: int
    seconds: float

    @property
    def per_row_us(self) -> float:
        return self.seconds / self.rows * 1e6


def stored_rows(database: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(f"SELECT {', '.join(COLUMNS)} FROM result").fetchall()


def measure(rows: list[tuple[Any, ...]], empty_copy: Path) -> Storage:
    """Time the one-transaction ``executemany`` of ``rows`` into ``empty_copy``."""
    with closing(sqlite3.connect(empty_copy, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        marks = ", ".join("?" for _ in COLUMNS)
        statement = f"INSERT INTO result ({', '.join(COLUMNS)}) VALUES ({marks})"
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(statement, rows)
        connection.execute("COMMIT")
        seconds = time.perf_counter() - started
    return Storage(len(rows), seconds)
