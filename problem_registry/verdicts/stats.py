"""The two statistics a lead needs to read 15 patterns honestly, with nothing but :mod:`math`.

A problem holds 10-15 patterns, so "3 of 12 wrong" is a rate with a wide margin, and "one more
pattern failed than last time" is usually noise. The Wilson interval says how wide; the exact
McNemar test says whether two models really differ on the same patterns. Both are a few lines;
scipy is their oracle in the tests and stays out of the runtime dependencies.
"""

from __future__ import annotations

import math

# The 97.5th percentile of the standard normal: a two-sided 95% interval.
Z_95 = 1.959963984540054
EXACT_LIMIT = 1000  # discordant pairs up to which McNemar sums exact integers


def wilson_interval(successes: int, trials: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for ``successes / trials``.

    Contract: ``0 <= low <= successes/trials <= high <= 1``; with no trials nothing is known and
    the interval is ``(0.0, 1.0)``. Unlike the normal ("Wald") interval it stays inside [0, 1] and
    does not collapse to a point at 0 of 12 or 12 of 12, which is where small problems live.
    Matches ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # Clamp the rounding error only: mathematically both ends are already inside [0, 1].
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided p-value of the exact McNemar test on the discordant pairs ``b`` and ``c``.

    ``b``: patterns the first model got right and the second wrong; ``c``: the reverse. Patterns
    both got right or both got wrong say nothing about a difference and are not passed in. Under
    "no difference" each discordant pattern is a fair coin, so the p-value is the two-sided exact
    binomial test of ``b`` successes in ``b + c`` trials at 1/2: the chance of a split at least as
    lopsided. No discordant pattern at all gives 1.0. Matches
    ``scipy.stats.binomtest(b, b + c, 0.5).pvalue``.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    if n <= EXACT_LIMIT:
        # Exact integers, one rounding at the end: what 15 patterns (or a thousand) need.
        cases: int = 2**n  # an int: typeshed types int ** int as Any (negative powers are floats)
        return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / cases)
    # Beyond, big-integer sums get slow: add the terms in log space, scaled by the largest.
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(logs)
    log_tail = top + math.log(sum(math.exp(x - top) for x in logs)) - n * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))
