"""Borrow strength across a run's problems for each problem's ordinary spread (moderated t).

A problem's spread between ordinary versions is estimated from a handful of earlier versions,
so its t test has 5-10 degrees of freedom and heavy tails: in a run of 135 problems the one that
really regressed must reach p <= 0.10 / 135, which a t with 5 df almost never grants. The spreads
of a run's problems are alike, so each is shrunk toward their common level and gains the prior's
degrees of freedom: the empirical Bayes "moderated t" of Smyth (2004, limma), with nothing but
math and numpy. When the spreads really differ the prior's degrees of freedom come out small and
little changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Spread = Any  # a float, or a numpy array of them

MAX_PRIOR_DF = 1000.0  # "infinite": the spreads agree within sampling noise


@dataclass(frozen=True)
class SpreadPrior:
    """The run's common spread (``variance``) and how many degrees of freedom it is worth."""

    df: float
    variance: float

    def moderate(self, scale: Spread, df: Spread, *, weight: Spread = 1.0) -> tuple[Spread, Spread]:
        """(scale, df) after shrinking the variance toward the prior's (scaled by ``weight``);
        floats for one problem, arrays for many (the power simulation's)."""
        if self.df <= 0:
            return scale, df
        variance = (self.df * self.variance * weight + df * scale * scale) / (self.df + df)
        return np.sqrt(variance), df + self.df


NO_PRIOR = SpreadPrior(0.0, 0.0)


def digamma(x: float) -> float:
    """psi(x) for x > 0: the recurrence up to 6, then the asymptotic series."""
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / (x * x)
    series = inv * (1 / 12 - inv * (1 / 120 - inv * (1 / 252 - inv * (1 / 240 - inv / 132))))
    return result + math.log(x) - 0.5 / x - series


def trigamma(x: float) -> float:
    """psi'(x) for x > 0: the recurrence up to 6, then the asymptotic series."""
    result = 0.0
    while x < 6.0:
        result += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / (x * x)
    series = 1 / x + inv / 2 + inv / x * (1 / 6 - inv * (1 / 30 - inv * (1 / 42 - inv / 30)))
    return result + series


def tetragamma(x: float) -> float:
    """psi''(x) for x > 0: the recurrence up to 6, then the asymptotic series."""
    result = 0.0
    while x < 6.0:
        result -= 2.0 / (x * x * x)
        x += 1.0
    inv = 1.0 / (x * x)
    series = -inv * (1 + 1 / x + inv * (0.5 - inv * (1 / 6 - inv * (1 / 6 - 0.3 * inv))))
    return result + series


def trigamma_inverse(y: float) -> float:
    """The x with trigamma(x) == y: Newton's method from limma's starting point."""
    if y > 1e7:
        return 1.0 / math.sqrt(y)
    if y < 1e-6:
        return 1.0 / y
    x = 0.5 + 1.0 / y
    for _ in range(50):
        tri = trigamma(x)
        step = tri * (1.0 - tri / y) / tetragamma(x)
        x += step
        if -step / x < 1e-8:
            break
    return x


def fit_prior(variances: Sequence[float], dfs: Sequence[float]) -> SpreadPrior:
    """The scaled-F prior the problems' variances are drawn from (limma's ``fitFDist``).

    Needs at least three problems with a positive variance; otherwise no moderation.
    """
    usable = [(v, d) for v, d in zip(variances, dfs, strict=True) if v > 0 and d > 0]
    if len(usable) < 3:
        return NO_PRIOR
    logs = [math.log(v) - digamma(d / 2) + math.log(d / 2) for v, d in usable]
    mean = sum(logs) / len(logs)
    spread = sum((e - mean) ** 2 for e in logs) / (len(logs) - 1)
    excess = spread - sum(trigamma(d / 2) for _, d in usable) / len(usable)
    if excess <= 0:
        return SpreadPrior(MAX_PRIOR_DF, math.exp(mean))
    df = min(MAX_PRIOR_DF, 2.0 * trigamma_inverse(excess))
    return SpreadPrior(df, math.exp(mean + digamma(df / 2) - math.log(df / 2)))
