"""The gate's decision rule: is a candidate really worse than its baseline on each problem?

A problem holds 10-15 patterns, so one pattern more failing is usually noise: a plain retrain
flips a few patterns both ways. The rule therefore weighs breaks against fixes, measures how far
the expected answer's probability fell against how far it moves between ordinary earlier versions
(the problem's own history), and decides all problems of a run together so that a plain retrain
rarely turns CI red whether the run holds 8 problems or 1,000. The defaults below were chosen by
``benchmarks/verdicts.py``; ``docs/verdicts.md`` holds the tables and the reasoning.

Pure Python and numpy: the gates call it with numbers they read from the database::

    verdicts = decide_run([ProblemEvidence(...), ...], GateSettings())
    failed = [v for v in verdicts if v.outcome is Outcome.FAIL]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from problem_registry.verdicts.moderation import NO_PRIOR, SpreadPrior, fit_prior
from problem_registry.verdicts.stats import wilson_interval
from problem_registry.verdicts.tails import (
    adjust,
    betainc,
    binom_upper_tail,
    flip_rates,
    net_tails,
    net_upper_tail,
    paired_interval,
    t_cdf,
    t_quantile,
)

__all__ = [
    "Correction",
    "GateSettings",
    "Outcome",
    "ProblemEvidence",
    "ProblemStats",
    "Rule",
    "Verdict",
    "adjust",
    "assess",
    "betainc",
    "binom_upper_tail",
    "decide_problem",
    "decide_run",
    "decide_stats",
    "flip_rates",
    "net_tails",
    "net_upper_tail",
    "ordinary_spreads",
    "paired_interval",
    "t_cdf",
    "t_quantile",
]

if TYPE_CHECKING:
    from problem_registry.verdicts.power import PowerEstimate

Answer = bool | None  # right, wrong, or no answer
Probability = float | None  # the probability the model gave the expected answer; None: labels only


class Outcome(str, Enum):
    """FAIL turns CI red; REVIEW keeps CI green but lists the problem for a person; PASS: quiet."""

    FAIL = "fail"
    REVIEW = "review"
    PASS = "pass"


class Rule(str, Enum):
    """Which statistic decides; COMBINED is the product's default, the others are for comparison."""

    NEWLY_FAILING = "newly_failing"  # today's gate: more than N patterns newly failing
    NET_BREAKS = "net_breaks"  # broken - fixed >= k
    MCNEMAR = "mcnemar"  # one-sided exact McNemar on broken vs fixed
    FLIPS = "flips"  # net breaks against each pattern's own flip rate in the history
    SCORE = "score"  # the history-standardised drop of log p(expected)
    COMBINED = "combined"  # SCORE when scores exist (and net breaks >= 1), else a label test


class Correction(str, Enum):
    """How a run's p-values are adjusted across its problems."""

    NONE = "none"
    HOLM = "holm"  # family-wise error: the chance that any not-worse problem fails
    BH = "bh"  # Benjamini-Hochberg: the expected share of false fails among fails


@dataclass(frozen=True)
class GateSettings:
    """Gate settings; every field has the default the benchmark chose."""

    rule: Rule = Rule.COMBINED
    correction: Correction = Correction.BH
    alpha: float = 0.08  # FAIL: adjusted one-sided p at most this
    review_alpha: float = 0.10  # REVIEW: the deciding test's unadjusted p at most this
    review_needs_net: bool = False  # True: a score drop needs more broken than fixed to REVIEW
    review_net_breaks: int | None = 2  # also REVIEW when broken - fixed reaches this
    robust_scale: bool = False  # ordinary spread from the median pair, not the root mean square
    labels_rule: Rule = Rule.FLIPS  # COMBINED's test when a model gives labels only
    min_net_breaks: int = 2  # NET_BREAKS' k
    allowed_newly_failing: int = 0  # NEWLY_FAILING's allowance (today's gate)
    score: str = "prob"  # "prob": p(expected) itself; "log": log p(expected), clipped at the floor
    score_floor: float = 1e-3  # log p is clipped here: one hopeless pattern must not decide alone
    canary_interval: bool = True  # FAIL only when the Wilson interval is above max_error_rate
    moderate: bool = True  # shrink each problem's spread toward the run's (moderated t)
    promised_points: float = 0.10  # the regression (population error) the gate promises to catch
    power_target: float = 0.80  # ... this often


@dataclass(frozen=True)
class ProblemEvidence:
    """Everything the rule reads about one problem, per pattern, in the problem's pattern order.

    ``history_*`` rows are earlier versions in registration order, not the baseline nor the
    candidate; a row may hold None where that version has no result. Probabilities are None (the
    whole argument) for a model that gives labels only.
    """

    problem: str
    polarity: Sequence[str]
    baseline_correct: Sequence[Answer] | np.ndarray  # arrays: 1.0 / 0.0 / nan
    candidate_correct: Sequence[Answer] | np.ndarray
    baseline_prob: Sequence[Probability] | np.ndarray | None = None
    candidate_prob: Sequence[Probability] | np.ndarray | None = None
    history_correct: Sequence[Sequence[Answer]] | np.ndarray = ()
    history_prob: Sequence[Sequence[Probability]] | np.ndarray | None = None
    max_error_rate: float | None = None


@dataclass(frozen=True)
class ProblemStats:
    """Every statistic of one problem, whatever the rule: the rules only read these."""

    problem: str
    patterns: int
    compared: int  # patterns the baseline answered (the paired ones)
    unanswered: int  # patterns the candidate did not answer (counted wrong)
    broken: int  # baseline right, candidate wrong
    fixed: int  # baseline wrong, candidate right
    broken_positive: int
    candidate_wrong: int
    p_mcnemar: float  # one-sided exact: P(broken >= observed | broken + fixed, 1/2)
    p_flips: float  # P(net >= observed) when each pattern flips at its historic rate
    p_score: float | None  # one-sided t on the score's mean change; None: no scores or history
    score_change: float | None  # mean change of the score (p(expected)), candidate - baseline
    score_scale: float | None  # its ordinary spread between versions (from the history)
    score_df: float | None
    interval: tuple[float, float]  # 95% for the change in error rate on the paired patterns
    max_error_rate: float | None
    history_versions: int = 0  # earlier versions with at least one answer

    @property
    def net(self) -> int:
        return self.broken - self.fixed


@dataclass(frozen=True)
class Verdict:
    """The decision on one problem: what CI does, which rule decided, and why in one line."""

    problem: str
    outcome: Outcome
    rule: str
    p_value: float | None  # the deciding paired one-sided test's, before adjustment
    adjusted_p: float | None
    interval: tuple[float, float]
    broken: int
    fixed: int
    power: PowerEstimate | None
    reason: str
    stats: ProblemStats = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON reports."""
        power = None if self.power is None else self.power.to_dict()
        return {
            "problem": self.problem,
            "outcome": self.outcome.value,
            "rule": self.rule,
            "p_value": self.p_value,
            "adjusted_p": self.adjusted_p,
            "interval": list(self.interval),
            "broken": self.broken,
            "fixed": self.fixed,
            "power": power,
            "reason": self.reason,
        }


# --- one problem ---------------------------------------------------------------------------------


def _answers(values: Sequence[Answer] | np.ndarray, n: int, what: str) -> np.ndarray:
    """1.0 right, 0.0 wrong, nan no answer."""
    if len(values) != n:
        raise ValueError(f"{what}: {len(values)} values for {n} patterns")
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(float)
    return np.array([np.nan if v is None else float(bool(v)) for v in values], dtype=float)


def _probs(values: Sequence[Probability] | np.ndarray, n: int, what: str) -> np.ndarray:
    if len(values) != n:
        raise ValueError(f"{what}: {len(values)} values for {n} patterns")
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        out = values.astype(float)
    else:
        out = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    if np.any((out < 0) | (out > 1)):
        raise ValueError(f"{what}: probabilities must be in [0, 1]")
    return out


def _matrix(rows: Sequence[Sequence[Any]] | np.ndarray, n: int, convert: Any, what: str) -> Any:
    if len(rows) == 0:
        return np.empty((0, n))
    if isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.dtype.kind == "f":
        if rows.shape[1] != n:
            raise ValueError(f"{what}: {rows.shape[1]} values for {n} patterns")
        return convert(rows.reshape(-1), rows.size, what).reshape(rows.shape)
    return np.vstack([convert(row, n, f"{what}[{i}]") for i, row in enumerate(rows)])


def ordinary_spread(versions: np.ndarray, *, robust: bool = False) -> tuple[float, int] | None:
    """(spread, df): how far a problem's mean score moves between two ordinary versions.

    ``versions``: versions x patterns, nan where a version has no result. The spread is the root
    mean square (or the median, scaled to it) of the mean change between every pair of versions on
    the patterns both answered: how much the patterns move together between ordinary retrains,
    which is why no threshold needs hand tuning. None with fewer than two usable versions.
    """
    scales, dfs = ordinary_spreads(versions[None], robust=robust)
    return None if np.isnan(scales[0]) else (float(scales[0]), int(dfs[0]))


def ordinary_spreads(
    versions: np.ndarray, *, robust: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ordinary_spread` of a batch of problems (problems x versions x patterns) at once:
    (spreads, dfs), nan and 0 where a problem has fewer than two usable versions."""
    batch, count, width = versions.shape
    need = max(1, math.ceil(width / 2))
    answered = ~np.isnan(versions)
    filled = np.where(answered, versions, 0.0)
    squares, counted = [], []
    used = np.zeros((batch, count), dtype=bool)
    for j in range(count):
        for k in range(j + 1, count):
            both = answered[:, j] & answered[:, k]
            pairs = both.sum(axis=1)
            mean = ((filled[:, k] - filled[:, j]) * both).sum(axis=1) / np.maximum(pairs, 1)
            ok = pairs >= need
            squares.append(mean * mean)
            counted.append(ok)
            used[:, j] |= ok
            used[:, k] |= ok
    usable = used.sum(axis=1)
    valid = usable >= 2
    if not squares:
        return np.full(batch, np.nan), np.zeros(batch, dtype=int)
    sq, ok = np.array(squares).T, np.array(counted).T
    if robust:
        # The median pair, scaled to a normal's RMS, is not led by one odd version (e.g. the one
        # whose failures the tester picked as patterns).
        middle = np.array(
            [np.median(row[mask]) if mask.any() else 0.0 for row, mask in zip(sq, ok, strict=True)]
        )
        middle = middle / 0.4549364231195724
    else:
        middle = (sq * ok).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    spreads = np.maximum(np.sqrt(middle), 1e-6)
    return np.where(valid, spreads, np.nan), np.where(valid, usable - 1, 0)


def score_test(
    baseline: np.ndarray, candidate: np.ndarray, history: np.ndarray, *, robust: bool = False
) -> tuple[float, float, int] | None:
    """(mean change, ordinary spread, df) of the score, candidate minus baseline."""
    paired = ~np.isnan(baseline)
    if not paired.any():
        return None
    change = float(np.mean(candidate[paired] - baseline[paired]))
    spread = ordinary_spread(np.vstack([history, baseline[None, :]])[:, paired], robust=robust)
    return None if spread is None else (change, *spread)


def assess(evidence: ProblemEvidence, settings: GateSettings | None = None) -> ProblemStats:
    """Every statistic of one problem (no decision yet: a run decides its problems together)."""
    settings = settings or GateSettings()
    n = len(evidence.polarity)
    base = _answers(evidence.baseline_correct, n, "baseline_correct")
    cand = _answers(evidence.candidate_correct, n, "candidate_correct")
    history = _matrix(evidence.history_correct, n, _answers, "history_correct")
    cand_filled = np.where(np.isnan(cand), 0.0, cand)  # no answer counts wrong: no pass by omission
    paired = ~np.isnan(base)
    broken_mask = paired & (base == 1.0) & (cand_filled == 0.0)
    fixed_mask = paired & (base == 0.0) & (cand_filled == 1.0)
    broken, fixed = int(broken_mask.sum()), int(fixed_mask.sum())
    positive = np.array(
        [str(getattr(p, "value", p)) == "positive" for p in evidence.polarity], dtype=bool
    )
    rates = flip_rates(np.vstack([history, base[None, :]]))[paired]
    scores = _score_stats(evidence, settings, n, history_len=len(history))
    p_score = None
    if scores is not None:
        change, scale, df = scores
        p_score = t_cdf(change / scale, df) if df > 0 else None
    return ProblemStats(
        problem=evidence.problem,
        patterns=n,
        compared=int(paired.sum()),
        unanswered=int(np.isnan(cand).sum()),
        broken=broken,
        fixed=fixed,
        broken_positive=int((broken_mask & positive).sum()),
        candidate_wrong=int((cand_filled == 0.0).sum()),
        p_mcnemar=binom_upper_tail(broken, broken + fixed),
        p_flips=net_upper_tail(broken - fixed, base[paired] == 1.0, rates),
        p_score=p_score,
        score_change=None if scores is None else scores[0],
        score_scale=None if scores is None else scores[1],
        score_df=None if scores is None else scores[2],
        interval=paired_interval(broken, fixed, int(paired.sum())),
        max_error_rate=evidence.max_error_rate,
        history_versions=int((~np.isnan(history)).any(axis=1).sum()),
    )


def score_values(probs: np.ndarray, settings: GateSettings) -> np.ndarray:
    """The score compared between versions: clipped log p or p itself; nan stays nan."""
    values: np.ndarray = (
        probs.astype(float)
        if settings.score == "prob"
        else np.log(np.clip(probs, settings.score_floor, 1.0))
    )
    return values


def worst_score(settings: GateSettings) -> float:
    """The score of no answer, or of a hopeless one."""
    return 0.0 if settings.score == "prob" else math.log(settings.score_floor)


def _score_stats(
    evidence: ProblemEvidence, settings: GateSettings, n: int, history_len: int
) -> tuple[float, float, int] | None:
    if evidence.baseline_prob is None or evidence.candidate_prob is None or n == 0:
        return None
    base = score_values(_probs(evidence.baseline_prob, n, "baseline_prob"), settings)
    cand = score_values(_probs(evidence.candidate_prob, n, "candidate_prob"), settings)
    cand = np.where(np.isnan(cand), worst_score(settings), cand)  # no answer: the worst score
    if evidence.history_prob is None or len(evidence.history_prob) != history_len:
        history = np.empty((0, n))
    else:
        history = score_values(_matrix(evidence.history_prob, n, _probs, "history_prob"), settings)
    return score_test(base, cand, history, robust=settings.robust_scale)


# --- the run: problems decided together ----------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    """One problem's regression evidence under a rule, before the run adjusts p-values."""

    rule: str
    p: float | None  # enters the run's adjustment; None: the rule is a count, not a test
    eligible: bool  # may fail at all (a score drop needs more broken than fixed patterns)
    outright: bool  # a count rule decided FAIL by itself
    review: bool


def _label_finding(stats: ProblemStats, settings: GateSettings, rule: Rule) -> _Finding:
    net = stats.net
    if rule is Rule.NEWLY_FAILING:
        fail = stats.broken > settings.allowed_newly_failing
        return _Finding("newly failing", stats.p_mcnemar, True, fail, False)
    if rule is Rule.NET_BREAKS:
        fail = net >= settings.min_net_breaks
        return _Finding(f"net breaks >= {settings.min_net_breaks}", None, True, fail, net >= 1)
    if rule is Rule.FLIPS and stats.history_versions == 0:
        rule = Rule.MCNEMAR  # no history, no flip rates: the exact conditional test instead
    p = stats.p_flips if rule is Rule.FLIPS else stats.p_mcnemar
    name = "flips (labels)" if rule is Rule.FLIPS else "McNemar one-sided (labels)"
    return _Finding(name, p, net >= 1, False, _review(net, p, settings, net >= 1))


def finding(stats: ProblemStats, settings: GateSettings) -> _Finding:
    """The rule's evidence on one problem; a score rule without scores falls back to labels."""
    rule = settings.rule
    if rule not in (Rule.SCORE, Rule.COMBINED):
        return _label_finding(stats, settings, rule)
    if stats.p_score is None:
        return _label_finding(stats, settings, settings.labels_rule)
    p = stats.p_score
    eligible = stats.net >= 1 if rule is Rule.COMBINED else True
    name = "score drop, net breaks >= 1" if rule is Rule.COMBINED else "score drop"
    gate = eligible or not settings.review_needs_net
    return _Finding(name, p, eligible, False, _review(stats.net, p, settings, gate))


def _review(net: int, p: float, settings: GateSettings, gate: bool) -> bool:
    """Suggestive: a small unadjusted p (where ``gate`` allows), or enough net breaks."""
    by_count = settings.review_net_breaks is not None and net >= settings.review_net_breaks
    return by_count or (gate and p <= settings.review_alpha)


def _canary(stats: ProblemStats, settings: GateSettings) -> tuple[Outcome, str] | None:
    limit = stats.max_error_rate
    if limit is None or stats.patterns == 0:
        return None
    wrong, n = stats.candidate_wrong, stats.patterns
    low, high = wilson_interval(wrong, n)
    text = f"{wrong}/{n} wrong (95% {low:.0%}-{high:.0%}) against max {limit:.0%}"
    if settings.canary_interval and low > limit:
        return Outcome.FAIL, f"canary (Wilson interval above max): {text}"
    if wrong / n > limit:
        if settings.canary_interval:
            return Outcome.REVIEW, f"canary (point above max, interval not): {text}"
        return Outcome.FAIL, f"canary (point estimate above max): {text}"
    return None


SEVERITY = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}


def _regression(
    stats: ProblemStats, found: _Finding, adjusted: float | None, settings: GateSettings
) -> tuple[Outcome, str, str]:
    """(outcome, rule, reason) of the paired comparison with the baseline."""
    change = f"{stats.broken} broken, {stats.fixed} fixed of {stats.compared}"
    if stats.patterns == 0:
        return Outcome.PASS, "no patterns", "no patterns: nothing to judge"
    if stats.unanswered:
        reason = f"{stats.unanswered} of {stats.patterns} patterns unanswered (counted wrong)"
        return Outcome.FAIL, "answers", reason
    tail = _p_text(found.p, adjusted)
    if found.outright or (found.eligible and adjusted is not None and adjusted <= settings.alpha):
        return Outcome.FAIL, found.rule, f"confidently worse: {change}{tail}"
    if found.review:
        return Outcome.REVIEW, found.rule, f"possibly worse, not confidently: {change}{tail}"
    return Outcome.PASS, found.rule, f"not worse beyond ordinary retrains: {change}{tail}"


def _verdict(
    stats: ProblemStats,
    found: _Finding,
    adjusted: float | None,
    settings: GateSettings,
    power: PowerEstimate | None,
) -> Verdict:
    outcome, rule, reason = _regression(stats, found, adjusted, settings)
    canary = _canary(stats, settings)
    if canary is not None and SEVERITY[canary[0]] > SEVERITY[outcome]:
        outcome, reason = canary
        rule = reason.split(":")[0]
    return Verdict(
        problem=stats.problem,
        outcome=outcome,
        rule=rule,
        p_value=found.p,
        adjusted_p=adjusted,
        interval=stats.interval,
        broken=stats.broken,
        fixed=stats.fixed,
        power=power,
        reason=reason,
        stats=stats,
    )


def _p_text(p: float | None, adjusted: float | None) -> str:
    if p is None:
        return ""
    if adjusted is None or adjusted == p:
        return f", p={p:.3g}"
    return f", p={p:.3g} (adjusted {adjusted:.3g})"


def spread_prior(stats: Sequence[ProblemStats], settings: GateSettings) -> SpreadPrior:
    """The run's common ordinary spread, when the settings moderate the score test."""
    if not settings.moderate or settings.rule not in (Rule.SCORE, Rule.COMBINED):
        return NO_PRIOR
    spreads = [(s.score_scale, s.score_df) for s in stats if s.score_scale and s.score_df]
    return fit_prior([scale * scale for scale, _ in spreads], [df for _, df in spreads])


def moderated(stats: ProblemStats, prior: SpreadPrior) -> ProblemStats:
    """``stats`` with its score test's spread shrunk toward the run's (no-op without a prior)."""
    if prior.df <= 0 or stats.score_scale is None or not stats.score_df:
        return stats
    assert stats.score_change is not None
    shrunk, more = prior.moderate(stats.score_scale, stats.score_df)
    scale, df = float(shrunk), float(more)
    p = t_cdf(stats.score_change / scale, df)
    return replace(stats, score_scale=scale, score_df=df, p_score=p)


def decide_stats(
    stats: Sequence[ProblemStats],
    settings: GateSettings | None = None,
    powers: Sequence[PowerEstimate | None] | None = None,
) -> list[Verdict]:
    """Decide a run's problems from their statistics, adjusting p-values across the run."""
    settings = settings or GateSettings()
    prior = spread_prior(stats, settings)
    stats = [moderated(s, prior) for s in stats]
    findings = [finding(s, settings) for s in stats]
    family = [f.p if (f.p is not None and f.eligible) else 1.0 for f in findings]
    adjusted = adjust(family, settings.correction)
    powers = powers if powers is not None else [None] * len(stats)
    return [
        _verdict(s, f, (a if f.p is not None else None), settings, pw)
        for s, f, a, pw in zip(stats, findings, adjusted, powers, strict=True)
    ]


def decide_run(
    evidence: Sequence[ProblemEvidence],
    settings: GateSettings | None = None,
    *,
    power: bool = True,
) -> list[Verdict]:
    """The gate's entry point: one verdict per problem of the run, in the order given.

    ``power`` adds each problem's power estimate (its own patterns and history, at this run's
    size), which says what its gate can catch; it costs a few milliseconds per problem.
    """
    settings = settings or GateSettings()
    stats = [assess(e, settings) for e in evidence]
    estimates: list[PowerEstimate | None] = [None] * len(stats)
    if power:
        from problem_registry.verdicts.power import estimate_powers

        prior = spread_prior(stats, settings)
        estimates = list(
            estimate_powers(evidence, settings, problems_in_run=len(evidence), prior=prior)
        )
    return decide_stats(stats, settings, estimates)


def decide_problem(
    evidence: ProblemEvidence, settings: GateSettings | None = None, *, problems_in_run: int = 1
) -> Verdict:
    """One problem alone, as if it were one of ``problems_in_run`` (Bonferroni's share of alpha)."""
    settings = settings or GateSettings()
    if problems_in_run > 1 and settings.correction is not Correction.NONE:
        settings = replace(settings, alpha=settings.alpha / problems_in_run)
    return decide_run([evidence], settings, power=False)[0]
