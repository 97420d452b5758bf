"""What a problem's patterns can catch: the smallest regression its gate fails 80% of the time.

Twelve patterns cannot see a two-point regression, and a lead should know that before trusting a
green run. The estimate simulates candidates from the problem's own registry: a pseudo-candidate is
a random earlier version (so ordinary retrain noise is in it), whose right answers each break with
probability d / (1 - e) (a regression of d points of population error when the baseline's error
is e), broken answers taking scores drawn from the problem's own recorded wrong answers; the gate
then decides as it would. Seeded, vectorised, pure: a few milliseconds per problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from problem_registry.verdicts.decision import (
    Correction,
    GateSettings,
    ProblemEvidence,
    Rule,
    _answers,
    _matrix,
    _probs,
    flip_rates,
    net_tails,
    ordinary_spread,
    score_values,
    t_quantile,
    worst_score,
)

POINTS = np.round(np.arange(0.01, 0.505, 0.01), 2)  # regressions tried: 1 to 50 points
PATTERN_COUNTS = (5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)
REPLICATES = 200


@dataclass(frozen=True)
class PowerEstimate:
    """``detectable``: smallest regression (0-1, population error) failed ``target`` of the time."""

    detectable: float | None  # None: not even 50 points
    detection_at_promise: float
    promised: float
    target: float
    patterns_for_promise: int | None  # about this many patterns would catch ``promised``
    problems_in_run: int

    @property
    def adequate(self) -> bool:
        """False flags a problem whose patterns cannot catch what its gate promises."""
        return self.detectable is not None and self.detectable <= self.promised + 1e-9

    def statement(self) -> str:
        """One line for a lead."""
        caught = (
            "no regression up to 50 points"
            if self.detectable is None
            else (f"regressions of {self.detectable * 100:.0f}+ points")
        )
        more = (
            "more than 100"
            if self.patterns_for_promise is None
            else (f"about {self.patterns_for_promise}")
        )
        return (
            f"catches {caught} {self.target:.0%} of the time; {more} patterns would catch "
            f"{self.promised * 100:.0f} points"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "detectable": self.detectable,
            "detection_at_promise": self.detection_at_promise,
            "promised": self.promised,
            "target": self.target,
            "patterns_for_promise": self.patterns_for_promise,
            "problems_in_run": self.problems_in_run,
            "adequate": self.adequate,
            "statement": self.statement(),
        }


@dataclass(frozen=True)
class _Registry:
    """One problem's paired patterns as the simulation needs them."""

    base_right: np.ndarray  # (n,) bool
    versions_right: np.ndarray  # (V, n) pseudo-candidates' answers, 1/0 (gaps: the baseline's)
    base_score: np.ndarray | None  # (n,) clipped log p
    versions_score: np.ndarray | None  # (V, n)
    wrong_scores: np.ndarray  # recorded clipped log p of wrong answers
    history_score: np.ndarray | None  # (H + 1, n) with nan gaps, for the ordinary spread
    rates: np.ndarray  # (n,) historic flip rates
    history_versions: int

    @property
    def error(self) -> float:
        return float(1.0 - self.base_right.mean()) if len(self.base_right) else 0.0


def _registry(evidence: ProblemEvidence, settings: GateSettings) -> _Registry:
    n = len(evidence.polarity)
    base = _answers(evidence.baseline_correct, n, "baseline_correct")
    history = _matrix(evidence.history_correct, n, _answers, "history_correct")
    keep = ~np.isnan(base)
    base, history = base[keep], history[:, keep]
    rates = flip_rates(np.vstack([history, base[None, :]]))
    versions = history if len(history) else base[None, :]
    versions = np.where(np.isnan(versions), base[None, :], versions)
    scores = _scores(evidence, settings, history, keep)
    base_score, versions_score, wrong, history_score = scores
    answered = int((~np.isnan(history)).any(axis=1).sum()) if history.size else 0
    return _Registry(
        base == 1.0, versions, base_score, versions_score, wrong, history_score, rates, answered
    )


def _scores(
    evidence: ProblemEvidence, settings: GateSettings, history_right: np.ndarray, keep: np.ndarray
) -> tuple[Any, Any, np.ndarray, Any]:
    """Clipped log p of the baseline, the pseudo-candidates, recorded wrong answers, history."""
    floor = worst_score(settings)
    if evidence.baseline_prob is None or evidence.candidate_prob is None:
        return None, None, np.array([floor]), None
    n, h = len(keep), len(history_right)
    base = score_values(_probs(evidence.baseline_prob, n, "baseline_prob"), settings)
    base = np.where(np.isnan(base[keep]), floor, base[keep])
    hist = np.full((h, int(keep.sum())), np.nan)
    if evidence.history_prob is not None and len(evidence.history_prob) == h and h:
        hist = score_values(_matrix(evidence.history_prob, n, _probs, "history_prob"), settings)[
            :, keep
        ]
    base_right = _answers(evidence.baseline_correct, n, "baseline_correct")[keep] == 1.0
    wrong = np.concatenate([hist[(history_right == 0.0) & ~np.isnan(hist)], base[~base_right]])
    versions = np.where(np.isnan(hist), base[None, :], hist) if h else base[None, :]
    history_score = np.vstack([hist, base[None, :]])
    return base, versions, (wrong if len(wrong) else np.array([floor])), history_score


def _alpha(settings: GateSettings, problems_in_run: int) -> float:
    """The smallest p the run needs to fail one problem (Holm's and BH's first step)."""
    if settings.correction is Correction.NONE:
        return settings.alpha
    return settings.alpha / max(1, problems_in_run)


@lru_cache(maxsize=64)
def _mcnemar_table(m: int) -> np.ndarray:
    """One-sided exact McNemar p for every (broken, fixed) with broken + fixed <= m."""
    table = np.ones((m + 1, m + 1))
    for total in range(m + 1):
        tails = np.cumsum([math.comb(total, k) for k in range(total, -1, -1)])[::-1] / 2**total
        for broken in range(total + 1):
            table[broken, total - broken] = min(1.0, float(tails[broken]))
    return table


def _label_fail(
    rule: Rule,
    b: np.ndarray,
    c: np.ndarray,
    reg: _Registry,
    columns: np.ndarray,
    alpha: float,
    settings: GateSettings,
) -> np.ndarray:
    net = b - c
    fails: np.ndarray
    if rule is Rule.NEWLY_FAILING:
        fails = b > settings.allowed_newly_failing
    elif rule is Rule.NET_BREAKS:
        fails = net >= settings.min_net_breaks
    elif rule is Rule.FLIPS:
        tails = net_tails(reg.base_right[columns], reg.rates[columns])  # index m + k: net >= k
        passing = np.flatnonzero(tails[len(columns) + 1 :] <= alpha)
        k = int(passing[0]) + 1 if len(passing) else len(columns) + 1
        fails = net >= k
    else:
        fails = (net >= 1) & (_mcnemar_table(len(columns))[b, c] <= alpha)
    return fails


def detection(
    evidence: ProblemEvidence,
    settings: GateSettings | None = None,
    points: np.ndarray = POINTS,
    *,
    problems_in_run: int = 1,
    patterns: int | None = None,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> np.ndarray:
    """The share of simulated regressions of each size in ``points`` that the gate fails.

    ``patterns``: resample the problem's patterns to this many (what more patterns would buy).
    Common random numbers across ``points`` keep the curve monotone.
    """
    settings = settings or GateSettings()
    reg = _registry(evidence, settings)
    return _detection(
        reg, settings, np.asarray(points), problems_in_run, patterns, replicates, seed
    )


def _detection(
    reg: _Registry,
    settings: GateSettings,
    points: np.ndarray,
    problems_in_run: int,
    patterns: int | None,
    replicates: int,
    seed: int,
) -> np.ndarray:
    n = len(reg.base_right)
    if n == 0:
        return np.zeros(len(points))
    rng = np.random.default_rng(seed)
    columns = np.arange(n) if patterns is None else rng.integers(0, n, patterns)
    m = len(columns)
    pick = rng.integers(0, len(reg.versions_right), replicates)
    pseudo = reg.versions_right[pick][:, columns] == 1.0  # (R, m)
    base = reg.base_right[columns]
    q = np.minimum(1.0, points / max(1e-9, 1.0 - reg.error))  # (G,)
    breaks = rng.random((replicates, m))[None, :, :] < q[:, None, None]  # (G, R, m)
    right = pseudo[None, :, :] & ~breaks
    b = (base & ~right).sum(axis=2)
    c = (~base & right).sum(axis=2)
    alpha = _alpha(settings, problems_in_run)
    use_score = settings.rule in (Rule.SCORE, Rule.COMBINED) and reg.base_score is not None
    spread = None
    if use_score and reg.history_score is not None:
        spread = ordinary_spread(reg.history_score[:, columns], robust=settings.robust_scale)
    if not use_score or spread is None:
        rule = (
            settings.labels_rule
            if settings.rule in (Rule.SCORE, Rule.COMBINED)
            else (settings.rule)
        )
        if rule is Rule.FLIPS and reg.history_versions == 0:
            rule = Rule.MCNEMAR  # as the decision does: no history, no flip rates
        label_rates: np.ndarray = _label_fail(rule, b, c, reg, columns, alpha, settings).mean(
            axis=1
        )
        return label_rates
    scale, df = spread
    assert reg.versions_score is not None and reg.base_score is not None
    wrong = rng.choice(reg.wrong_scores, size=(replicates, m))
    cand = np.where(breaks & pseudo[None], wrong[None], reg.versions_score[pick][:, columns][None])
    change = (cand - reg.base_score[columns][None, None, :]).mean(axis=2)
    fail = change / scale <= t_quantile(alpha, df)
    if settings.rule is Rule.COMBINED:
        fail &= b - c >= 1
    rates: np.ndarray = fail.mean(axis=1)
    return rates


def _smallest(points: np.ndarray, rates: np.ndarray, target: float) -> float | None:
    hit = np.flatnonzero(rates >= target)
    return float(points[hit[0]]) if len(hit) else None


def estimate_power(
    evidence: ProblemEvidence,
    settings: GateSettings | None = None,
    *,
    problems_in_run: int = 1,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> PowerEstimate:
    """The problem's detectable regression and the patterns its promise would need."""
    settings = settings or GateSettings()
    reg = _registry(evidence, settings)
    args = (problems_in_run, None, replicates, seed)
    curve = _detection(reg, settings, POINTS, *args)
    promise = np.array([settings.promised_points])
    at_promise = float(_detection(reg, settings, promise, *args)[0])
    needed = None
    if len(reg.base_right):
        # Detection grows with the number of patterns: a bisection over PATTERN_COUNTS asks ~4
        # simulations where a scan asked up to 13, most of an estimate's time.
        def enough(count: int) -> bool:
            got = _detection(
                reg, settings, promise, problems_in_run, count, replicates, seed + count
            )
            return bool(got[0] >= settings.power_target)

        low, high = 0, len(PATTERN_COUNTS)  # the answer's index lies in [low, high]
        while low < high:
            middle = (low + high) // 2
            if enough(PATTERN_COUNTS[middle]):
                high = middle
            else:
                low = middle + 1
        needed = PATTERN_COUNTS[low] if low < len(PATTERN_COUNTS) else None
    return PowerEstimate(
        detectable=_smallest(POINTS, curve, settings.power_target),
        detection_at_promise=at_promise,
        promised=settings.promised_points,
        target=settings.power_target,
        patterns_for_promise=needed,
        problems_in_run=problems_in_run,
    )
