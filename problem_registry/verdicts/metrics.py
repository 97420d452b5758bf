"""Per problem and model version: how wrong, how sure we can be, and since when. The API::

    rows = problem_metrics(registry, model="digits")      # one row per problem x version
    rows = problem_metrics(registry, confusion=True)      # + confusion matrix, precision/recall/F1
    lines = problem_metrics_json(registry)                # [row.to_json() ...], without the rows
    grid = pattern_results(registry, problems=["hats"])   # one row per pattern x version
    # and in problem_registry.verdicts.timeline: timelines(registry, model="digits")

How an answer is scored is :mod:`.scoring`; how the counts are read, :mod:`.aggregation`; the
rows themselves, :mod:`.rows`; the JSON text of ``report --json``, :mod:`.json_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from problem_registry.refs import RefLike
from problem_registry.store.registry import Registry
from problem_registry.verdicts.aggregation import (
    NO_RESULTS,
    ProblemRow,
    Tally,
    gather,
    select_versions,
)
from problem_registry.verdicts.confusion import Confusion
from problem_registry.verdicts.json_text import assemble_json, problem_json, version_json
from problem_registry.verdicts.pattern_grid import pattern_results
from problem_registry.verdicts.rows import (
    PatternResult,
    PolarityMetrics,
    ProblemVersionMetrics,
    VersionRow,
)
from problem_registry.verdicts.scoring import correct_expression

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


_Shape = tuple[float | None, int, int]
"""A problem's max_error_rate, positive and negative patterns: all its scores text depends on."""


def problem_metrics(
    registry: Registry,
    *,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
    problems: Sequence[str] | None = None,
    confusion: bool = False,
) -> list[ProblemVersionMetrics]:
    """Every problem (by slug) x every selected version (in registration order), one GROUP BY."""
    data = gather(registry, model, versions, problems, confusion=confusion)
    matrices = data.matrices
    tallies = {(row[0], row[1]): row[2:] for row in data.tallies}
    return [
        metrics_row(
            problem,
            version,
            tallies.get((problem.id, version.id), NO_RESULTS),
            None if matrices is None else matrices.get((problem.id, version.id), Confusion.empty()),
        )
        for problem in data.problems
        for version in data.versions_of(problem)
    ]


def problem_metrics_json(
    registry: Registry,
    *,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
    problems: Sequence[str] | None = None,
    extra: Mapping[tuple[str, str], str] | None = None,
) -> list[str]:
    """``[row.to_json() for row in problem_metrics(...)]``, without building the rows.

    ``extra``: (problem slug, ``NAME@VERSION``) -> ``"key":value`` JSON text added to that row
    (``report --json`` adds a row's sign-off this way, issue 19).

    What ``report --json`` writes (100,000 rows at 1,000 problems x 100 versions). Each
    line is put together from its problem's and its version's text, encoded once, and the text
    of its counts, which a registry repeats on many rows: written once per distinct counts and
    problem shape by a real :class:`ProblemVersionMetrics` (:func:`_scores_json_for`), so there
    is no second copy of any number's definition (tests/test_metrics.py holds the lines equal).
    """
    data = gather(registry, model, versions, problems, confusion=False)
    # Keyed by one int, problem id x stride + version id, not a (problem, version) tuple whose
    # hash is computed again on each of the 100,000 look-ups; with the memo of _scores_texts
    # this takes about a third less CPU time than before at 1,000 problems x 100 versions.
    stride = max((v.id for v in data.versions), default=0) + 1
    texts = _scores_texts(data.problems, data.tallies, stride)
    parts = [(v.id, version_json(v.name, v.version, v.is_champion)) for v in data.versions]
    # A problem naming its models (issue 19, item 3) has rows for their versions only.
    names = {v.id: v.name for v in data.versions}
    refs = {v.id: v.ref for v in data.versions}
    lines: list[str] = []
    add = lines.append
    for problem in data.problems:
        problem_texts = problem_json(
            problem.slug, problem.title, problem.status, problem.allowed_regressions
        )
        unanswered = _scores_json_for(
            problem.max_error_rate, problem.positives, problem.negatives, NO_RESULTS
        )
        base = problem.id * stride
        get = texts.get
        models = data.models.get(problem.id)
        for version_id, version_texts in parts:
            if models and names[version_id] not in models:
                continue
            scores, polarity = get(base + version_id, unanswered)
            line = assemble_json(problem_texts, version_texts, scores, polarity)
            if extra and (problem.slug, refs[version_id]) in extra:
                line = f"{line[:-1]},{extra[(problem.slug, refs[version_id])]}}}"
            add(line)
    return lines


def _scores_texts(
    problems: list[ProblemRow], tallies: list[tuple[Any, ...]], stride: int
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


def metrics_row(
    problem: ProblemRow, version: VersionRow, tally: Tally, confusion: Confusion | None
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
    problem = ProblemRow(0, "", "", "", max_error_rate, 0, positives, negatives)
    return metrics_row(problem, _NO_VERSION, tally, None)._scores_json()
