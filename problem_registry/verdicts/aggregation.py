"""The aggregation behind every error rate: problems x versions counted in one query per backend.

A 1.5 M-result registry is read as one GROUP BY, driven the way each backend is fast (see
:func:`aggregates`), and handed over as the driver's tuples, never as ORM objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from problem_registry.enums import Polarity
from problem_registry.errors import ModelNotFound
from problem_registry.refs import ModelRef, RefLike
from problem_registry.store.engines import driver_rows
from problem_registry.store.problem_models import models_by_problem
from problem_registry.store.problems import find_problem
from problem_registry.store.registry import Registry
from problem_registry.store.tables import ExpectedLabel, ModelVersion, Pattern, Problem, Result
from problem_registry.verdicts.confusion import Confusion, confusions
from problem_registry.verdicts.rows import VersionRow
from problem_registry.verdicts.scoring import correct_expression

# Core tables: every query here reads columns, never ORM objects.
PATTERN = Pattern.__table__  # type: ignore[attr-defined]
RESULT = Result.__table__  # type: ignore[attr-defined]
LABEL = ExpectedLabel.__table__  # type: ignore[attr-defined]


# What the error-rate aggregation is given on PostgreSQL (see aggregates); the benchmark gives
# its raw floor query the same, so the two are compared on equal terms.
POSTGRES_WORK_MEM = "64MB"
# Versions from which SQLite aggregates them in two halves at once (see _aggregates_in_halves).
SPLIT_FROM = 8


Tally = tuple[int, int, int, int, int]
"""answered, errored, right, positives answered, positives right: one problem on one version."""


NO_RESULTS: Tally = (0, 0, 0, 0, 0)


@dataclass(frozen=True)
class ProblemRow:
    id: int
    slug: str
    title: str
    status: str
    max_error_rate: float | None
    allowed_regressions: int
    positives: int  # patterns
    negatives: int


@dataclass
class Gathered:
    """Everything the rows are made of, read in one transaction."""

    problems: list[ProblemRow]
    versions: list[VersionRow]
    tallies: list[tuple[Any, ...]]  # (problem id, version id, *Tally), in no particular order
    matrices: dict[tuple[int, int], Confusion] | None
    # The models each problem belongs to (issue 19, item 3); a problem absent: every model.
    models: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def versions_of(self, problem: ProblemRow) -> list[VersionRow]:
        """The versions a problem is judged on: its models', or all when it names none."""
        names = self.models.get(problem.id)
        if not names:
            return self.versions
        return [version for version in self.versions if version.name in names]


def select_versions(
    session: Session, *, model: str | None = None, versions: Sequence[RefLike] | None = None
) -> list[VersionRow]:
    """Versions in registration order: all, one model's, or the refs given."""
    # Columns, not ORM entities: a SQLModel instance is costly to load (pydantic's private
    # attributes), and every report reads every version and every problem.
    versions_table = ModelVersion.__table__  # type: ignore[attr-defined]
    query = sa.select(
        versions_table.c.id,
        versions_table.c.name,
        versions_table.c.version,
        versions_table.c.is_champion,
    ).order_by(versions_table.c.id)
    if model is not None:
        query = query.where(versions_table.c.name == model)
    rows = [VersionRow(*row) for row in session.execute(query)]
    if model is not None and not rows:
        raise ModelNotFound(f"no model named {model!r}; see `problem-registry model list`")
    if versions is not None:
        wanted = [ModelRef.of(ref) for ref in versions]
        known = {ModelRef(row.name, row.version) for row in rows}
        missing = [ref for ref in wanted if ref not in known]
        if missing:
            raise missing[0].not_found()
        rows = [row for row in rows if ModelRef(row.name, row.version) in set(wanted)]
    return rows


def gather(
    registry: Registry,
    model: str | None,
    versions: Sequence[RefLike] | None,
    problems: Sequence[str] | None,
    *,
    confusion: bool,
) -> Gathered:
    with registry.reading() as session:
        chosen = select_versions(session, model=model, versions=versions)
        found = problem_rows(session, problems)
        problem_ids = None if problems is None else [p.id for p in found]
        counts = pattern_counts(session, problem_ids)
        version_ids = [v.id for v in chosen]
        # Every version: no IN list for the database to check on each of 1.5 M rows.
        wanted = None if model is None and versions is None else version_ids
        if not version_ids:
            tallies = []
        elif session.get_bind().dialect.name == "sqlite" and len(version_ids) >= SPLIT_FROM:
            tallies = _aggregates_in_halves(registry, session, version_ids, problem_ids)
        else:
            tallies = aggregates(session, wanted, problem_ids)
        matrices = confusions(session, version_ids, problem_ids) if confusion else None
        links = models_by_problem(session)
    rows = []
    for problem in found:
        positives, negatives = counts.get(problem.id, (0, 0))
        rows.append(
            ProblemRow(
                problem.id,
                problem.slug,
                problem.title,
                problem.status,
                problem.max_error_rate,
                problem.allowed_regressions,
                positives,
                negatives,
            )
        )
    return Gathered(rows, chosen, tallies, matrices, links)


def problem_rows(session: Session, slugs: Sequence[str] | None) -> list[Any]:
    """Problems by slug, as rows with a Problem's attributes (columns, not ORM entities: see
    :func:`select_versions`); a slug that names no problem raises ProblemNotFound."""
    problems = Problem.__table__  # type: ignore[attr-defined]
    columns = ("id", "slug", "title", "status", "max_error_rate", "allowed_regressions")
    query = sa.select(*(problems.c[name] for name in columns)).order_by(problems.c.slug)
    if slugs is None:
        return list(session.execute(query))
    wanted = set(slugs)
    # One query for all, not one per slug (1,000 problems: 0.2 s of a gate's time).
    found = [row for row in session.execute(query) if row.slug in wanted]
    if len(found) < len(wanted):
        known = {row.slug for row in found}
        for slug in sorted(wanted - known, key=str):
            find_problem(session, slug)  # raises ProblemNotFound, worded in one place
    return found


def pattern_counts(session: Session, problem_ids: list[int] | None) -> dict[int, tuple[int, int]]:
    query = sa.select(PATTERN.c.problem_id, PATTERN.c.polarity, sa.func.count()).group_by(
        PATTERN.c.problem_id, PATTERN.c.polarity
    )
    if problem_ids is not None:
        query = query.where(PATTERN.c.problem_id.in_(problem_ids))
    counts: dict[int, list[int]] = {}
    for problem_id, polarity, count in session.execute(query):
        slot = 0 if polarity == Polarity.positive.value else 1
        counts.setdefault(problem_id, [0, 0])[slot] = int(count)
    return {key: (value[0], value[1]) for key, value in counts.items()}


def _aggregates_in_halves(
    registry: Registry, session: Session, version_ids: list[int], problem_ids: list[int] | None
) -> list[tuple[Any, ...]]:
    """:func:`aggregates` of each half of the versions, the later half in a thread on its own
    connection: SQLite walks one query on one core and lets go of Python's lock meanwhile, so
    the two halves take ~0.7x the time of the whole (docs/performance.md)."""
    middle = len(version_ids) // 2

    def later() -> list[tuple[Any, ...]]:
        with registry.reading() as own:
            return aggregates(own, version_ids[middle:], problem_ids)

    with ThreadPoolExecutor(max_workers=1) as thread:
        pending = thread.submit(later)
        earlier = aggregates(session, version_ids[:middle], problem_ids)
        return earlier + pending.result()


def aggregates(
    session: Session, version_ids: list[int] | None, problem_ids: list[int] | None
) -> list[tuple[Any, ...]]:
    """(problem, version, answered, errored, right, positives answered, positives right) rows.

    One aggregation over every result, driven the way each backend is fast (1.5 M results at
    full scale), its rows fetched as the driver's tuples
    (:func:`~problem_registry.store.engines.driver_rows`):

    - PostgreSQL hash-joins the results to their patterns, in parallel, and groups by problem
      and version, the positives counted by conditional sums (grouping by polarity too sorts
      1.5 M rows on a text key: ~1.3x slower). It is given the memory to group 100,000
      (problem, version) pairs in a hash table rather than by an on-disk sort (~0.8x the time);
    - SQLite has neither hash joins nor hash aggregation: started from the results it looks each
      pattern up and then sorts 1.5 M rows to group them. Instead it walks versions x patterns
      along ``ix_pattern_scoring`` (problem order, every column scoring reads), so the groups
      arrive already in GROUP BY (version, problem, polarity) order, and finds each result by its
      primary key; an outer GROUP BY folds the two polarities (200,000 rows, not 1.5 M). A pair
      without a result meets the LEFT JOIN with NULLs: ``count(file_id)`` does not count it, and
      every sum adds 0 for it, exactly as when the row was never joined.
    """
    label = LABEL.alias("el")
    errored = sa.case((RESULT.c.error.is_not(None), 1), else_=0)
    correct = correct_expression(PATTERN, RESULT, label)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        versions = ModelVersion.__table__  # type: ignore[attr-defined]
        version_id = versions.c.id
        source = versions.join(PATTERN, sa.true()).outerjoin(
            RESULT,
            sa.and_(RESULT.c.model_version_id == version_id, RESULT.c.file_id == PATTERN.c.file_id),
        )
    else:
        version_id = RESULT.c.model_version_id
        source = RESULT.join(PATTERN, PATTERN.c.file_id == RESULT.c.file_id)
    source = source.outerjoin(
        label, sa.and_(label.c.pattern_id == PATTERN.c.id, label.c.label == RESULT.c.predicted)
    )
    if sqlite:
        inner = (
            sa.select(
                PATTERN.c.problem_id.label("problem_id"),
                version_id.label("version_id"),
                (PATTERN.c.polarity == Polarity.positive.value).label("positive"),
                sa.func.count(RESULT.c.file_id).label("answered"),
                sa.func.sum(errored).label("errored"),
                sa.func.sum(correct).label("right"),
            )
            .select_from(source)
            # The order of the walk: no sort, and one correctness sum per row.
            .group_by(version_id, PATTERN.c.problem_id, PATTERN.c.polarity)
        )
        by_polarity = _filtered(inner, version_id, version_ids, problem_ids).subquery()
        positive = by_polarity.c.positive == sa.true()
        query = sa.select(
            by_polarity.c.problem_id,
            by_polarity.c.version_id,
            sa.func.sum(by_polarity.c.answered),
            sa.func.sum(by_polarity.c.errored),
            sa.func.sum(by_polarity.c.right),
            sa.func.sum(sa.case((positive, by_polarity.c.answered), else_=0)),
            sa.func.sum(sa.case((positive, by_polarity.c.right), else_=0)),
        ).group_by(by_polarity.c.version_id, by_polarity.c.problem_id)
    else:
        positive = PATTERN.c.polarity == Polarity.positive.value
        sums = [errored, correct, sa.case((positive, 1), else_=0), sa.case((positive, correct))]
        query = _filtered(
            sa.select(
                PATTERN.c.problem_id,
                version_id,
                sa.func.count(),
                # Cast: PostgreSQL sums integers as numeric, which psycopg would hand over as
                # Decimal; and a problem without positives sums NULLs.
                *(sa.cast(sa.func.coalesce(sa.func.sum(n), 0), sa.Integer) for n in sums),
            )
            .select_from(source)
            .group_by(version_id, PATTERN.c.problem_id),
            version_id,
            version_ids,
            problem_ids,
        )
    connection = session.connection()
    if not sqlite:
        # 100,000 groups need ~30 MB; PostgreSQL's default work_mem (4 MB) makes it sort 1.5 M
        # rows on disk instead. Only for this transaction, and never lowered.
        connection.exec_driver_sql(
            "SELECT set_config('work_mem', %(mem)s, true) WHERE"
            " pg_size_bytes(current_setting('work_mem')) < pg_size_bytes(%(mem)s)",
            {"mem": POSTGRES_WORK_MEM},
        )
    return driver_rows(connection, query)


def _filtered(
    query: Any, version_id: Any, version_ids: list[int] | None, problem_ids: list[int] | None
) -> Any:
    if version_ids is not None:
        query = query.where(version_id.in_(version_ids))
    if problem_ids is not None:
        query = query.where(PATTERN.c.problem_id.in_(problem_ids))
    return query
