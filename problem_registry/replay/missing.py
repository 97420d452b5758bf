"""Which (model version, pattern file) pairs have no result yet: the SQL behind replay.

Everything here is a query whose answer is bounded by the number of *files* (15,000 at full
scale), never by the number of results (1.5 M): the pairs themselves are fetched a chunk of files
at a time, so replay's memory does not grow with the number of versions or the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.replay.shards import Shard
from problem_registry.store.tables import ModelVersion, Pattern, PatternFile, Problem, Result

# The tables, not the ORM classes: a query naming a mapped class or attribute makes SQLAlchemy
# configure every mapper first, and nothing here reads an ORM object back.
_FILE: sa.Table = PatternFile.__table__  # type: ignore[attr-defined]
_PATTERN: sa.Table = Pattern.__table__  # type: ignore[attr-defined]
_PROBLEM: sa.Table = Problem.__table__  # type: ignore[attr-defined]
_RESULT: sa.Table = Result.__table__  # type: ignore[attr-defined]
_VERSION: sa.Table = ModelVersion.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ActiveFile:
    """A pattern file some pattern (of the problems replayed) uses."""

    id: int
    sha256: str
    kind: str
    extension: str


def active_files(
    session: Session, problem_ids: list[int] | None, shard: Shard | None = None
) -> list[ActiveFile]:
    """The files the patterns of these problems (all when None) use, in id order; with
    ``shard``, only that shard's."""
    active = _active_file_ids(problem_ids, shard).subquery()
    query = (
        sa.select(_FILE.c.id, _FILE.c.sha256, _FILE.c.kind, _FILE.c.extension)
        .where(_FILE.c.id.in_(sa.select(active.c.file_id)))
        .order_by(_FILE.c.id)
    )
    return [ActiveFile(*row) for row in session.execute(query)]


def count_active_files(
    session: Session, problem_ids: list[int] | None, shard: Shard | None = None
) -> int:
    """How many files the patterns of these problems (all when None) use."""
    active = _active_file_ids(problem_ids, shard).subquery()
    return int(session.execute(sa.select(sa.func.count()).select_from(active)).scalar_one())


def stored_counts(
    session: Session,
    version_ids: list[int],
    n_active: int,
    problem_ids: list[int] | None,
    *,
    retry_errored: bool = False,
    shard: Shard | None = None,
) -> dict[int, int]:
    """How many of the replayed files each version holds a result for (0 when none).

    Replay reads from these counts which versions are complete (nothing to do: a CI run with
    nothing new), which hold nothing (everything missing: no anti-join needed) and which are
    partial (only these need the anti-join). Fast path, when every stored file is in use (the
    usual case): a version's results are counted by a range scan of the result table's primary
    key, without looking at files at all. Faster still when the registry is complete (a warm
    replay, every CI run with nothing new): see :func:`_every_version_complete`.
    ``retry_errored``: an errored result counts as missing (``replay --retry-errored``).
    """
    counts = dict.fromkeys(version_ids, 0)
    if not version_ids or not n_active:
        return counts
    query = (
        sa.select(_RESULT.c.model_version_id, sa.func.count())
        .where(_RESULT.c.model_version_id.in_(version_ids))
        .group_by(_RESULT.c.model_version_id)
    )
    if retry_errored:
        query = query.where(_RESULT.c.error.is_(None))
    stored, complete = _every_version_complete(session)
    whole = problem_ids is None and shard is None
    if whole and stored == n_active and complete and not retry_errored:
        return dict.fromkeys(version_ids, n_active)
    if problem_ids is not None or shard is not None or stored != n_active:
        active = _active_file_ids(problem_ids, shard).subquery()
        query = query.where(_RESULT.c.file_id.in_(sa.select(active.c.file_id)))
    counts.update(session.execute(query).all())
    return counts


def _every_version_complete(session: Session) -> tuple[int, bool]:
    """The number of stored files, and whether every version has a result for every one of them.

    A result's key is (version, file), and both are foreign keys, so no version holds more than one
    result per stored file: the results number versions x files exactly when no version lacks any.
    One ``count(*)`` of the whole table tells that: SQLite answers it from the smallest index, where
    counting per version scans the table (docs/performance.md). The three counts are one statement,
    so one snapshot even on PostgreSQL's read committed: a version registered meanwhile cannot make
    them agree falsely.
    """
    count = sa.select(sa.func.count())
    files, versions, results = session.execute(
        sa.select(
            count.select_from(_FILE).scalar_subquery(),
            count.select_from(_VERSION).scalar_subquery(),
            count.select_from(_RESULT).scalar_subquery(),
        )
    ).one()
    return int(files), int(results) == int(versions) * int(files)


def files_with_missing(
    session: Session,
    version_ids: list[int],
    problem_ids: list[int] | None,
    *,
    retry_errored: bool = False,
    shard: Shard | None = None,
) -> tuple[list[int], int]:
    """Ids of the files lacking a result for at least one version, and the number of pairs."""
    if not version_ids:
        return [], 0
    versions, missing = _anti_join(version_ids, retry_errored)
    active = _active_file_ids(problem_ids, shard).subquery()
    query = (
        sa.select(_FILE.c.id, sa.func.count())
        .select_from(_FILE)
        .join(versions, sa.true())
        .where(_FILE.c.id.in_(sa.select(active.c.file_id)), missing)
        .group_by(_FILE.c.id)
        .order_by(_FILE.c.id)
    )
    rows = session.execute(query).all()
    return [file_id for file_id, _ in rows], sum(count for _, count in rows)


def missing_pairs(
    session: Session, version_ids: list[int], low: int, high: int, *, retry_errored: bool = False
) -> list[tuple[int, int]]:
    """(version id, file id) pairs without a result, for file ids in [low, high].

    A range rather than an ``IN`` list: no limit on the number of bound parameters, whatever the
    batch size. The caller drops files of the range that are not its to replay.
    """
    if not version_ids:
        return []
    versions, missing = _anti_join(version_ids, retry_errored)
    query = (
        sa.select(versions.c.id, _FILE.c.id)
        .select_from(_FILE)
        .join(versions, sa.true())
        .where(_FILE.c.id.between(low, high), missing)
        .order_by(_FILE.c.id, versions.c.id)
    )
    return [(v, f) for v, f in session.execute(query)]


def stored_in_range(
    session: Session, version_ids: list[int], low: int, high: int
) -> dict[int, int]:
    """How many results each version holds for file ids in [low, high] (absent: none); a range
    scan of the result table's primary key."""
    query = (
        sa.select(_RESULT.c.model_version_id, sa.func.count())
        .where(
            _RESULT.c.model_version_id.in_(version_ids),
            _RESULT.c.file_id.between(low, high),
        )
        .group_by(_RESULT.c.model_version_id)
    )
    return {int(v): int(n) for v, n in session.execute(query)}


def pattern_names(session: Session, file_ids: list[int]) -> dict[int, list[str]]:
    """``slug/original_name`` of every pattern using each file: how a refusal names them."""
    query = (
        sa.select(_PATTERN.c.file_id, _PROBLEM.c.slug, _PATTERN.c.original_name)
        .join(_PROBLEM, _PROBLEM.c.id == _PATTERN.c.problem_id)
        .where(_PATTERN.c.file_id.in_(file_ids))
        .order_by(_PROBLEM.c.slug, _PATTERN.c.id)
    )
    names: dict[int, list[str]] = {}
    for file_id, slug, original in session.execute(query):
        names.setdefault(file_id, []).append(f"{slug}/{original}")
    return names


def _active_file_ids(problem_ids: list[int] | None, shard: Shard | None = None) -> Any:
    query = sa.select(_PATTERN.c.file_id).distinct()
    if problem_ids is not None:
        query = query.where(_PATTERN.c.problem_id.in_(problem_ids))
    if shard is not None:
        query = query.where(shard.clause(_PATTERN.c.file_id))
    return query


def _anti_join(version_ids: list[int], retry_errored: bool = False) -> tuple[Any, Any]:
    """The versions, and the condition "this (version, file) has no result" (or only an errored
    one, with ``retry_errored``)."""
    versions = sa.select(_VERSION.c.id).where(_VERSION.c.id.in_(version_ids)).subquery()
    stored = sa.exists().where(
        _RESULT.c.model_version_id == versions.c.id, _RESULT.c.file_id == _FILE.c.id
    )
    if retry_errored:
        stored = stored.where(_RESULT.c.error.is_(None))
    return versions, ~stored
