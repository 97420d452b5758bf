"""Every pattern x every version: the grid of which patterns a version fixed or broke."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col

from problem_registry.expectations import Expectation
from problem_registry.refs import ModelRef, RefLike
from problem_registry.store.engines import driver_rows
from problem_registry.store.expectation_rows import expectation_from
from problem_registry.store.registry import Registry
from problem_registry.store.tables import ModelVersion, PatternFile, ResultRepeat
from problem_registry.verdicts.aggregation import (
    LABEL,
    PATTERN,
    RESULT,
    problem_rows,
    select_versions,
)
from problem_registry.verdicts.rows import PatternResult, VersionRow
from problem_registry.verdicts.scoring import correct_expression

REPEAT = ResultRepeat.__table__  # type: ignore[attr-defined]

Facts = tuple[int, str, str, str, str, str, Expectation]
"""A pattern's problem id, problem slug, file name, sha256, polarity, expectation text and
expectation: looked up per row, not read again on each of them."""


@dataclass(frozen=True)
class _Grid:
    """Every (pattern, version) row of a read, with what is the pattern's and the version's."""

    versions: list[VersionRow]
    rows: list[tuple[Any, ...]]  # _grid_query's columns, the driver's own tuples
    facts: dict[int, Facts]


@dataclass(frozen=True)
class _Selection:
    """The versions and problems a read covers, as both reads of this module start."""

    versions: list[VersionRow]
    rank: dict[int, int]  # problem id -> its place in slug order
    slugs: dict[int, str]  # problem id -> slug


def _select(
    session: Session,
    problems: Sequence[str] | None,
    *,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
) -> _Selection | None:
    chosen = select_versions(session, model=model, versions=versions)
    problems_read = problem_rows(session, problems)
    if not chosen or not problems_read:
        return None
    rank = {p.id: i for i, p in enumerate(problems_read)}
    return _Selection(chosen, rank, {p.id: p.slug for p in problems_read})


def _read(
    registry: Registry,
    problems: Sequence[str] | None,
    model: str | None,
    versions: Sequence[RefLike] | None,
) -> _Grid | None:
    with registry.reading() as session:
        selection = _select(session, problems, model=model, versions=versions)
        if selection is None:
            return None
        # Ordered as returned: problem (by slug), pattern id, version (ids are registration
        # order). The driver's own tuples: SQLAlchemy's row processing and a dict per row cost
        # more than the query itself once 1.5 M rows pass through here.
        version_ids = [v.id for v in selection.versions]
        rows = driver_rows(session.connection(), _grid_query(version_ids, list(selection.rank)))
        facts = _pattern_facts(session, selection.slugs)
    return _Grid(selection.versions, _in_problem_order(rows, facts, selection.rank), facts)


def _in_problem_order(
    rows: list[tuple[Any, ...]], facts: dict[int, Facts], rank: dict[int, int]
) -> list[tuple[Any, ...]]:
    """Rows ordered by problem slug: the query orders them by problem id, then pattern, version."""
    problem_rank = {pattern_id: rank[fact[0]] for pattern_id, fact in facts.items()}
    rows.sort(key=lambda row: problem_rank[row[0]])  # stable: only the problems' order changes
    return rows


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
    grid = _read(registry, problems, model, versions)
    return [] if grid is None else _results(grid, grid.rows)


def _results(grid: _Grid, rows: list[tuple[Any, ...]]) -> list[PatternResult]:
    # Strings made per row and column were most of this read's time: the pattern's and the
    # version's are looked up.
    names = {v.id: (v.name, v.version) for v in grid.versions}
    facts, truth, answer = grid.facts, _TRUTH, _ANSWERED
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


# An outcome's code in an OutcomeMatrix.
NO_RESULT, RIGHT, WRONG, ERRORED = 0, 1, 2, 3


@dataclass(frozen=True)
class OutcomeMatrix:
    """One problem's patterns (rows, by id) x versions (columns, registration order), each cell
    an outcome code: right, wrong, errored or no result, nothing of the answer itself.

    What the HTML report reads of every version for its grids and timelines (1.5 M cells at
    1,000 problems x 100 versions): a tuple per cell, then a Python walk over them for the grid
    and again for the timeline, was most of its reading (issue 19 item 13).
    """

    problem: str
    pattern_ids: list[int]
    files: list[str]
    versions: list[VersionRow]
    codes: np.ndarray  # uint8 (patterns, versions)

    @property
    def refs(self) -> list[str]:
        return [v.ref for v in self.versions]

    def changes(self) -> tuple[np.ndarray, np.ndarray]:
        """(right, changed), both (patterns, versions): answered right, and answered with a
        right/wrong that differs from the pattern's own previous answer (an errored answer is
        wrong). A pattern is neither fixed nor broken until a second version has answered it."""
        answered = self.codes != NO_RESULT
        right = self.codes == RIGHT
        columns = np.arange(self.codes.shape[1])
        last = np.maximum.accumulate(np.where(answered, columns, -1), axis=1)
        before = np.full_like(last, -1)
        before[:, 1:] = last[:, :-1]  # each cell's pattern's last answer before it
        was_right = np.take_along_axis(right, np.maximum(before, 0), axis=1)
        return right, answered & (before >= 0) & (was_right != right)


def outcome_matrices(
    registry: Registry, *, problems: Sequence[str], model: str
) -> dict[str, OutcomeMatrix]:
    """Every version of ``model`` x every pattern of ``problems``, one matrix per problem slug."""
    with registry.reading() as session:
        selection = _select(session, problems, model=model)
        if selection is None:
            return {}
        joined, chosen, result, correct = _patterns_by_versions([v.id for v in selection.versions])
        code = sa.case(
            (result.c.file_id.is_(None), NO_RESULT),
            (result.c.error.is_not(None), ERRORED),
            (correct == 1, RIGHT),
            else_=WRONG,
        )
        query = (
            sa.select(PATTERN.c.id, code)
            .select_from(joined)
            .where(PATTERN.c.problem_id.in_(list(selection.rank)))
            .order_by(PATTERN.c.id, chosen.c.id)
        )
        rows = driver_rows(session.connection(), query)
        facts = _pattern_facts(session, selection.slugs)
    width = len(selection.versions)
    # Every pattern x every version, a pattern's versions together: one row of cells each.
    cells = np.array([c for _id, c in rows], dtype=np.uint8).reshape(-1, width)
    ids = [pattern_id for pattern_id, _c in rows[::width]]
    by_problem: dict[str, list[int]] = {}
    for row, pattern_id in enumerate(ids):
        by_problem.setdefault(facts[pattern_id][1], []).append(row)
    return {
        slug: OutcomeMatrix(
            slug,
            [ids[r] for r in taken],
            [facts[ids[r]][2] for r in taken],
            selection.versions,
            cells[taken],
        )
        for slug, taken in by_problem.items()
    }


@dataclass(frozen=True)
class AnswerMatrix:
    """One problem's answers as arrays: what a gate's statistics read, without a row object per
    (pattern, version). Rows are the versions asked for, in that order; columns its patterns."""

    pattern_ids: list[int]
    polarity: list[str]
    correct: np.ndarray  # 1.0 right, 0.0 wrong, nan: no result
    p_expected: np.ndarray  # the probability given to the expected answer; nan: no scores
    scored: np.ndarray  # (versions,) bool: the version gave scores for at least one pattern
    # Right or wrong varied between a non-deterministic version's repeats (see _with_repeats).
    flaky: np.ndarray  # bool, like ``correct``


def answer_matrices(
    registry: Registry,
    *,
    problems: Sequence[str],
    versions: Sequence[RefLike],
    detail: Sequence[RefLike] = (),
) -> tuple[dict[str, AnswerMatrix], list[PatternResult]]:
    """Every pattern of ``problems`` x ``versions`` as arrays, by problem slug; and, in one read,
    the :func:`pattern_results` of the ``detail`` versions (the candidate's failing patterns).

    A gate at 1,000 problems reads 12 versions' answers (180,000): as arrays filled column by
    column, not as :class:`PatternResult` objects, which were most of a gate's time.
    """
    wanted = [ModelRef.of(ref) for ref in versions]
    with registry.reading() as session:
        selection = _select(session, problems, versions=wanted)
        if selection is None:
            return {}, []
        rank = list(selection.rank)
        by_ref = {ModelRef(v.name, v.version): v.id for v in selection.versions}
        detailed = {by_ref[ModelRef.of(ref)] for ref in detail}
        connection = session.connection()
        # Only what the statistics read, for every version: a third of the columns, no sort.
        answers = driver_rows(connection, _answers_query(list(by_ref.values()), rank))
        rows = driver_rows(connection, _grid_query(sorted(detailed), rank)) if detailed else []
        facts = _pattern_facts(session, selection.slugs)
        repeats = driver_rows(connection, _repeats_query(list(by_ref.values()), rank))
    grid = _Grid(selection.versions, _in_problem_order(rows, facts, selection.rank), facts)
    row_of = {by_ref[ref]: i for i, ref in enumerate(wanted)}
    ids: dict[str, list[int]] = {}
    for pattern_id in sorted(facts):
        ids.setdefault(facts[pattern_id][1], []).append(pattern_id)
    out: dict[str, AnswerMatrix] = {}
    place: dict[int, tuple[AnswerMatrix, int]] = {}
    for slug, patterns in ids.items():
        shape = (len(wanted), len(patterns))
        matrix = AnswerMatrix(
            patterns,
            [facts[i][4] for i in patterns],
            np.full(shape, np.nan),
            np.full(shape, np.nan),
            np.zeros(len(wanted), dtype=bool),
            np.zeros(shape, dtype=bool),
        )
        out[slug] = matrix
        place.update((pattern_id, (matrix, column)) for column, pattern_id in enumerate(patterns))
    loads = json.loads
    for pattern_id, version_id, correct, scores in answers:
        matrix, column = place[pattern_id]
        row = row_of[version_id]
        if correct is not None:
            matrix.correct[row, column] = correct
        if scores is not None:
            p = facts[pattern_id][6].probability(loads(scores))
            if p is not None:
                matrix.p_expected[row, column] = p
                matrix.scored[row] = True
    if not repeats:
        return out, _results(grid, grid.rows)
    _with_repeats(repeats, place, row_of, facts)
    return out, [
        _as_judged(result, place, row_of[result.version_id]) for result in _results(grid, grid.rows)
    ]


def _with_repeats(
    repeats: list[tuple[Any, ...]],
    place: dict[int, tuple[AnswerMatrix, int]],
    row_of: dict[int, int],
    facts: dict[int, Facts],
) -> None:
    """A non-deterministic version's answers judged on all its repeats, not the first alone.

    A pattern counts right when most repeats got it right; its score is the mean probability of
    the expected answer or, for a model giving labels only, how often it was right: a rate the
    score rule weighs against history as it does a probability. A pattern whose correctness
    varied is flaky.
    """
    loads = json.loads
    sums: dict[tuple[int, int], list[float]] = {}  # right, answers, probability sum, its count
    for pattern_id, version_id, correct, scores in repeats:
        matrix, column = place[pattern_id]
        row = row_of[version_id]
        key = (pattern_id, row)
        if key not in sums:  # the first answer, from ``result``
            first, first_p = matrix.correct[row, column], matrix.p_expected[row, column]
            if np.isnan(first):
                continue  # no first answer: nothing to judge (never written apart)
            scored = not np.isnan(first_p)
            sums[key] = [first, 1.0, first_p if scored else 0.0, float(scored)]
        acc = sums[key]
        acc[0] += correct
        acc[1] += 1
        p = None if scores is None else facts[pattern_id][6].probability(loads(scores))
        if p is not None:
            acc[2] += p
            acc[3] += 1
    for (pattern_id, row), (right, answers, p_sum, p_count) in sums.items():
        matrix, column = place[pattern_id]
        rate = right / answers
        matrix.correct[row, column] = 1.0 if rate > 0.5 else 0.0
        matrix.p_expected[row, column] = p_sum / p_count if p_count else rate
        matrix.scored[row] = True
        matrix.flaky[row, column] = 0.0 < rate < 1.0


def _as_judged(
    result: PatternResult, place: dict[int, tuple[AnswerMatrix, int]], row: int
) -> PatternResult:
    """``result`` (a first answer) right or wrong as its version's repeats judge it."""
    matrix, column = place[result.pattern_id]
    judged = matrix.correct[row, column]
    if not result.answered or np.isnan(judged):
        return result
    return replace(result, correct=bool(judged))


# A driver's booleans as Python's: SQLite hands over 0 / 1, PostgreSQL True / False; NULL is
# "no result". A lookup, not a call per row.
_TRUTH: dict[Any, bool | None] = {None: None, 0: False, 1: True}
_ANSWERED: dict[Any, bool] = {0: False, 1: True}  # ``file_id IS NOT NULL``: never NULL


def _answers_query(version_ids: list[int], problem_ids: list[int]) -> Any:
    """(pattern id, version id, right, scores) of these patterns on these versions; NULL: no
    result. Only what the statistics read: a third of the grid's columns, no sort."""
    joined, versions, result, correct = _patterns_by_versions(version_ids)
    return (
        sa.select(PATTERN.c.id, versions.c.id, correct, result.c.scores)
        .select_from(joined)
        .where(PATTERN.c.problem_id.in_(problem_ids))
    )


def _repeats_query(version_ids: list[int], problem_ids: list[int]) -> Any:
    """(pattern id, version id, right, scores) of every repeat after the first: none for a
    deterministic version, so a gate without one pays a lookup on an empty key range."""
    repeat = REPEAT.alias("rr")
    label = LABEL.alias("el")
    joined = PATTERN.join(repeat, repeat.c.file_id == PATTERN.c.file_id).outerjoin(
        label, sa.and_(label.c.pattern_id == PATTERN.c.id, label.c.label == repeat.c.predicted)
    )
    return (
        sa.select(
            PATTERN.c.id,
            repeat.c.model_version_id,
            correct_expression(PATTERN, repeat, label),
            repeat.c.scores,
        )
        .select_from(joined)
        .where(repeat.c.model_version_id.in_(version_ids), PATTERN.c.problem_id.in_(problem_ids))
    )


def _grid_query(version_ids: list[int], problem_ids: list[int]) -> Any:
    joined, versions, result, correct = _patterns_by_versions(version_ids)
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


def _patterns_by_versions(version_ids: list[int]) -> tuple[Any, Any, Any, Any]:
    """Patterns x versions, each result found by its primary key: (join, versions, result,
    correct), ``correct`` NULL where there is no result.

    An outer join, so SQLite drives from the patterns: with an inner join it drove from the
    results and probed the problems' IN list for each of them (25 s at 1,000 problems).
    """
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
    return joined, versions, result, correct


def _pattern_facts(session: Session, slugs: dict[int, str]) -> dict[int, Facts]:
    """Pattern id -> (problem id, problem slug, file name, sha256, polarity, expectation text,
    expectation) for the patterns of the problems in ``slugs`` (problem id -> slug)."""
    files = PatternFile.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    patterns = driver_rows(
        connection,
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
        .where(PATTERN.c.problem_id.in_(list(slugs))),
    )
    labels: dict[int, list[str]] = {}
    query = (
        sa.select(LABEL.c.pattern_id, LABEL.c.label)
        .join(PATTERN, PATTERN.c.id == LABEL.c.pattern_id)
        .where(PATTERN.c.problem_id.in_(list(slugs)))
    )
    for pattern_id, text in driver_rows(connection, query):
        labels.setdefault(pattern_id, []).append(text)
    facts = {}
    for pattern_id, problem_id, name, sha256, polarity, kind, low, high in patterns:
        expectation = expectation_from(kind, low, high, labels.get(pattern_id, []))
        facts[pattern_id] = (
            problem_id,
            slugs[problem_id],
            name,
            sha256,
            polarity,
            expectation.describe(),
            expectation,
        )
    return facts
