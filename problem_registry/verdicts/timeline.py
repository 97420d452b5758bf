"""Each problem's story across one model's versions: first fixed in v7, broken again in v9.

A version *passes* a problem when it meets the problem's canary (``error rate <= max_error_rate``)
or, for a problem without one, gets every answered pattern right. The story is the list of
versions where that flips; each point also names the patterns the version fixed or broke compared
with the previous version that answered them, which is what a lead reads to a client::

    v8: 11 of 12 right, needs <= 20% error: meets it; 2 fixed, 0 broken since v7
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter

import numpy as np

from problem_registry.store.registry import Registry
from problem_registry.store.signoffs import SignOffView, signoffs
from problem_registry.verdicts.metrics import (
    PatternResult,
    ProblemVersionMetrics,
    pattern_results,
    problem_metrics,
)
from problem_registry.verdicts.pattern_grid import NO_RESULT, OutcomeMatrix

PROBLEMS_PER_QUERY = 50  # bounds the pattern grid held at once for a whole-registry timeline


@dataclass
class TimelinePoint:
    version: str
    patterns: int
    answered: int
    wrong: int
    max_error_rate: float | None
    passing: bool | None  # None: nothing answered
    previous: str | None = None  # the version fixed/broken are counted against
    fixed: list[str] = field(default_factory=list)  # pattern files right now, wrong before
    broken: list[str] = field(default_factory=list)  # right before, wrong now

    @property
    def error_rate(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    def describe(self) -> str:
        if not self.answered:
            return f"{self.version}: no results"
        text = f"{self.version}: {self.answered - self.wrong} of {self.answered} right"
        if self.max_error_rate is not None:
            verdict = "meets it" if self.passing else "misses it"
            text += f", needs <= {self.max_error_rate:.0%} error: {verdict}"
        if self.previous is not None:
            text += f"; {len(self.fixed)} fixed, {len(self.broken)} broken since {self.previous}"
        return text


@dataclass
class ProblemTimeline:
    problem: str
    model: str
    points: list[TimelinePoint]
    # A lead's sign-offs of this problem at versions of this model, oldest first (issue 19).
    signoffs: list[SignOffView] = field(default_factory=list)

    def signed(self, version: str) -> SignOffView | None:
        """The latest sign-off at ``version``, if any."""
        found = [s for s in self.signoffs if s.version == version]
        return found[-1] if found else None

    @property
    def events(self) -> list[tuple[str, str]]:
        """``("fixed" | "broken", version)`` wherever passing flips, in version order."""
        out: list[tuple[str, str]] = []
        state: bool | None = None
        for point in self.points:
            if point.passing is None:
                continue
            if state is not None and point.passing != state:
                out.append(("fixed" if point.passing else "broken", point.version))
            state = point.passing
        return out

    def describe(self) -> str:
        """``first fixed in v7, broken again in v9``; ``passing in v1, broken in v4``; ..."""
        answered = [p for p in self.points if p.passing is not None]
        if not answered:
            return "no results yet"
        if not self.events:
            state = "passing" if answered[0].passing else "failing"
            return f"{state} in every version ({answered[0].version} to {answered[-1].version})"
        parts = [f"passing in {answered[0].version}"] if answered[0].passing else []
        was_passing, was_fixed = bool(answered[0].passing), False
        for kind, version in self.events:
            if kind == "fixed":
                parts.append(f"{'fixed again' if was_passing else 'first fixed'} in {version}")
                was_passing = was_fixed = True
            else:
                parts.append(f"{'broken again' if was_fixed else 'broken'} in {version}")
        return ", ".join(parts)


def timelines(
    registry: Registry, *, model: str, problems: Sequence[str] | None = None
) -> list[ProblemTimeline]:
    """One timeline per problem (by slug) over every version of ``model``, oldest first.

    Reads the rows :func:`timelines_from` needs, :data:`PROBLEMS_PER_QUERY` problems' pattern
    results at a time; a caller that has read them already (the HTML report) calls that instead.
    """
    metrics = problem_metrics(registry, model=model, problems=problems)
    by_problem: dict[str, list[ProblemVersionMetrics]] = {}
    for row in metrics:
        by_problem.setdefault(row.problem, []).append(row)
    slugs = sorted(by_problem)
    out: list[ProblemTimeline] = []
    for start in range(0, len(slugs), PROBLEMS_PER_QUERY):
        chunk = slugs[start : start + PROBLEMS_PER_QUERY]
        results = pattern_results(registry, problems=chunk, model=model)
        out.extend(timelines_from(model, [m for s in chunk for m in by_problem[s]], results))
    return with_signoffs(out, signoffs(registry, slugs))


def with_signoffs(
    stories: list[ProblemTimeline], signed: Sequence[SignOffView]
) -> list[ProblemTimeline]:
    """The timelines with each one's sign-offs at versions of its model attached."""
    by_problem = {story.problem: story for story in stories}
    for view in signed:
        story = by_problem.get(view.problem)
        if story is not None and view.model == story.model:
            story.signoffs.append(view)
    return stories


def timelines_from(
    model: str, metrics: Sequence[ProblemVersionMetrics], results: Sequence[PatternResult]
) -> list[ProblemTimeline]:
    """:func:`timelines` from rows already read: one timeline per problem in ``metrics``.

    ``metrics`` are :func:`~problem_registry.verdicts.metrics.problem_metrics` rows of ``model``
    (one per version, in registration order); ``results`` are those problems' pattern results on
    the same versions, in the order :func:`~problem_registry.verdicts.metrics.pattern_results`
    returns them.
    """
    return timelines_with(model, metrics, _changes(results))


def timelines_with(
    model: str, metrics: Sequence[ProblemVersionMetrics], changes: dict[tuple[str, str], Change]
) -> list[ProblemTimeline]:
    """:func:`timelines_from` with the patterns' changes found already (:func:`_changes`,
    :func:`matrix_changes`): the HTML report holds both, so it reads neither again."""
    out: dict[str, ProblemTimeline] = {}
    for m in metrics:
        timeline = out.setdefault(m.problem, ProblemTimeline(m.problem, model, []))
        previous, fixed, broken = changes.get((m.problem, m.version), (None, [], []))
        passing = None
        if m.answered:
            passing = bool(m.meets_canary) if m.max_error_rate is not None else m.wrong == 0
        timeline.points.append(
            TimelinePoint(
                version=m.version,
                patterns=m.patterns,
                answered=m.answered,
                wrong=m.wrong,
                max_error_rate=m.max_error_rate,
                passing=passing,
                previous=previous,
                fixed=fixed,
                broken=broken,
            )
        )
    return [out[slug] for slug in sorted(out)]


Change = tuple[str | None, list[str], list[str]]
"""The previous answered version, the pattern files fixed and those broken since it."""


def _changes(results: Sequence[PatternResult]) -> dict[tuple[str, str], Change]:
    """(problem, version) -> (previous answered version, patterns fixed, patterns broken).

    Each pattern is compared with its own last answer, so a pattern added after some versions
    ran is neither fixed nor broken until a second version has answered it. ``results`` come in
    :func:`~problem_registry.verdicts.metrics.pattern_results` order (problem, pattern, version),
    so one walk, with no sort, sees each pattern's answers oldest first.
    """
    out: dict[tuple[str, str], Change] = {}
    for problem, rows in groupby(results, key=attrgetter("problem")):
        # version id -> (version, fixed, broken); ids are registration order.
        versions: dict[int, tuple[str, list[str], list[str]]] = {}
        answered: set[int] = set()
        pattern, before = None, None
        for row in rows:
            entry = versions.get(row.version_id)
            if entry is None:
                entry = versions[row.version_id] = (row.version, [], [])
            if row.pattern_id != pattern:
                pattern, before = row.pattern_id, None
            correct = row.correct
            if correct is None:
                continue
            answered.add(row.version_id)
            if before is not None and before != correct:
                (entry[1] if correct else entry[2]).append(row.file)
            before = correct
        previous = None
        for version_id in sorted(versions):
            version, fixed, broken = versions[version_id]
            is_answered = version_id in answered
            out[(problem, version)] = (previous if is_answered else None, fixed, broken)
            if is_answered:
                previous = version
    return out


def matrix_changes(matrices: Iterable[OutcomeMatrix]) -> dict[tuple[str, str], Change]:
    """:func:`_changes` of every version's outcomes, as matrices: the same answer, found with
    array operations rather than a walk over 1.5 M results (issue 19 item 13)."""
    out: dict[tuple[str, str], Change] = {}
    for matrix in matrices:
        right, changed = matrix.changes()
        answered = (matrix.codes != NO_RESULT).any(axis=0)
        fixed: dict[int, list[str]] = {}
        broken: dict[int, list[str]] = {}
        for row, column in zip(*np.nonzero(changed), strict=True):  # pattern order in a column
            (fixed if right[row, column] else broken).setdefault(int(column), []).append(
                matrix.files[row]
            )
        previous = None
        for column, version in enumerate(matrix.versions):
            is_answered = bool(answered[column])
            out[(matrix.problem, version.version)] = (
                previous if is_answered else None,
                fixed.get(column, []),
                broken.get(column, []),
            )
            if is_answered:
                previous = version.version
    return out
