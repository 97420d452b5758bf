"""What a problem's patterns can catch: the smallest regression its gate fails 80% of the time.

Twelve patterns cannot see a two-point regression, and a lead should know that before trusting a
green run. The estimate simulates candidates from the problem's own registry: a pseudo-candidate is
a random earlier version (so ordinary retrain noise is in it), whose right answers each break with
probability d / (1 - e) (a regression of d points of population error when the baseline's error
is e), broken answers taking scores drawn from the problem's own recorded wrong answers, and the
answers that stay right losing part of the probability a calibrated model would lose with them
(``CALIBRATION``); the gate then decides as it would. Seeded and vectorised over all the problems
of a run at once; docs/verdicts.md compares its predictions with the benchmark's measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    ordinary_spreads,
    score_values,
    t_quantile,
    worst_score,
)
from problem_registry.verdicts.moderation import NO_PRIOR, SpreadPrior

POINTS = np.round(np.arange(0.01, 0.505, 0.01), 2)  # regressions tried: 1 to 50 points
PATTERN_COUNTS = (5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)
REPLICATES = 200
CALIBRATION = 0.5  # see detection(); chosen by benchmarks/verdicts.py (docs/verdicts.md)


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
    base_score: np.ndarray | None  # (n,) the score compared (p, or clipped log p)
    versions_score: np.ndarray | None  # (V, n)
    wrong_scores: np.ndarray  # recorded scores of wrong answers
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
    """Scores (p, or clipped log p) of the baseline, the pseudo-candidates, the recorded wrong
    answers and the history."""
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


def _flips_needed(base: np.ndarray, rates: np.ndarray, alpha: float) -> np.ndarray:
    """(B,): the net breaks the flip-rate test needs to reach ``alpha`` (m + 1: never)."""
    m = base.shape[1]
    passing = net_tails(base, rates)[:, m + 1 :] <= alpha  # column k - 1: P(net >= k)
    needed: np.ndarray = np.where(passing.any(axis=1), passing.argmax(axis=1) + 1, m + 1)
    return needed


_QUANTILES: dict[tuple[float, float], float] = {}


def _t_quantile(alpha: float, df: float) -> float:
    """t_quantile, remembered: a run's problems share a handful of degrees of freedom."""
    key = (alpha, round(float(df), 6))
    if key not in _QUANTILES:
        _QUANTILES[key] = t_quantile(alpha, key[1])
    return _QUANTILES[key]


@dataclass(frozen=True)
class _Stack:
    """Every problem's arrays padded to the largest, built once: the chunks slice it, so no
    step of a bisection loops over problems in Python."""

    sizes: np.ndarray  # (P,) patterns compared
    base_right: np.ndarray  # (P, N) bool
    versions_right: np.ndarray  # (P, V, N) bool: pseudo-candidates' answers
    versions: np.ndarray  # (P,) pseudo-candidates per problem
    rates: np.ndarray  # (P, N)
    error: np.ndarray  # (P,)
    no_history: np.ndarray  # (P,) bool
    scored: np.ndarray  # (P,) bool: the model gave scores
    base_score: np.ndarray  # (P, N)
    versions_score: np.ndarray  # (P, V, N)
    history_score: np.ndarray  # (P, H, N), nan where a problem has no such row
    wrong: np.ndarray  # (P, W) recorded wrong answers' scores, padded
    wrong_count: np.ndarray  # (P,)

    @classmethod
    def of(cls, regs: Sequence[_Registry]) -> _Stack:
        count = len(regs)
        n = max([len(r.base_right) for r in regs] + [1])
        v = max([len(r.versions_right) for r in regs] + [1])
        h = max([len(r.history_score) for r in regs if r.history_score is not None] + [1])
        w = max(len(r.wrong_scores) for r in regs) if regs else 1
        stack = cls(
            np.array([len(r.base_right) for r in regs], dtype=int),
            np.zeros((count, n), dtype=bool),
            np.zeros((count, v, n), dtype=bool),
            np.array([len(r.versions_right) for r in regs], dtype=int),
            np.zeros((count, n)),
            np.array([r.error for r in regs]),
            np.array([r.history_versions == 0 for r in regs], dtype=bool),
            np.array([r.base_score is not None for r in regs], dtype=bool),
            np.zeros((count, n)),
            np.zeros((count, v, n)),
            np.full((count, h, n), np.nan),
            np.zeros((count, w)),
            np.array([len(r.wrong_scores) for r in regs], dtype=int),
        )
        for i, r in enumerate(regs):
            size, rows = len(r.base_right), len(r.versions_right)
            stack.base_right[i, :size] = r.base_right
            stack.versions_right[i, :rows, :size] = r.versions_right == 1.0
            stack.rates[i, :size] = r.rates
            stack.wrong[i, : len(r.wrong_scores)] = r.wrong_scores
            if r.base_score is not None and r.versions_score is not None:
                stack.base_score[i, :size] = r.base_score
                stack.versions_score[i, :rows, :size] = r.versions_score
            if r.history_score is not None:
                stack.history_score[i, : len(r.history_score), :size] = r.history_score
        return stack


class _Chunk:
    """Problems simulated together, each comparing m patterns: every random draw and every
    per-problem threshold made once, then :meth:`rates` at any regression sizes (common random
    numbers: rates grow with the size)."""

    def __init__(
        self,
        stack: _Stack,
        members: np.ndarray,
        width: int | None,
        settings: GateSettings,
        problems_in_run: int,
        replicates: int,
        rng: np.random.Generator,
        prior: SpreadPrior,
        calibration: float,
    ) -> None:
        sizes = stack.sizes[members]
        count = len(members)
        m = int(sizes[0]) if width is None else width  # None: the members share a size
        if width is None:
            columns = np.broadcast_to(np.arange(m), (count, m))
        else:
            columns = (rng.random((count, m)) * sizes[:, None]).astype(int)
        picks = (rng.random((count, replicates)) * stack.versions[members][:, None]).astype(int)
        rows, deep = members[:, None], members[:, None, None]
        cells = (deep, picks[:, :, None], columns[:, None, :])  # (B, R, m) of each problem's
        self.settings = settings
        self.base = stack.base_right[rows, columns]  # (B, m)
        self.pseudo = stack.versions_right[cells]  # (B, R, m)
        self.error = stack.error[members]
        # float32 and 2.0 where the pseudo-candidate is already wrong (nothing left to break):
        # a regression's breaks are then one comparison, the simulation's most repeated step.
        draws = rng.random(self.pseudo.shape, dtype=np.float32)
        self.draws = np.where(self.pseudo, draws, np.float32(2.0))
        # Broken and fixed before any regression: what every size adds its breaks to.
        self.broken_before = (self.base[:, None, :] & ~self.pseudo).sum(axis=2)  # (B, R)
        self.fixed_before = (~self.base[:, None, :] & self.pseudo).sum(axis=2)
        alpha = _alpha(settings, problems_in_run)
        scored = settings.rule in (Rule.SCORE, Rule.COMBINED)
        self.label_rule = settings.labels_rule if scored else settings.rule
        self.no_history = stack.no_history[members]
        self.needed = _flips_needed(self.base, stack.rates[rows, columns], alpha)
        self.mcnemar = _mcnemar_table(m) <= alpha
        self.use_score = stack.scored[members] & scored
        self.calibration = calibration if settings.score == "prob" else 0.0
        if not self.use_score.any():
            return
        height = np.arange(stack.history_score.shape[1])[None, :, None]
        history = stack.history_score[deep, height, columns[:, None, :]]  # (B, H, m)
        scale, df = ordinary_spreads(history, robust=settings.robust_scale)
        self.use_score &= ~np.isnan(scale)
        picked = rng.random(self.pseudo.shape) * stack.wrong_count[members][:, None, None]
        self.wrong = stack.wrong[deep, picked.astype(int)]  # (B, R, m)
        self.versions = stack.versions_score[cells]
        self.base_score = stack.base_score[rows, columns]
        # What breaking every right answer takes off the mean score, on average per point.
        mean_wrong = (stack.wrong[members].sum(axis=1) / stack.wrong_count[members])[:, None, None]
        self.break_drop = (self.pseudo * (self.versions - mean_wrong)).mean(axis=(1, 2))
        # The prior was fitted on the problems' own pattern counts; a mean over m patterns
        # moves about n / m times as much (in variance) as one over n.
        scale, df = prior.moderate(scale, df, weight=sizes / m)
        quantiles = [
            _t_quantile(alpha, d) if ok else 0.0 for d, ok in zip(df, self.use_score, strict=True)
        ]
        self.threshold = np.where(self.use_score, np.array(quantiles) * scale, -np.inf)

    def rates(self, points: np.ndarray) -> np.ndarray:
        """(B, G): the share of replicates the gate fails at each problem's ``points`` (G, B)."""
        q = np.minimum(1.0, points / np.maximum(1e-9, 1.0 - self.error)[None, :])
        limit = q.astype(np.float32)[:, :, None, None]
        broken = self.draws[None] < limit  # (G, B, R, m): right answers the regression broke
        # b: right at the baseline, wrong now; c: wrong at the baseline, right now.
        on_right = (broken & self.base[None, :, None, :]).sum(axis=3)
        b = self.broken_before[None] + on_right
        c = self.fixed_before[None] - (broken.sum(axis=3) - on_right)
        fails = self._label_fails(b, c)
        if self.use_score.any():
            moved = np.where(broken, self.wrong[None], self.versions[None])
            change = (moved - self.base_score[None, :, None, :]).mean(axis=3)
            if self.calibration:
                # A calibrated model's mean p(expected) falls by as much as its error rises
                # (0.99 points per point on the benchmark's models); the answers that stay
                # right lose (this share of) what the broken ones do not account for.
                missing = np.maximum(0.0, points - q * self.break_drop[None, :])
                change -= self.calibration * missing[:, :, None]
            score = change <= self.threshold[None, :, None]
            if self.settings.rule is Rule.COMBINED:
                score &= b - c >= 1
            fails = np.where(self.use_score[None, :, None], score, fails)
        rates: np.ndarray = fails.mean(axis=2).T
        return rates

    def _label_fails(self, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        net = b - c
        rule = self.label_rule
        fails: np.ndarray
        if rule is Rule.NEWLY_FAILING:
            fails = b > self.settings.allowed_newly_failing
            return fails
        if rule is Rule.NET_BREAKS:
            fails = net >= self.settings.min_net_breaks
            return fails
        mcnemar: np.ndarray = (net >= 1) & self.mcnemar[b, c]
        if rule is Rule.MCNEMAR:
            return mcnemar
        flips = net >= self.needed[None, :, None]
        # As the decision does: no history, no flip rates, McNemar instead.
        return np.where(self.no_history[None, :, None], mcnemar, flips)


CHUNK = 128  # problems simulated together: (G, 128, R, m) booleans stay tens of MB


class _Batches:
    """``members`` of the stack in chunks; ``width``: resample this many patterns (None: each
    problem's own, and then the members must share a pattern count)."""

    def __init__(
        self,
        stack: _Stack,
        members: np.ndarray,
        width: int | None,
        settings: GateSettings,
        problems_in_run: int,
        replicates: int,
        seed: int,
        prior: SpreadPrior,
        calibration: float = CALIBRATION,
    ) -> None:
        self.chunks = []
        for start in range(0, len(members), CHUNK):
            rng = np.random.default_rng([seed, width or 0, start])
            chunk = members[start : start + CHUNK]
            self.chunks.append(
                _Chunk(
                    stack,
                    chunk,
                    width,
                    settings,
                    problems_in_run,
                    replicates,
                    rng,
                    prior,
                    calibration,
                )
            )

    def rates(self, points: np.ndarray) -> np.ndarray:
        """(members, G) at ``points`` (G, members)."""
        out, start = [], 0
        for chunk in self.chunks:
            width = len(chunk.error)
            out.append(chunk.rates(points[:, start : start + width]))
            start += width
        return np.vstack(out) if out else np.zeros((0, len(points)))


def detection(
    evidence: ProblemEvidence,
    settings: GateSettings | None = None,
    points: np.ndarray = POINTS,
    *,
    problems_in_run: int = 1,
    patterns: int | None = None,
    replicates: int = REPLICATES,
    seed: int = 0,
    prior: SpreadPrior = NO_PRIOR,
    calibration: float = CALIBRATION,
) -> np.ndarray:
    """The share of simulated regressions of each size in ``points`` that the gate fails.

    ``patterns``: resample the problem's patterns to this many (what more patterns would buy).
    ``prior``: the run's common spread, when the gate moderates the score test.
    ``calibration``: how much of a calibrated model's drop in p(expected) beyond the broken
    answers' own is simulated (0: only broken answers lose probability).
    Common random numbers across ``points`` keep the curve monotone.
    """
    settings = settings or GateSettings()
    reg = _registry(evidence, settings)
    points = np.asarray(points, dtype=float)
    if len(reg.base_right) == 0:
        return np.zeros(len(points))
    stack = _Stack.of([reg])
    batches = _Batches(
        stack,
        np.array([0]),
        patterns,
        settings,
        problems_in_run,
        replicates,
        seed,
        prior,
        calibration,
    )
    rates: np.ndarray = batches.rates(points[:, None])[0]
    return rates


def _first_enough(
    rates_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    options: int,
    low: np.ndarray,
    target: float,
    high: np.ndarray | None = None,
) -> np.ndarray:
    """Per problem, the smallest option index whose rate reaches ``target`` (``options``: none),
    by bisection in [low, high]: rates grow with the index. ``low == high`` skips a problem."""
    high = np.full(len(low), options) if high is None else high
    while (asking := low < high).any():
        middle = (low + high) // 2
        enough = rates_at(np.minimum(middle, options - 1), asking) >= target
        high = np.where(asking & enough, middle, high)
        low = np.where(asking & ~enough, middle + 1, low)
    return low


def estimate_powers(
    evidence: Sequence[ProblemEvidence],
    settings: GateSettings | None = None,
    *,
    problems_in_run: int = 1,
    replicates: int = REPLICATES,
    seed: int = 0,
    prior: SpreadPrior = NO_PRIOR,
) -> list[PowerEstimate]:
    """Each problem's detectable regression and the patterns its promise would need.

    Both are found by bisection (the smallest size caught, then the smallest pattern count), all
    problems simulated together in batches: at 1,000 problems a curve of 50 sizes per problem,
    one problem at a time, was most of a gate's time.
    """
    settings = settings or GateSettings()
    regs = [_registry(e, settings) for e in evidence]
    stack = _Stack.of(regs)
    sizes = stack.sizes
    target, promised = settings.power_target, settings.promised_points
    detectable = np.full(len(regs), len(POINTS))
    at_promise = np.zeros(len(regs))
    for n in sorted(set(sizes.tolist()) - {0}):
        members = np.flatnonzero(sizes == n)
        batches = _Batches(stack, members, None, settings, problems_in_run, replicates, seed, prior)
        at_promise[members] = batches.rates(np.full((1, len(members)), promised))[:, 0]

        def at_size(index: np.ndarray, _: np.ndarray, batches: _Batches = batches) -> np.ndarray:
            # Every member, asking or not: the same chunks draw the same random numbers.
            rates: np.ndarray = batches.rates(POINTS[index][None, :])[:, 0]
            return rates

        detectable[members] = _first_enough(
            at_size,
            len(POINTS),
            np.zeros(len(members), dtype=int),
            target,
        )
    # Problems asking about the same pattern count are simulated together.
    counts = np.array(PATTERN_COUNTS)

    def at_count(index: np.ndarray, asking: np.ndarray) -> np.ndarray:
        rates = np.zeros(len(regs))
        index = np.minimum(index, len(counts) - 1)
        for count in sorted(set(counts[index[asking]].tolist())):
            members = np.flatnonzero((counts[index] == count) & asking)
            batches = _Batches(
                stack,
                members,
                count,
                settings,
                problems_in_run,
                max(1, replicates // 2),  # "about N patterns": half the replicates of a size
                seed + count,
                prior,
            )
            rates[members] = batches.rates(np.full((1, len(members)), promised))[:, 0]
        return rates

    # A problem that keeps its promise with its own patterns needs at most about as many; one
    # that does not needs more: one bisection step fewer.
    own = np.searchsorted(counts, sizes)
    keeps = at_promise >= target
    start = np.where(sizes == 0, len(counts), np.where(keeps, 0, np.minimum(own, len(counts))))
    limit = np.where(keeps, np.minimum(own + 1, len(counts)), len(counts))
    # Most weak problems stay weak at 100 patterns: asked first, they need no bisection.
    asking = (start < limit) & (limit == len(counts))
    largest = np.full(len(regs), len(counts) - 1)
    hopeless = asking & (at_count(largest, asking) < target)
    start = np.where(hopeless, len(counts), start)
    limit = np.where(asking & ~hopeless, len(counts) - 1, limit)
    needed = _first_enough(at_count, len(counts), start, target, limit)
    return [
        PowerEstimate(
            detectable=float(POINTS[d]) if d < len(POINTS) else None,
            detection_at_promise=float(at_promise[i]),
            promised=promised,
            target=target,
            patterns_for_promise=int(counts[k]) if sizes[i] > 0 and k < len(counts) else None,
            problems_in_run=problems_in_run,
        )
        for i, (d, k) in enumerate(zip(detectable, needed, strict=True))
    ]


def estimate_power(
    evidence: ProblemEvidence,
    settings: GateSettings | None = None,
    *,
    problems_in_run: int = 1,
    replicates: int = REPLICATES,
    seed: int = 0,
    prior: SpreadPrior = NO_PRIOR,
) -> PowerEstimate:
    """One problem's :func:`estimate_powers`."""
    return estimate_powers(
        [evidence],
        settings,
        problems_in_run=problems_in_run,
        replicates=replicates,
        seed=seed,
        prior=prior,
    )[0]
