"""Per problem and model version: how wrong, how sure we can be, and since when.

Everything is computed from stored results against the **current** expectations, in SQL, so
relabelling a pattern changes every number here without any model being called, and the report
of a 1.5 M-result registry is one aggregation query, not 1.5 M Python objects. The API::

    rows = problem_metrics(registry, model="digits")      # one row per problem x version
    rows = problem_metrics(registry, confusion=True)      # + confusion matrix, precision/recall/F1
    lines = problem_metrics_json(registry)                # [row.to_json() ...], without the rows
    grid = pattern_results(registry, problems=["hats"])   # one row per pattern x version
    # and in problem_registry.verdicts.timeline: timelines(registry, model="digits")

How a result is scored (the one definition, shared with the gates):

- exact / any-of: right when the predicted label is one of the pattern's expected labels;
- forbidden (``not``): right when there is a predicted label and it is none of them;
- range: right when the numeric value lies in ``[expect_min, expect_max]`` (a non-numeric answer
  is wrong);
- an **errored** result (the model raised on that input, or a predictions file had no line for
  it) is answered and wrong: it counts in ``errored`` and in ``wrong``;
- a **missing** result (never replayed: the version is unavailable, or the file was refused) is
  not answered: it counts in ``missing`` only, and ``error_rate`` is ``wrong / answered`` (None
  when nothing was answered). Old versions that cannot load keep an honest rate on what they did
  answer; the gates refuse a candidate with missing answers instead (see :mod:`gates`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from problem_registry.enums import Polarity
from problem_registry.errors import ModelNotFound
from problem_registry.refs import ModelRef, RefLike, format_ref
from problem_registry.store.engines import driver_rows
from problem_registry.store.patterns import expectation_of
from problem_registry.store.problems import find_problem
from problem_registry.store.registry import Registry
from problem_registry.store.tables import (
    ExpectedLabel,
    ModelVersion,
    Pattern,
    PatternFile,
    Problem,
    Result,
)
from problem_registry.verdicts.confusion import Confusion, confusions
from problem_registry.verdicts.stats import wilson_interval

__all__ = [
    "Confusion",
    "PatternResult",
    "PolarityMetrics",
    "ProblemVersionMetrics",
    "correct_expression",
    "pattern_results",
    "problem_metrics",
    "problem_metrics_json",
    "select_versions",
]

_pattern = Pattern.__table__  # type: ignore[attr-defined]
_result = Result.__table__  # type: ignore[attr-defined]
_label = ExpectedLabel.__table__  # type: ignore[attr-defined]


# What the error-rate aggregation is given on PostgreSQL (see _aggregates); the benchmark gives
# its raw floor query the same, so the two are compared on equal terms.
POSTGRES_WORK_MEM = "64MB"

# 0.2 means 0.2: 3 wrong of 15 meets max_error_rate=0.2 whatever the float rounding of 3/15.
CANARY_TOLERANCE = 1e-12


@dataclass(frozen=True)
class VersionRow:
    id: int
    name: str
    version: str
    is_champion: bool

    @property
    def ref(self) -> str:
        return format_ref(self.name, self.version)


@dataclass(frozen=True)
class PolarityMetrics:
    patterns: int
    answered: int
    wrong: int

    @property
    def error_rate(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patterns": self.patterns,
            "answered": self.answered,
            "wrong": self.wrong,
            "error_rate": self.error_rate,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON, keys sorted; see ProblemVersionMetrics.to_json."""
        return (
            f'{{"answered":{self.answered},"error_rate":{_json_scalar(self.error_rate)},'
            f'"patterns":{self.patterns},"wrong":{self.wrong}}}'
        )


@dataclass
class ProblemVersionMetrics:
    """One problem on one model version."""

    problem: str
    title: str
    status: str
    model: str
    version: str
    is_champion: bool
    max_error_rate: float | None
    allowed_regressions: int
    patterns: int
    answered: int
    wrong: int  # errored included
    errored: int
    positive: PolarityMetrics
    negative: PolarityMetrics
    confusion: Confusion | None = None

    @property
    def ref(self) -> str:
        return format_ref(self.model, self.version)

    @property
    def right(self) -> int:
        return self.answered - self.wrong

    @property
    def missing(self) -> int:
        return self.patterns - self.answered

    @property
    def error_rate(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the error rate; None when nothing was answered."""
        return wilson_interval(self.wrong, self.answered) if self.answered else None

    @property
    def meets_canary(self) -> bool | None:
        """Within ``max_error_rate``; None when the problem has no canary or no answers.

        The one place the canary is judged: the gates, the status line, the charts and the report
        all read it, so a picture never contradicts the verdict CI applies.
        """
        if self.max_error_rate is None or self.error_rate is None:
            return None
        return self.error_rate <= self.max_error_rate + CANARY_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        # Called once per row of `report --json` (100,000 rows at 1,000 problems x 100 versions):
        # plain dict literals, not dataclasses.asdict, which deep-copies and was 0.13 ms a row.
        interval = self.interval
        polarity = {"positive": self.positive.to_dict(), "negative": self.negative.to_dict()}
        data: dict[str, Any] = {
            "problem": self.problem,
            "title": self.title,
            "status": self.status,
            "model": self.model,
            "version": self.version,
            "champion": self.is_champion,
            "error_rate": self.error_rate,
            "interval": {"low": interval[0], "high": interval[1]} if interval else None,
            "max_error_rate": self.max_error_rate,
            "allowed_regressions": self.allowed_regressions,
            "meets_canary": self.meets_canary,
            "counts": {
                "patterns": self.patterns,
                "answered": self.answered,
                "right": self.right,
                "wrong": self.wrong,
                "errored": self.errored,
                "missing": self.missing,
            },
            "polarity": polarity,
        }
        if self.confusion is not None:
            data["confusion"] = self.confusion.to_dict()
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys, written out directly.

        The same text as ``json.dumps(row.to_dict(), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)`` (tests/test_metrics.py holds them equal) at a fraction of the cost:
        ``report --json`` writes 100,000 rows at 1,000 problems x 100 versions, where building
        the dicts and encoding them cost more than the SQL aggregation itself (issue 7).
        """
        if self.confusion is not None:  # rare (charts, the HTML report): the general way
            return _compact_json(self.to_dict())
        scores, polarity = self._scores_json()
        return _assemble_json(
            _problem_json(self.problem, self.title, self.status, self.allowed_regressions),
            _version_json(self.model, self.version, self.is_champion),
            scores,
            polarity,
        )

    def _scores_json(self) -> tuple[str, str]:
        """The parts of :meth:`to_json` that follow from the counts: ``"counts"`` to
        ``"meets_canary"``, and ``"polarity"``, each with its trailing comma.

        The only place these numbers are written as JSON; :func:`problem_metrics_json` reuses
        the text for every row with the same counts (see :func:`_scores_json_for`).
        """
        interval = self.interval
        low_high = (
            "null" if interval is None else f'{{"high":{interval[1]!r},"low":{interval[0]!r}}}'
        )
        scores = (
            f'"counts":{{"answered":{self.answered},"errored":{self.errored},'
            f'"missing":{self.missing},"patterns":{self.patterns},"right":{self.right},'
            f'"wrong":{self.wrong}}},'
            f'"error_rate":{_json_scalar(self.error_rate)},"interval":{low_high},'
            f'"max_error_rate":{_json_scalar(self.max_error_rate)},'
            f'"meets_canary":{_json_scalar(self.meets_canary)},'
        )
        polarity = (
            f'"polarity":{{"negative":{self.negative.to_json()},'
            f'"positive":{self.positive.to_json()}}},'
        )
        return scores, polarity


_compact_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
# A slug, title or version recurs on every row of its problem or version: encode each once.
_json_text = lru_cache(maxsize=8192)(_compact_json)


def _problem_json(slug: str, title: str, status: str, allowed_regressions: int) -> tuple[str, str]:
    """A problem's keys of a row, before and after the scores (keys sorted)."""
    return (
        f'{{"allowed_regressions":{allowed_regressions},',
        f'"problem":{_json_text(slug)},"status":{_json_text(status)},"title":{_json_text(title)},',
    )


def _version_json(model: str, version: str, is_champion: bool) -> tuple[str, str, str]:
    """A version's keys of a row: before the scores, before the polarity, and the last."""
    return (
        f'"champion":{_json_scalar(is_champion)},',
        f'"model":{_json_text(model)},',
        f'"version":{_json_text(version)}}}',
    )


def _assemble_json(
    problem: tuple[str, str], version: tuple[str, str, str], scores: str, polarity: str
) -> str:
    """One row of ``report --json``: its parts in sorted-key order."""
    return f"{problem[0]}{version[0]}{scores}{version[1]}{polarity}{problem[1]}{version[2]}"


def _json_scalar(value: bool | float | None) -> str:
    """What :mod:`json` writes for None, a bool, an int or a (finite) float."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value)


@dataclass(slots=True)
class PatternResult:
    """One pattern on one version: what it expects, what came back, and whether that is right.

    Slotted, and built positionally by :func:`pattern_results` in this field order: the HTML
    report builds one per pattern x version (1.5 M at 1,000 problems x 100 versions, issue 7).
    """

    problem: str
    pattern_id: int
    file: str  # the name it was added under
    sha256: str
    polarity: str
    expected: str
    version_id: int
    model: str
    version: str
    answered: bool
    predicted: str | None = None
    value: float | None = None
    confidence: float | None = None
    error: str | None = None
    correct: bool | None = None  # None: no result

    @property
    def ref(self) -> str:
        return format_ref(self.model, self.version)

    @property
    def got(self) -> str:
        """What a person reads in a failure message."""
        if not self.answered:
            return "(no result)"
        if self.error is not None:
            return f"error: {self.error}"
        return self.predicted if self.predicted is not None else "(nothing)"


def correct_expression(pattern: Any, result: Any, label: Any) -> Any:
    """1 when ``result`` meets ``pattern``'s current expectation, else 0, as SQL.

    ``label`` is ``expected_label`` outer-joined on ``(pattern.id, result.predicted)``: at most one
    row matches (it is the primary key), so the join never multiplies rows.
    """
    return sa.case(
        (result.c.error.is_not(None), 0),
        (
            pattern.c.expect_kind == "range",
            sa.case(
                (result.c.value.between(pattern.c.expect_min, pattern.c.expect_max), 1), else_=0
            ),
        ),
        (
            pattern.c.expect_kind == "not",
            sa.case(
                (sa.and_(result.c.predicted.is_not(None), label.c.label.is_(None)), 1), else_=0
            ),
        ),
        else_=sa.case((label.c.label.is_not(None), 1), else_=0),
    )


def select_versions(
    session: Session, *, model: str | None = None, versions: Sequence[RefLike] | None = None
) -> list[VersionRow]:
    """Versions in registration order: all, one model's, or the refs given."""
    # Columns, not ORM entities: a SQLModel instance costs ~60 us to load (pydantic's private
    # attributes), and every report reads every version and every problem (issue 7).
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


Tally = tuple[int, int, int, int, int]
"""answered, errored, right, positives answered, positives right: one problem on one version."""

_NO_RESULTS: Tally = (0, 0, 0, 0, 0)

_Shape = tuple[float | None, int, int]
"""A problem's max_error_rate, positive and negative patterns: all its scores text depends on."""


@dataclass(frozen=True)
class _ProblemRow:
    id: int
    slug: str
    title: str
    status: str
    max_error_rate: float | None
    allowed_regressions: int
    positives: int  # patterns
    negatives: int


@dataclass
class _Gathered:
    """Everything the rows are made of, read in one transaction."""

    problems: list[_ProblemRow]
    versions: list[VersionRow]
    tallies: list[tuple[Any, ...]]  # (problem id, version id, *Tally), in no particular order
    matrices: dict[tuple[int, int], Confusion] | None


def problem_metrics(
    registry: Registry,
    *,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
    problems: Sequence[str] | None = None,
    confusion: bool = False,
) -> list[ProblemVersionMetrics]:
    """Every problem (by slug) x every selected version (in registration order), one GROUP BY."""
    data = _gather(registry, model, versions, problems, confusion=confusion)
    matrices = data.matrices
    tallies = {(row[0], row[1]): row[2:] for row in data.tallies}
    return [
        _row(
            problem,
            version,
            tallies.get((problem.id, version.id), _NO_RESULTS),
            None if matrices is None else matrices.get((problem.id, version.id), Confusion.empty()),
        )
        for problem in data.problems
        for version in data.versions
    ]


def problem_metrics_json(
    registry: Registry,
    *,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
    problems: Sequence[str] | None = None,
) -> list[str]:
    """``[row.to_json() for row in problem_metrics(...)]``, without building the rows.

    What ``report --json`` writes (issue 7: 100,000 rows at 1,000 problems x 100 versions). Each
    line is put together from its problem's and its version's text, encoded once, and the text
    of its counts, which a registry repeats on many rows: written once per distinct counts and
    problem shape by a real :class:`ProblemVersionMetrics` (:func:`_scores_json_for`), so there
    is no second copy of any number's definition (tests/test_metrics.py holds the lines equal).
    """
    data = _gather(registry, model, versions, problems, confusion=False)
    # Keyed by one int, problem id x stride + version id, not a (problem, version) tuple whose
    # hash is computed again on each of the 100,000 look-ups; with the memo of _scores_texts
    # this takes about a third less CPU time than before at 1,000 problems x 100 versions.
    stride = max((v.id for v in data.versions), default=0) + 1
    texts = _scores_texts(data.problems, data.tallies, stride)
    parts = [(v.id, _version_json(v.name, v.version, v.is_champion)) for v in data.versions]
    lines: list[str] = []
    add = lines.append
    for problem in data.problems:
        problem_texts = _problem_json(
            problem.slug, problem.title, problem.status, problem.allowed_regressions
        )
        unanswered = _scores_json_for(
            problem.max_error_rate, problem.positives, problem.negatives, _NO_RESULTS
        )
        base = problem.id * stride
        get = texts.get
        for version_id, version_texts in parts:
            scores, polarity = get(base + version_id, unanswered)
            add(_assemble_json(problem_texts, version_texts, scores, polarity))
    return lines


def _scores_texts(
    problems: list[_ProblemRow], tallies: list[tuple[Any, ...]], stride: int
) -> dict[int, tuple[str, str]]:
    """Each fetched tally's scores text, by problem id x ``stride`` + version id.

    The text depends only on the counts and the problem's canary and pattern counts, so it is
    written once per distinct (shape, counts): 15 patterns allow a few thousand, not 100,000.
    """
    memos: dict[_Shape, dict[Tally, tuple[str, str]]] = {}
    shape_of: dict[int, tuple[_Shape, dict[Tally, tuple[str, str]]]] = {}
    for problem in problems:
        shape = (problem.max_error_rate, problem.positives, problem.negatives)
        shape_of[problem.id] = (shape, memos.setdefault(shape, {}))
    texts: dict[int, tuple[str, str]] = {}
    for row in tallies:
        found = shape_of.get(row[0])
        if found is None:  # added since its problem's row was read: not in this report
            continue
        shape, memo = found
        tally = row[2:]
        pair = memo.get(tally)
        if pair is None:
            pair = memo[tally] = _scores_json_for(*shape, tally)
        texts[row[0] * stride + row[1]] = pair
    return texts


def _row(
    problem: _ProblemRow, version: VersionRow, tally: Tally, confusion: Confusion | None
) -> ProblemVersionMetrics:
    """The one place a tally becomes a row's numbers."""
    answered, errored, right, pos_answered, pos_right = tally
    neg_answered, neg_right = answered - pos_answered, right - pos_right
    return ProblemVersionMetrics(
        problem=problem.slug,
        title=problem.title,
        status=problem.status,
        model=version.name,
        version=version.version,
        is_champion=version.is_champion,
        max_error_rate=problem.max_error_rate,
        allowed_regressions=problem.allowed_regressions,
        patterns=problem.positives + problem.negatives,
        answered=answered,
        wrong=answered - right,
        errored=errored,
        positive=PolarityMetrics(problem.positives, pos_answered, pos_answered - pos_right),
        negative=PolarityMetrics(problem.negatives, neg_answered, neg_answered - neg_right),
        confusion=confusion,
    )


_NO_VERSION = VersionRow(0, "", "", False)


def _scores_json_for(
    max_error_rate: float | None, positives: int, negatives: int, tally: Tally
) -> tuple[str, str]:
    """:meth:`ProblemVersionMetrics._scores_json` of any row with these counts and this canary.

    The scores depend on nothing else (not the problem's name, nor the version's), so the text
    is written by a real row and reused for every row with the same (see :func:`_scores_texts`).
    """
    problem = _ProblemRow(0, "", "", "", max_error_rate, 0, positives, negatives)
    return _row(problem, _NO_VERSION, tally, None)._scores_json()


def _gather(
    registry: Registry,
    model: str | None,
    versions: Sequence[RefLike] | None,
    problems: Sequence[str] | None,
    *,
    confusion: bool,
) -> _Gathered:
    with registry.reading() as session:
        chosen = select_versions(session, model=model, versions=versions)
        problem_rows = _problems(session, problems)
        problem_ids = None if problems is None else [p.id for p in problem_rows]
        counts = _pattern_counts(session, problem_ids)
        version_ids = [v.id for v in chosen]
        # Every version: no IN list for the database to check on each of 1.5 M rows.
        wanted = None if model is None and versions is None else version_ids
        tallies = _aggregates(session, wanted, problem_ids) if version_ids else []
        matrices = confusions(session, version_ids, problem_ids) if confusion else None
    rows = []
    for problem in problem_rows:
        positives, negatives = counts.get(problem.id, (0, 0))  # type: ignore[arg-type]
        rows.append(
            _ProblemRow(
                problem.id,  # type: ignore[arg-type]
                problem.slug,
                problem.title,
                problem.status,
                problem.max_error_rate,
                problem.allowed_regressions,
                positives,
                negatives,
            )
        )
    return _Gathered(rows, chosen, tallies, matrices)


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
        problems_read = _problems(session, problems)
        if not chosen or not problems_read:
            return []
        # Ordered as returned: problem (by slug), pattern id, version (ids are registration
        # order). The driver's own tuples: SQLAlchemy's row processing and a dict per row cost
        # more than the query itself once 1.5 M rows pass through here (issue 7).
        rank = {p.id: i for i, p in enumerate(problems_read)}
        grid = _grid_query([v.id for v in chosen], list(rank))
        rows = driver_rows(session.connection(), grid)
        facts = _pattern_facts(session, {p.id: p.slug for p in problems_read})
    # What is the pattern's or the version's is looked up, not read again on each of the rows:
    # strings made per row and column were most of this read's time (issue 7).
    names = {v.id: (v.name, v.version) for v in chosen}
    problem_rank = {pattern_id: rank[fact[0]] for pattern_id, fact in facts.items()}
    rows.sort(key=lambda row: problem_rank[row[0]])  # stable: only the problems' order changes
    truth = _TRUTH
    results: list[PatternResult] = []
    for pattern_id, version_id, answered, predicted, value, confidence, error, correct in rows:
        _problem_id, slug, file, sha256, polarity, expected = facts[pattern_id]
        model_name, version = names[version_id]
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
                truth[answered],
                predicted,
                value,
                confidence,
                error,
                truth[correct],
            )
        )
    return results


# A driver's booleans as Python's: SQLite hands over 0 / 1, PostgreSQL True / False; NULL is
# "no result". A lookup, not a call per row.
_TRUTH: dict[Any, bool | None] = {None: None, 0: False, 1: True}


def _grid_query(version_ids: list[int], problem_ids: list[int]) -> Any:
    versions = sa.select(ModelVersion.id).where(col(ModelVersion.id).in_(version_ids)).subquery()
    result = _result.alias("r")
    label = _label.alias("el")
    joined = (
        _pattern.join(versions, sa.true())
        .outerjoin(
            result,
            sa.and_(
                result.c.model_version_id == versions.c.id, result.c.file_id == _pattern.c.file_id
            ),
        )
        .outerjoin(
            label,
            sa.and_(label.c.pattern_id == _pattern.c.id, label.c.label == result.c.predicted),
        )
    )
    correct = sa.case(
        (result.c.file_id.is_(None), None), else_=correct_expression(_pattern, result, label)
    )
    return (
        sa.select(
            _pattern.c.id.label("pattern_id"),
            versions.c.id.label("version_id"),
            result.c.file_id.is_not(None).label("answered"),
            result.c.predicted.label("predicted"),
            result.c.value.label("value"),
            result.c.confidence.label("confidence"),
            result.c.error.label("error"),
            correct.label("correct"),
        )
        .select_from(joined)
        .where(_pattern.c.problem_id.in_(problem_ids))
        .order_by(_pattern.c.problem_id, _pattern.c.id, versions.c.id)
    )


# -- queries ---------------------------------------------------------------------------------


def _problems(session: Session, slugs: Sequence[str] | None) -> list[Any]:
    """Problems by slug, as rows with a Problem's attributes (columns, not ORM entities: see
    :func:`select_versions`); a slug that names no problem raises ProblemNotFound."""
    if slugs is not None:
        return sorted((find_problem(session, slug) for slug in slugs), key=lambda p: p.slug)
    problems = Problem.__table__  # type: ignore[attr-defined]
    columns = ("id", "slug", "title", "status", "max_error_rate", "allowed_regressions")
    query = sa.select(*(problems.c[name] for name in columns)).order_by(problems.c.slug)
    return list(session.execute(query))


def _pattern_counts(session: Session, problem_ids: list[int] | None) -> dict[int, tuple[int, int]]:
    query = sa.select(_pattern.c.problem_id, _pattern.c.polarity, sa.func.count()).group_by(
        _pattern.c.problem_id, _pattern.c.polarity
    )
    if problem_ids is not None:
        query = query.where(_pattern.c.problem_id.in_(problem_ids))
    counts: dict[int, list[int]] = {}
    for problem_id, polarity, count in session.execute(query):
        slot = 0 if polarity == Polarity.positive.value else 1
        counts.setdefault(problem_id, [0, 0])[slot] = int(count)
    return {key: (value[0], value[1]) for key, value in counts.items()}


def _aggregates(
    session: Session, version_ids: list[int] | None, problem_ids: list[int] | None
) -> list[tuple[Any, ...]]:
    """(problem, version, answered, errored, right, positives answered, positives right) rows.

    One aggregation over every result, driven the way each backend is fast (issue 7: 1.5 M
    results), its rows fetched as the driver's tuples
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
    label = _label.alias("el")
    errored = sa.case((_result.c.error.is_not(None), 1), else_=0)
    correct = correct_expression(_pattern, _result, label)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        versions = ModelVersion.__table__  # type: ignore[attr-defined]
        version_id = versions.c.id
        source = versions.join(_pattern, sa.true()).outerjoin(
            _result,
            sa.and_(
                _result.c.model_version_id == version_id, _result.c.file_id == _pattern.c.file_id
            ),
        )
    else:
        version_id = _result.c.model_version_id
        source = _result.join(_pattern, _pattern.c.file_id == _result.c.file_id)
    source = source.outerjoin(
        label, sa.and_(label.c.pattern_id == _pattern.c.id, label.c.label == _result.c.predicted)
    )
    if sqlite:
        inner = (
            sa.select(
                _pattern.c.problem_id.label("problem_id"),
                version_id.label("version_id"),
                (_pattern.c.polarity == Polarity.positive.value).label("positive"),
                sa.func.count(_result.c.file_id).label("answered"),
                sa.func.sum(errored).label("errored"),
                sa.func.sum(correct).label("right"),
            )
            .select_from(source)
            # The order of the walk: no sort, and one correctness sum per row.
            .group_by(version_id, _pattern.c.problem_id, _pattern.c.polarity)
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
        positive = _pattern.c.polarity == Polarity.positive.value
        sums = [errored, correct, sa.case((positive, 1), else_=0), sa.case((positive, correct))]
        query = _filtered(
            sa.select(
                _pattern.c.problem_id,
                version_id,
                sa.func.count(),
                # Cast: PostgreSQL sums integers as numeric, which psycopg would hand over as
                # Decimal; and a problem without positives sums NULLs.
                *(sa.cast(sa.func.coalesce(sa.func.sum(n), 0), sa.Integer) for n in sums),
            )
            .select_from(source)
            .group_by(version_id, _pattern.c.problem_id),
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
        query = query.where(_pattern.c.problem_id.in_(problem_ids))
    return query


def _pattern_facts(
    session: Session, slugs: dict[int, str]
) -> dict[int, tuple[int, str, str, str, str, str]]:
    """Pattern id -> (problem id, problem slug, file name, sha256, polarity, expectation text)
    for the patterns of the problems in ``slugs`` (problem id -> slug)."""
    files = PatternFile.__table__  # type: ignore[attr-defined]
    patterns = list(
        session.execute(
            sa.select(
                _pattern.c.id,
                _pattern.c.problem_id,
                _pattern.c.original_name,
                files.c.sha256,
                _pattern.c.polarity,
                _pattern.c.expect_kind,
                _pattern.c.expect_min,
                _pattern.c.expect_max,
            )
            .join(files, files.c.id == _pattern.c.file_id)
            .where(_pattern.c.problem_id.in_(list(slugs)))
        )
    )
    labels: dict[int, list[str]] = {}
    query = (
        sa.select(_label.c.pattern_id, _label.c.label)
        .join(_pattern, _pattern.c.id == _label.c.pattern_id)
        .where(_pattern.c.problem_id.in_(list(slugs)))
    )
    for pattern_id, text in session.execute(query):
        labels.setdefault(pattern_id, []).append(text)
    return {
        p.id: (
            p.problem_id,
            slugs[p.problem_id],
            p.original_name,
            p.sha256,
            p.polarity,
            expectation_of(p, labels.get(p.id, [])).describe(),
        )
        for p in patterns
    }
