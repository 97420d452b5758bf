"""A digest of what the registry holds, read in well under a second at 1.5 M results.

Every table is hashed row by row except these: ``result`` (1.5 M rows at the design's scale:
stamped instead, per model version, with counts and sums of its columns), ``result_repeat`` (a
non-deterministic version's further answers, stamped the same way) and ``run`` (bookkeeping no
report draws). A stored result changes only by being inserted, deleted or replaced by a replay
(which writes its run's id), and each of those moves a version's stamp; so two equal digests mean
the same problems, patterns, expectations, versions, metrics, answers and production cases (the
triage page shows those). A built report keeps the digest of what it was drawn from, and a
rebuild of an unchanged registry stops after reading it (issue 19 item 13).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlmodel import SQLModel

from problem_registry.store.registry import Registry

# pattern_blob: the bytes of the files whose sha256 pattern_file already holds (hashed there);
# replay_lease: a running replay's claims, gone once it stores its work.
UNHASHED = frozenset(
    {"result", "result_repeat", "run", "alembic_version", "pattern_blob", "replay_lease"}
)
# Per model version: how many answers, and integer sums that move when any answer is replaced
# (no float sums: PostgreSQL's parallel aggregation may add floats in another order each time).
RESULT_STAMP = """
SELECT model_version_id, count(*), count(error), count(run_id), sum(run_id), max(run_id),
       count(confidence), count(value), sum(length(predicted)), sum(length(error)),
       sum(length(scores))
FROM result GROUP BY model_version_id ORDER BY model_version_id
"""
REPEAT_STAMP = """
SELECT model_version_id, count(*), count(error), sum(repeat), count(value),
       sum(length(predicted)), sum(length(error)), sum(length(scores))
FROM result_repeat GROUP BY model_version_id ORDER BY model_version_id
"""


def registry_digest(registry: Registry) -> str:
    """sha256 over every table a report reads (see the module's docstring), in a fixed order."""
    digest = hashlib.sha256()
    # Through reading(): a damaged or locked database is the same one-line error as any read.
    with registry.reading() as session:
        connection = session.connection()
        for table in SQLModel.metadata.sorted_tables:
            if table.name in UNHASHED:
                continue
            digest.update(f"\0table {table.name}\0".encode())
            order = list(table.primary_key.columns) or list(table.columns)
            for row in connection.execute(sa.select(table).order_by(*order)):
                digest.update(repr(tuple(row)).encode("utf-8", "surrogateescape"))
        digest.update(b"\0results\0")
        for stamp in (RESULT_STAMP, REPEAT_STAMP):
            digest.update(b"\0stamp\0")
            for row in connection.exec_driver_sql(stamp):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()
