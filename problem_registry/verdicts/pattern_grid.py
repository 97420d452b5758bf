"""Every pattern x every version: the grid of which patterns a version fixed or broke."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from problem_registry.expectations import Expectation
from problem_registry.refs import RefLike
from problem_registry.store.engines import driver_rows
from problem_registry.store.expectation_rows import expectation_of
from problem_registry.store.registry import Registry
from problem_registry.store.tables import ModelVersion, PatternFile
from problem_registry.verdicts.aggregation import (
    LABEL,
    PATTERN,
    RESULT,
    problem_rows,
    select_versions,
)
from problem_registry.verdicts.rows import PatternResult
from problem_registry.verdicts.scoring import correct_expression


def pattern_results(
    registry: Registry,
    *,
    problems: Sequence[str] | None = None,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
) -> list[PatternResult]:
    """Every pattern x every selected version, missing results included (``answered=False``).

    Sorted by problem, pattern id, then version order: the grid of which patterns each version
    fixed or broke. Meant for a few problems (a gate, a chart), not the whole registry at once.
    """
    with registry.reading() as session:
        chosen = select_versions(session, model=model, versions=versions)
        problems_read = problem_rows(session, problems)
        if not chosen or not problems_read:
            return []
        # Ordered as returned: problem (by slug), pattern id, version (ids are registration
        # order). The driver's own tuples: SQLAlchemy's row processing and a dict per row cost
        # more than the query itself once 1.5 M rows pass through here.
        rank = {p.id: i for i, p in enumerate(problems_read)}
        grid = _grid_query([v.id for v in chosen], list(rank))
        rows = driver_rows(session.connection(), grid)
        facts = _pattern_facts(session, {p.id: p.slug for p in problems_read})
    # What is the pattern's or the version's is looked up, not read again on each of the rows:
    # strings made per row and column were most of this read's time.
    names = {v.id: (v.name, v.version) for v in chosen}
    problem_rank = {pattern_id: rank[fact[0]] for pattern_id, fact in facts.items()}
    rows.sort(key=lambda row: problem_rank[row[0]])  # stable: only the problems' order changes
    truth, answer = _TRUTH, _ANSWERED
    loads = json.loads
    results: list[PatternResult] = []
    for (
        pattern_id,
        version_id,
        answered,
        predicted,
        value,
        confidence,
        error,
        correct,
        scores,
    ) in rows:
        _problem_id, slug, file, sha256, polarity, expected, expectation = facts[pattern_id]
        model_name, version = names[version_id]
        # Parsed per row, not cached by text: a model's probabilities almost never repeat, and
        # a cache of distinct texts was slower while holding every parsed dict.
        p_expected = None if scores is None else expectation.probability(loads(scores))
        results.append(
            PatternResult(
                slug,
                pattern_id,
                file,
                sha256,
                polarity,
                expected,
                version_id,
                model_name,
                version,
                answer[answered],
                predicted,
                value,
                confidence,
                error,
                truth[correct],
                p_expected,
            )
        )
    return results


# A driver's booleans as Python's: SQLite hands over 0 / 1, PostgreSQL True / False; NULL is
# "no result". A lookup, not a call per row.
_TRUTH: dict[Any, bool | None] = {None: None, 0: False, 1: True}
_ANSWERED: dict[Any, bool] = {0: False, 1: True}  # ``file_id IS NOT NULL``: never NULL


def _grid_query(version_ids: list[int], problem_ids: list[int]) -> Any:
    versions = (
        sa.select(col(ModelVersion.id)).where(col(ModelVersion.id).in_(version_ids)).subquery()
    )
    result = RESULT.alias("r")
    label = LABEL.alias("el")
    joined = (
        PATTERN.join(versions, sa.true())
        .outerjoin(
            result,
            sa.and_(
                result.c.model_version_id == versions.c.id, result.c.file_id == PATTERN.c.file_id
            ),
        )
        .outerjoin(
            label,
            sa.and_(label.c.pattern_id == PATTERN.c.id, label.c.label == result.c.predicted),
        )
    )
    correct = sa.case(
        (result.c.file_id.is_(None), None), else_=correct_expression(PATTERN, result, label)
    )
    return (
        sa.select(
            PATTERN.c.id.label("pattern_id"),
            versions.c.id.label("version_id"),
            result.c.file_id.is_not(None).label("answered"),
            result.c.predicted.label("predicted"),
            result.c.value.label("value"),
            result.c.confidence.label("confidence"),
            result.c.error.label("error"),
            correct.label("correct"),
            result.c.scores.label("scores"),
        )
        .select_from(joined)
        .where(PATTERN.c.problem_id.in_(problem_ids))
        .order_by(PATTERN.c.problem_id, PATTERN.c.id, versions.c.id)
    )


def _pattern_facts(
    session: Session, slugs: dict[int, str]
) -> dict[int, tuple[int, str, str, str, str, str, Expectation]]:
    """Pattern id -> (problem id, problem slug, file name, sha256, polarity, expectation text,
    expectation) for the patterns of the problems in ``slugs`` (problem id -> slug)."""
    files = PatternFile.__table__  # type: ignore[attr-defined]
    patterns = list(
        session.execute(
            sa.select(
                PATTERN.c.id,
                PATTERN.c.problem_id,
                PATTERN.c.original_name,
                files.c.sha256,
                PATTERN.c.polarity,
                PATTERN.c.expect_kind,
                PATTERN.c.expect_min,
                PATTERN.c.expect_max,
            )
            .join(files, files.c.id == PATTERN.c.file_id)
            .where(PATTERN.c.problem_id.in_(list(slugs)))
        )
    )
    labels: dict[int, list[str]] = {}
    query = (
        sa.select(LABEL.c.pattern_id, LABEL.c.label)
        .join(PATTERN, PATTERN.c.id == LABEL.c.pattern_id)
        .where(PATTERN.c.problem_id.in_(list(slugs)))
    )
    for pattern_id, text in session.execute(query):
        labels.setdefault(pattern_id, []).append(text)
    facts = {}
    for p in patterns:
        expectation = expectation_of(p, labels.get(p.id, []))
        facts[p.id] = (
            p.problem_id,
            slugs[p.problem_id],
            p.original_name,
            p.sha256,
            p.polarity,
            expectation.describe(),
            expectation,
        )
    return facts
