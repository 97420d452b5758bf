"""Each problem's story across one model's versions: first fixed in v7, broken again in v9.

A version *passes* a problem when it meets the problem's canary (``error rate <= max_error_rate``)
or, for a problem without one, gets every answered pattern right. The story is the list of
versions where that flips; each point also names the patterns the version fixed or broke compared
with the previous version that answered them, which is what a lead reads to a client::

    v8: 11 of 12 right, needs <= 20% error: meets it; 2 fixed, 0 broken since v7
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from problem_registry.metrics import PatternResult, pattern_results, problem_metrics
from problem_registry.registry import Registry

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
    """One timeline per problem (by slug) over every version of ``model``, oldest first."""
    metrics = problem_metrics(registry, model=model, problems=problems)
    slugs = sorted({m.problem for m in metrics})
    changes: dict[tuple[str, str], tuple[str | None, list[str], list[str]]] = {}
    for start in range(0, len(slugs), PROBLEMS_PER_QUERY):
        chunk = slugs[start : start + PROBLEMS_PER_QUERY]
        changes.update(_changes(registry, model, chunk))
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
    return [out[slug] for slug in slugs]


def _changes(
    registry: Registry, model: str, slugs: list[str]
) -> dict[tuple[str, str], tuple[str | None, list[str], list[str]]]:
    """(problem, version) -> (previous answered version, patterns fixed, patterns broken).

    Each pattern is compared with its own last answer, so a pattern added after some versions
    ran is neither fixed nor broken until a second version has answered it.
    """
    by_problem: dict[str, list[PatternResult]] = {}
    for row in pattern_results(registry, problems=slugs, model=model):
        by_problem.setdefault(row.problem, []).append(row)
    out: dict[tuple[str, str], tuple[str | None, list[str], list[str]]] = {}
    for problem, rows in by_problem.items():
        rows.sort(key=lambda r: (r.version_id, r.pattern_id))
        answered = list(dict.fromkeys(r.version for r in rows if r.answered))
        previous = {v: answered[i - 1] if i else None for i, v in enumerate(answered)}
        last: dict[int, bool] = {}
        for row in rows:
            _, fixed, broken = out.setdefault(
                (problem, row.version), (previous.get(row.version), [], [])
            )
            if row.correct is None:
                continue
            before = last.get(row.pattern_id)
            if before is not None and before != row.correct:
                (fixed if row.correct else broken).append(row.file)
            last[row.pattern_id] = row.correct
    return out
