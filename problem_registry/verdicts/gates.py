"""Gates: does a candidate model version meet each problem's requirements? One verdict per problem.

- **canary**: the candidate's error rate on the problem is at most ``max_error_rate`` (the
  minimum requirement); a problem without one has no canary;
- **regression**: at most ``allowed_regressions`` patterns fail that the champion got right
  ("newly failing"); with no champion yet (or when the candidate *is* the champion) only the
  canary applies;
- **answers**: the candidate answered every pattern. A pattern with no result (its file was
  refused, or the candidate was never replayed) fails the problem: a candidate must not pass by
  omission. An errored answer is an answer, and a wrong one.
- beside them, never gating: an exact **McNemar** test on the patterns both models answered, so a
  lead can tell a real change from noise on 15 patterns.

Retired problems do not gate and are left out. Gates read stored results only: replay the
candidate (and its champion) first. The API the pytest plugin calls::

    for gate in evaluate(registry, candidate="digits@v3"):
        assert gate.passed, gate.message
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import col, select

from problem_registry.enums import ProblemStatus
from problem_registry.refs import ModelRef, RefLike, format_ref
from problem_registry.store.model_versions import version_ids
from problem_registry.store.registry import Registry
from problem_registry.store.tables import ModelVersion
from problem_registry.verdicts.metrics import (
    PatternResult,
    ProblemVersionMetrics,
    pattern_results,
    problem_metrics,
)
from problem_registry.verdicts.stats import mcnemar_exact

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Check:
    """One gate's verdict; a check that does not apply passes."""

    name: str
    applies: bool
    passed: bool
    detail: str


@dataclass(frozen=True)
class McNemar:
    """``broken``: champion right, candidate wrong; ``fixed``: the reverse."""

    broken: int
    fixed: int
    both_answered: int
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


@dataclass(frozen=True)
class FailingPattern:
    pattern_id: int
    file: str  # the name it was added under
    sha256: str
    polarity: str
    expected: str
    got: str
    champion_got: str | None  # None: no champion, or it has no result for this pattern
    newly_failing: bool  # the champion got it right

    @property
    def verdict(self) -> str:
        if self.newly_failing:
            return "newly failing"
        return "already failing" if self.champion_got is not None else "failing"


@dataclass
class GateResult:
    problem: str
    title: str
    candidate: str
    champion: str | None
    metrics: ProblemVersionMetrics
    champion_metrics: ProblemVersionMetrics | None
    canary: Check
    regression: Check
    answers: Check
    mcnemar: McNemar | None
    failing: list[FailingPattern] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # files without a candidate result

    @property
    def passed(self) -> bool:
        return self.canary.passed and self.regression.passed and self.answers.passed

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in (self.answers, self.canary, self.regression) if not c.passed]

    @property
    def message(self) -> str:
        """What a failing test prints: which gate, the numbers, then every failing pattern."""
        verdict = (
            "passed" if self.passed else ", ".join(f"{c.name} failed" for c in self.failed_checks)
        )
        lines = [f"{self.problem}: {verdict}"]
        lines += [f"  {c.name}: {c.detail}" for c in (self.canary, self.regression, self.answers)]
        if self.mcnemar is not None:
            m = self.mcnemar
            lines.append(
                f"  McNemar vs {self.champion}: {m.fixed} fixed, {m.broken} broken of "
                f"{m.both_answered} answered by both, p = {m.p_value:.3g} "
                f"({'a real change' if m.significant else 'could be noise'})"
            )
        if self.failing:
            lines.append("  failing patterns (file | expected | got | champion | verdict):")
            lines += [
                f"    {f.file} | {f.expected} | {f.got} | {f.champion_got or '-'} | {f.verdict}"
                for f in self.failing
            ]
        if self.unanswered:
            lines.append("  without a result: " + ", ".join(self.unanswered))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict()
        data["champion_metrics"] = (
            self.champion_metrics.to_dict() if self.champion_metrics else None
        )
        data["passed"] = self.passed
        for item, failing in zip(data["failing"], self.failing, strict=True):
            item["verdict"] = failing.verdict
        return data


def evaluate(
    registry: Registry,
    candidate: RefLike,
    *,
    problems: Sequence[str] | None = None,
    baseline: RefLike | None = None,
) -> list[GateResult]:
    """One :class:`GateResult` per non-retired problem (by slug), from stored results.

    ``baseline`` defaults to the champion of the candidate's model; give another version to
    compare against it instead.
    """
    ref = ModelRef.of(candidate)
    champion = _champion(registry, ref, baseline)
    refs = [str(ref)] + ([champion] if champion else [])
    rows = [
        m
        for m in problem_metrics(registry, versions=refs, problems=problems)
        if m.status != ProblemStatus.retired.value
    ]
    grid: dict[str, dict[int, dict[str, PatternResult]]] = {}
    slugs = sorted({m.problem for m in rows})
    for result in pattern_results(registry, problems=slugs, versions=refs) if slugs else []:
        grid.setdefault(result.problem, {}).setdefault(result.pattern_id, {})[result.ref] = result
    by_key = {(m.problem, m.ref): m for m in rows}
    out = []
    for slug in slugs:
        mine = by_key[(slug, refs[0])]
        theirs = by_key.get((slug, champion)) if champion else None
        pairs = [
            (answers[refs[0]], answers.get(champion or ""))
            for _, answers in sorted(grid.get(slug, {}).items())
        ]
        out.append(_gate(mine, theirs, champion, pairs))
    return out


def _gate(
    mine: ProblemVersionMetrics,
    theirs: ProblemVersionMetrics | None,
    champion: str | None,
    pairs: list[tuple[PatternResult, PatternResult | None]],
) -> GateResult:
    failing, unanswered = [], []
    broken = fixed = both = 0
    for cand, champ in pairs:
        if not cand.answered:
            unanswered.append(cand.file)
            continue
        champ_known = champ is not None and champ.answered
        if champ_known:
            both += 1
            broken += bool(champ.correct and not cand.correct)  # type: ignore[union-attr]
            fixed += bool(cand.correct and not champ.correct)  # type: ignore[union-attr]
        if not cand.correct:
            failing.append(
                FailingPattern(
                    pattern_id=cand.pattern_id,
                    file=cand.file,
                    sha256=cand.sha256,
                    polarity=cand.polarity,
                    expected=cand.expected,
                    got=cand.got,
                    champion_got=champ.got if champ_known else None,  # type: ignore[union-attr]
                    newly_failing=bool(champ_known and champ.correct),  # type: ignore[union-attr]
                )
            )
    newly = sum(f.newly_failing for f in failing)
    return GateResult(
        problem=mine.problem,
        title=mine.title,
        candidate=mine.ref,
        champion=champion,
        metrics=mine,
        champion_metrics=theirs,
        canary=_canary(mine),
        regression=_regression(champion, newly, mine.allowed_regressions),
        answers=Check(
            "answers",
            True,
            not unanswered,
            f"{len(unanswered)} of {mine.patterns} patterns have no result from {mine.ref}; "
            "replay it, and restore any refused pattern file"
            if unanswered
            else f"all {mine.patterns} patterns answered",
        ),
        mcnemar=McNemar(broken, fixed, both, mcnemar_exact(broken, fixed)) if champion else None,
        failing=failing,
        unanswered=unanswered,
    )


def _canary(m: ProblemVersionMetrics) -> Check:
    rate = m.error_rate
    if rate is None and m.max_error_rate is not None:
        # A requirement nothing was measured against is not met.
        return Check("canary", True, False, f"nothing answered; needs <= {m.max_error_rate:.0%}")
    observed = f"{m.wrong} of {m.answered} wrong"
    if rate is not None and m.interval is not None:
        low, high = m.interval
        observed += f" ({rate:.0%}, 95% CI {low:.0%} to {high:.0%})"
    if m.errored:
        observed += f", {m.errored} of them errored"
    if m.max_error_rate is None:
        return Check("canary", False, True, f"{observed}; no max_error_rate set")
    passed = bool(m.meets_canary)
    relation = "within" if passed else "over"
    return Check("canary", True, passed, f"{observed}; {relation} max {m.max_error_rate:.0%}")


def _regression(champion: str | None, newly: int, allowed: int) -> Check:
    if champion is None:
        return Check("regression", False, True, "no champion to compare with")
    passed = newly <= allowed
    return Check(
        "regression",
        True,
        passed,
        f"{newly} newly failing vs champion {champion}; {allowed} allowed",
    )


def _champion(registry: Registry, candidate: ModelRef, baseline: RefLike | None) -> str | None:
    """The ref the candidate is compared with: ``baseline`` if given, else its model's champion."""
    base = None if baseline is None else ModelRef.of(baseline)
    with registry.reading() as session:
        version_ids(session, [candidate] + ([base] if base else []))
        if base is not None:
            return None if base == candidate else str(base)
        query = select(ModelVersion.version).where(
            ModelVersion.name == candidate.name, col(ModelVersion.is_champion)
        )
        champion = session.exec(query).first()
    return None if champion in (None, candidate.version) else format_ref(candidate.name, champion)
