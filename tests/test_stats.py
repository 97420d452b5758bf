"""The Wilson interval and the exact McNemar test, checked against scipy (a test-only oracle)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from problem_registry.verdicts.stats import mcnemar_exact, wilson_interval


@given(
    st.integers(min_value=1, max_value=2000).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    )
)
def test_wilson_interval_matches_scipy(case: tuple[int, int]) -> None:
    successes, trials = case
    expected = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_wilson_interval_is_wide_on_fifteen_patterns_and_knows_nothing_of_none() -> None:
    low, high = wilson_interval(0, 15)
    assert low == 0.0 and 0.2 < high < 0.21  # "0 of 15 wrong" still allows ~20% error
    assert wilson_interval(15, 15)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("successes", "trials"), [(-1, 3), (4, 3), (0, -1)])
def test_wilson_interval_refuses_impossible_counts(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, trials)


@given(st.integers(0, 400), st.integers(0, 400))
def test_mcnemar_exact_matches_scipy_binomtest(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_is_symmetric_and_tells_noise_from_change() -> None:
    assert mcnemar_exact(3, 1) == mcnemar_exact(1, 3)
    assert mcnemar_exact(2, 2) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 0) == pytest.approx(0.25)  # 3 broken, 0 fixed: could be noise
    assert mcnemar_exact(0, 9) < 0.01  # 9 fixed, none broken: a real change


@pytest.mark.parametrize(("b", "c"), [(400, 620), (990, 1010), (5000, 5100), (30, 3000)])
def test_mcnemar_exact_stays_accurate_and_fast_on_large_counts(b: int, c: int) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    assert math.isfinite(mcnemar_exact(b, c))


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="discordant"):
        mcnemar_exact(-1, 2)
