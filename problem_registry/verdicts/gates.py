"""Gates: is a candidate model version really worse than its baseline, problem by problem?

Each problem gets one of three outcomes from :mod:`~problem_registry.verdicts.decision`:

- **fail**: a confident regression (CI red): the expected answers' probabilities fell beyond how
  far they move between ordinary earlier versions, with more patterns broken than fixed (labels
  only: more net breaks than each pattern's own flip rate explains); or the candidate's error
  rate is confidently above the problem's ``max_error_rate`` (its Wilson interval entirely
  above); or a pattern has no answer from the candidate (no pass by omission);
- **review**: suggestive, not confident (CI green, listed for a person): a small unadjusted
  p-value, two net breaks, or an error rate whose point estimate is over the limit;
- **pass**.

False alarms are controlled across all problems of a run (Benjamini-Hochberg), so a plain retrain
rarely fails a run of 8 problems or of 1,000. A problem's ``allowed_regressions`` lets a lead
accept that many net breaks before a regression may fail. The defaults come from
``benchmarks/verdicts.py`` (docs/verdicts.md). Retired problems do not gate. Gates read stored
results only: replay the candidate, its baseline and its history first. The API::

    for gate in evaluate(registry, candidate="digits@v3"):
        assert gate.passed, gate.message        # review keeps CI green; gate.outcome says so
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from problem_registry.enums import ProblemStatus
from problem_registry.refs import ModelRef, RefLike
from problem_registry.replay.selection import prior_versions
from problem_registry.store.model_versions import version_ids
from problem_registry.store.registry import Registry
from problem_registry.store.signoffs import SignOffView, signoffs
from problem_registry.verdicts.decision import (
    GateSettings,
    Outcome,
    ProblemEvidence,
    Verdict,
    decide_run,
)
from problem_registry.verdicts.metrics import (
    PatternResult,
    ProblemVersionMetrics,
    problem_metrics,
)
from problem_registry.verdicts.pattern_grid import AnswerMatrix, answer_matrices
from problem_registry.verdicts.signoffs import applicable, held_to_signoff

# Earlier versions whose answers tell how much each pattern moves between ordinary retrains: the
# most recent ones, so the read stays bounded at 100 versions (the benchmark used 6).
HISTORY_VERSIONS = 10


@dataclass(frozen=True)
class FailingPattern:
    pattern_id: int
    file: str  # the name it was added under
    sha256: str
    polarity: str
    expected: str
    got: str
    champion_got: str | None  # None: no baseline, or it has no result for this pattern
    newly_failing: bool  # the baseline got it right

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
    champion: str | None  # the baseline: the champion unless another version was given
    metrics: ProblemVersionMetrics
    champion_metrics: ProblemVersionMetrics | None
    verdict: Verdict
    failing: list[FailingPattern] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # files without a candidate result
    # Files whose right-or-wrong changed between a non-deterministic candidate's repeats.
    flaky: list[str] = field(default_factory=list)
    signoff: SignOffView | None = None  # the sign-off the candidate was held to (issue 19)
    below_signoff: bool = False  # confidently worse than it: FAIL (verdicts.signoffs)

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome

    @property
    def passed(self) -> bool:
        """CI stays green: a pass, or a review (a person looks; the run does not fail)."""
        return self.verdict.outcome is not Outcome.FAIL

    @property
    def newly_failing(self) -> int:
        return sum(f.newly_failing for f in self.failing)

    @property
    def numbers(self) -> str:
        """The verdict's numbers in one line: interval, paired test, rule, power."""
        v = self.verdict
        low, high = v.interval
        parts = [f"error change {low * 100:+.0f} to {high * 100:+.0f} pts (95%)"]
        if v.p_value is not None:
            adjusted = "" if v.adjusted_p is None else f", adjusted {v.adjusted_p:.3g}"
            parts.append(f"p={v.p_value:.3g}{adjusted}")
        parts.append(f"rule: {v.rule}")
        if v.power is not None:
            parts.append(f"power: {v.power.statement()}")
        return "; ".join(parts)

    @property
    def message(self) -> str:
        """What a failing test prints: the verdict, its numbers, then every failing pattern."""
        against = f" vs {self.champion}" if self.champion else " (no baseline: canary only)"
        lines = [f"{self.problem}: {self.outcome.value.upper()}{against}: {self.verdict.reason}"]
        lines.append(f"  {self.numbers}")
        if self.verdict.power is not None and not self.verdict.power.adequate:
            lines.append("  warning: these patterns cannot catch what the gate promises")
        if self.failing:
            lines.append("  failing patterns (file | expected | got | baseline | verdict):")
            lines += [
                f"    {f.file} | {f.expected} | {f.got} | {f.champion_got or '-'} | {f.verdict}"
                for f in self.failing
            ]
        if self.unanswered:
            lines.append("  without a result: " + ", ".join(self.unanswered))
        if self.flaky:
            flaky = ", ".join(self.flaky)
            lines.append(f"  flaky (right in some repeats, wrong in others): {flaky}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "title": self.title,
            "candidate": self.candidate,
            "champion": self.champion,
            "outcome": self.outcome.value,
            "passed": self.passed,
            "verdict": self.verdict.to_dict(),
            "metrics": self.metrics.to_dict(),
            "champion_metrics": self.champion_metrics.to_dict() if self.champion_metrics else None,
            "newly_failing": self.newly_failing,
            "failing": [{**asdict(f), "verdict": f.verdict} for f in self.failing],
            "unanswered": list(self.unanswered),
            "flaky": list(self.flaky),
            "signoff": self.signoff.to_dict() if self.signoff is not None else None,
            "below_signoff": self.below_signoff,
        }


def evaluate(
    registry: Registry,
    candidate: RefLike,
    *,
    problems: Sequence[str] | None = None,
    baseline: RefLike | None = None,
    settings: GateSettings | None = None,
    power: bool = True,
) -> list[GateResult]:
    """One :class:`GateResult` per non-retired problem (by slug), decided together as one run.

    ``baseline`` defaults to the champion of the candidate's model. ``problems`` is the run: the
    false-alarm control spans exactly these.
    """
    ref = ModelRef.of(candidate)
    base = _baseline(registry, ref, baseline)
    history = _history(registry, ref, base)
    refs = [str(ref)] + ([base] if base else [])
    rows = [
        m
        for m in problem_metrics(registry, versions=refs, problems=problems)
        if m.status != ProblemStatus.retired.value
    ]
    slugs = sorted({m.problem for m in rows if m.ref == str(ref)})  # its model's problems
    matrices, details = (
        answer_matrices(registry, problems=slugs, versions=[*history, *refs], detail=refs)
        if slugs
        else ({}, [])
    )
    grid: dict[str, dict[int, dict[str, PatternResult]]] = {}
    for result in details:
        grid.setdefault(result.problem, {}).setdefault(result.pattern_id, {})[result.ref] = result
    by_key = {(m.problem, m.ref): m for m in rows}
    evidence = [
        _evidence(
            slug, matrices.get(slug), len(history), base is not None, by_key[(slug, str(ref))]
        )
        for slug in slugs
    ]
    verdicts = decide_run(evidence, settings, power=power)
    signed = _signoff_verdicts(registry, ref, slugs, settings)
    out = []
    for slug, verdict in zip(slugs, verdicts, strict=True):
        mine = by_key[(slug, str(ref))]
        verdict = _allowance(verdict, mine.allowed_regressions)
        signoff, below = None, False
        if slug in signed:  # a separate rule: never below what a lead signed off
            signoff, against = signed[slug]
            held = held_to_signoff(verdict, signoff, against)
            below = held is not verdict and held.outcome is Outcome.FAIL
            verdict = held
        answers = grid.get(slug, {})
        gate = _gate(mine, by_key.get((slug, base or "")), base, verdict, answers)
        matrix = matrices.get(slug)
        if matrix is not None and matrix.flaky[len(history)].any():
            flaky = np.flatnonzero(matrix.flaky[len(history)])
            gate.flaky = [answers[matrix.pattern_ids[i]][str(ref)].file for i in flaky]
        gate.signoff, gate.below_signoff = signoff, below
        out.append(gate)
    return out


def _signoff_verdicts(
    registry: Registry, ref: ModelRef, slugs: Sequence[str], settings: GateSettings | None
) -> dict[str, tuple[SignOffView, Verdict]]:
    """The candidate judged against each problem's sign-off (issue 19, item 10), with the
    gates' own statistics: the signed-off version is the baseline, the candidate's other earlier
    versions the history. Problems signed off at the same version are decided as one run."""
    if not slugs:
        return {}
    with registry.reading() as session:
        candidate_id = version_ids(session, [ref])[ref]
    applying = applicable(signoffs(registry, slugs), ref.name, candidate_id)
    by_version: dict[str, list[str]] = {}
    for slug, view in sorted(applying.items()):
        by_version.setdefault(view.ref, []).append(slug)
    out: dict[str, tuple[SignOffView, Verdict]] = {}
    for signed_ref, group in by_version.items():
        history = _history(registry, ref, signed_ref)
        matrices, _ = answer_matrices(
            registry, problems=group, versions=[*history, str(ref), signed_ref]
        )
        evidence = [_evidence(slug, matrices.get(slug), len(history), True, None) for slug in group]
        for slug, verdict in zip(group, decide_run(evidence, settings, power=False), strict=True):
            out[slug] = (applying[slug], verdict)
    return out


def _evidence(
    slug: str,
    answers: AnswerMatrix | None,
    history: int,
    has_baseline: bool,
    metrics: ProblemVersionMetrics | None,
) -> ProblemEvidence:
    """The decision's input for one problem: rows are the history, the candidate, the baseline.
    Without ``metrics`` (a sign-off's comparison) there is no canary: only the paired tests."""
    max_error_rate = metrics.max_error_rate if metrics is not None else None
    if answers is None:
        return ProblemEvidence(slug, [], [], [], max_error_rate=max_error_rate)
    correct, prob = answers.correct, answers.p_expected
    none = np.full(len(answers.pattern_ids), np.nan)
    base_right = correct[history + 1] if has_baseline else none
    base_prob = prob[history + 1] if has_baseline else none
    scored = bool(answers.scored[history] and has_baseline and answers.scored[history + 1])
    return ProblemEvidence(
        problem=slug,
        polarity=answers.polarity,
        baseline_correct=base_right,
        candidate_correct=correct[history],
        baseline_prob=base_prob if scored else None,
        candidate_prob=prob[history] if scored else None,
        history_correct=correct[:history],
        history_prob=prob[:history] if scored else None,
        max_error_rate=max_error_rate,
    )


def _allowance(verdict: Verdict, allowed: int) -> Verdict:
    """A regression failing within the problem's ``allowed_regressions`` net breaks is a review."""
    net = verdict.broken - verdict.fixed
    regression = verdict.outcome is Outcome.FAIL and not verdict.rule.startswith(("canary", "ans"))
    if not regression or allowed <= 0 or net > allowed:
        return verdict
    reason = f"{verdict.reason}; within the {allowed} net break(s) this problem allows"
    return replace(verdict, outcome=Outcome.REVIEW, reason=reason)


def _gate(
    mine: ProblemVersionMetrics,
    theirs: ProblemVersionMetrics | None,
    baseline: str | None,
    verdict: Verdict,
    answers: dict[int, dict[str, PatternResult]],
) -> GateResult:
    failing, unanswered = [], []
    for pattern_id in sorted(answers):
        cand = answers[pattern_id].get(mine.ref)
        if cand is None or not cand.answered:
            if cand is not None:
                unanswered.append(cand.file)
            continue
        if cand.correct:
            continue
        champ = answers[pattern_id].get(baseline) if baseline else None
        if champ is not None and not champ.answered:
            champ = None  # the baseline has no answer to show
        failing.append(
            FailingPattern(
                pattern_id=cand.pattern_id,
                file=cand.file,
                sha256=cand.sha256,
                polarity=cand.polarity,
                expected=cand.expected,
                got=cand.got,
                champion_got=champ.got if champ is not None else None,
                newly_failing=bool(champ is not None and champ.correct),
            )
        )
    return GateResult(
        problem=mine.problem,
        title=mine.title,
        candidate=mine.ref,
        champion=baseline,
        metrics=mine,
        champion_metrics=theirs,
        verdict=verdict,
        failing=failing,
        unanswered=unanswered,
    )


def _baseline(registry: Registry, candidate: ModelRef, baseline: RefLike | None) -> str | None:
    """The ref the candidate is compared with: ``baseline`` if given, else its model's champion."""
    base = None if baseline is None else ModelRef.of(baseline)
    with registry.reading() as session:
        version_ids(session, [candidate] + ([base] if base else []))
    if base is not None:
        return None if base == candidate else str(base)
    champion = registry.models.champion(candidate.name)
    return None if champion is None or champion.ref == str(candidate) else champion.ref


def _history(registry: Registry, candidate: ModelRef, baseline: str | None) -> list[str]:
    """The most recent earlier versions of the candidate's model, oldest first, baseline apart."""
    return [r for r in prior_versions(registry, candidate) if r != baseline][-HISTORY_VERSIONS:]


def latest_gate(registry: Registry, slug: str) -> GateResult | None:
    """The problem's gate for the newest version that answered it, judged as CI would: against
    its model's champion, in the run of every active problem. What ``problem show`` says the
    problem's patterns can catch; None before any version answered it."""
    registry.problems.get(slug)  # an unknown slug: ProblemNotFound
    for version in reversed(registry.models.list()):
        answered = problem_metrics(registry, versions=[version.ref], problems=[slug])
        if answered and answered[0].answered:
            statuses = registry.problems.statuses()
            run = [s for s, status in statuses.items() if status is not ProblemStatus.retired]
            if slug not in run:
                run.append(slug)
            return next(
                g for g in evaluate(registry, version.ref, problems=run) if g.problem == slug
            )
    return None
