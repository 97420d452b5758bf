"""Exact and near-exact tails the verdict rule needs, with nothing but math and numpy.

Kept apart from :mod:`problem_registry.verdicts.decision` so the rule reads as a rule; scipy is
their oracle in tests/test_verdict_decision.py and stays out of the runtime dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from problem_registry.verdicts.stats import Z_95


def binom_upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): the one-sided exact McNemar p-value (k breaks of n)."""
    if n < 0:
        raise ValueError(f"need n >= 0, got k={k}, n={n}")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    tail: int = sum(math.comb(n, i) for i in range(k, n + 1))
    return min(1.0, tail / (1 << n))


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for the t distribution below."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (scipy.stats.t.cdf)."""
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if t * t < df:  # near the centre: P(|T| < |t|) directly, without cancelling against 1
        inner = 0.5 * betainc(0.5, df / 2.0, t * t / (df + t * t))
        return 0.5 + inner if t >= 0 else 0.5 - inner
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t < 0 else 1.0 - tail


def t_quantile(q: float, df: float) -> float:
    """The t with ``t_cdf(t, df) == q`` (bisection: called once per setting, not per pattern)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    low, high = -1e6, 1e6
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-10 * max(1.0, abs(mid)):
            break
    return (low + high) / 2


def paired_interval(broken: int, fixed: int, compared: int) -> tuple[float, float]:
    """95% interval of the change in error rate on ``compared`` paired patterns (Agresti-Min).

    Adding half a pattern to each of the four cells keeps the Wald interval honest at 12 patterns
    and 0 discordant ones, where the plain Wald interval collapses to a point.
    """
    if compared <= 0:
        return -1.0, 1.0
    b, c, n = broken + 0.5, fixed + 0.5, compared + 2.0
    centre = (b - c) / n
    half = Z_95 * math.sqrt(max(0.0, (b + c) - (b - c) ** 2 / n)) / n
    return max(-1.0, centre - half), min(1.0, centre + half)


def flip_rates(versions: np.ndarray) -> np.ndarray:
    """Each pattern's chance to flip between two ordinary versions, from all pairs of ``versions``.

    ``versions``: versions x patterns of 1.0 right / 0.0 wrong / nan unanswered. Half a flip in one
    more pair (Jeffreys) keeps a pattern that never moved from counting as one that cannot move.
    """
    # Every (right, wrong) pair of versions is one flip: counted per pattern, not pair by pair.
    right = (versions == 1.0).sum(axis=0)
    answered = (~np.isnan(versions)).sum(axis=0)
    flips = right * (answered - right)
    pairs = answered * (answered - 1) / 2
    rates: np.ndarray = np.minimum(0.5, (flips + 0.5) / (pairs + 1.0))
    return rates


def net_tails(baseline_right: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """``tails[..., k + n]`` = P(breaks - fixes >= k), each pattern flipping at its own rate.

    One problem (``(n,)`` arrays) or a batch of problems (``(B, n)``), computed together.
    """
    right = np.atleast_2d(np.asarray(baseline_right, dtype=bool))
    rate = np.atleast_2d(np.asarray(rates, dtype=float))
    n = rate.shape[1]
    dist = np.zeros((rate.shape[0], 2 * n + 1))
    dist[:, n] = 1.0  # index n holds net 0
    # Shifts by one, not np.roll: the ends hold nothing to wrap (net stays within +-n).
    up, down = right.astype(float), (~right).astype(float)
    for i in range(n):
        moved = rate[:, i : i + 1] * dist
        dist *= 1.0 - rate[:, i : i + 1]
        dist[:, 1:] += moved[:, :-1] * up[:, i : i + 1]  # a break: net one up
        dist[:, :-1] += moved[:, 1:] * down[:, i : i + 1]  # a fix: net one down
    tails: np.ndarray = np.minimum(1.0, np.cumsum(dist[:, ::-1], axis=1)[:, ::-1])
    return tails[0] if np.ndim(rates) == 1 else tails


def net_upper_tail(observed: int, baseline_right: np.ndarray, rates: np.ndarray) -> float:
    """P(breaks - fixes >= observed) when each pattern flips independently at its own rate."""
    n = len(rates)
    index = observed + n
    if index <= 0:
        return 1.0
    return float(net_tails(baseline_right, rates)[index]) if index <= 2 * n else 0.0


def adjust(p_values: Sequence[float], correction: str) -> list[float]:
    """Adjusted p-values: ``correction`` "holm" (step-down), "bh" or "none"; at most 1."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0 or correction == "none":
        return [float(x) for x in p]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction == "holm":
        steps = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        steps = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(1.0, steps)
    return [float(x) for x in out]
