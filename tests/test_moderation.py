"""The moderated spread: special functions against scipy, and the prior it fits on known data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

from problem_registry.verdicts.decision import (
    GateSettings,
    ProblemStats,
    decide_stats,
    moderated,
    spread_prior,
)
from problem_registry.verdicts.moderation import (
    MAX_PRIOR_DF,
    NO_PRIOR,
    SpreadPrior,
    digamma,
    fit_prior,
    tetragamma,
    trigamma,
    trigamma_inverse,
)
from problem_registry.verdicts.tails import t_cdf


@given(st.floats(min_value=1e-3, max_value=1e4))
def test_polygamma_functions_match_scipy(x: float) -> None:
    assert digamma(x) == pytest.approx(float(special.digamma(x)), rel=1e-9, abs=1e-9)
    assert trigamma(x) == pytest.approx(float(special.polygamma(1, x)), rel=1e-8)
    assert tetragamma(x) == pytest.approx(float(special.polygamma(2, x)), rel=1e-7)


@given(st.floats(min_value=0.05, max_value=500))
def test_trigamma_inverse_inverts(x: float) -> None:
    assert trigamma_inverse(trigamma(x)) == pytest.approx(x, rel=1e-6)


def test_fit_prior_recovers_a_known_scaled_chi_square_prior() -> None:
    """limma's model: 1/sigma^2 ~ chi2(d0)/(d0 s0^2), s^2 | sigma^2 ~ sigma^2 chi2(d)/d."""
    rng = np.random.default_rng(0)
    d0, s0, d = 8.0, 0.05, 5
    sigma2 = d0 * s0**2 / rng.chisquare(d0, 20000)
    s2 = sigma2 * rng.chisquare(d, 20000) / d
    prior = fit_prior(s2.tolist(), [d] * len(s2))
    assert prior.df == pytest.approx(d0, rel=0.15)
    assert math.sqrt(prior.variance) == pytest.approx(s0, rel=0.05)


def test_equal_spreads_give_an_infinite_prior_and_too_few_give_none() -> None:
    rng = np.random.default_rng(1)
    s2 = 0.01 * rng.chisquare(5, 500) / 5  # one common sigma: no excess spread
    assert fit_prior(s2.tolist(), [5] * 500).df == MAX_PRIOR_DF
    assert fit_prior([0.01, 0.02], [5, 5]) is NO_PRIOR
    assert fit_prior([0.0, 0.0, 0.0, 0.01], [5, 5, 5, 5]) is NO_PRIOR  # zeros carry nothing


def test_moderation_shrinks_toward_the_prior_and_adds_its_degrees_of_freedom() -> None:
    prior = SpreadPrior(df=10.0, variance=0.04)
    scale, df = prior.moderate(0.1, 5)
    assert df == 15
    assert scale**2 == pytest.approx((10 * 0.04 + 5 * 0.01) / 15)
    assert NO_PRIOR.moderate(0.1, 5) == (0.1, 5)


def _stats(name: str, change: float, scale: float, df: int = 5) -> ProblemStats:
    return ProblemStats(
        problem=name,
        patterns=12,
        compared=12,
        unanswered=0,
        broken=2,
        fixed=0,
        broken_positive=2,
        candidate_wrong=3,
        p_mcnemar=0.25,
        p_flips=0.2,
        p_score=t_cdf(change / scale, df),
        score_change=change,
        score_scale=scale,
        score_df=df,
        interval=(-0.1, 0.3),
        max_error_rate=None,
        history_versions=df + 1,
    )


def test_a_run_decides_on_moderated_p_values_unless_told_not_to() -> None:
    rng = np.random.default_rng(2)
    run = [_stats(f"q{i}", 0.0, float(s)) for i, s in enumerate(rng.uniform(0.02, 0.04, 40))]
    run.append(_stats("dropped", -0.2, 0.03))
    plain = decide_stats(run, GateSettings(moderate=False))
    moderated_run = decide_stats(run, GateSettings())
    assert spread_prior(run, GateSettings(moderate=False)) is NO_PRIOR
    prior = spread_prior(run, GateSettings())
    assert prior.df > 5
    again = moderated(run[-1], prior)
    assert again.score_df == pytest.approx(5 + prior.df)
    assert again.p_score is not None and run[-1].p_score is not None
    assert again.p_score < run[-1].p_score  # more degrees of freedom: a lighter tail
    assert moderated_run[-1].p_value == pytest.approx(again.p_score)
    assert plain[-1].p_value == pytest.approx(run[-1].p_score)
