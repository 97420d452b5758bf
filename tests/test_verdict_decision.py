"""The gate's decision rule and power estimate: behaviour, edge cases, scipy as the oracle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sps

from problem_registry.verdicts.decision import (
    Correction,
    GateSettings,
    Outcome,
    ProblemEvidence,
    Rule,
    adjust,
    assess,
    betainc,
    binom_upper_tail,
    decide_problem,
    decide_run,
    decide_stats,
    net_upper_tail,
    paired_interval,
    t_cdf,
    t_quantile,
)
from problem_registry.verdicts.power import (
    PATTERN_COUNTS,
    POINTS,
    PowerEstimate,
    detection,
    estimate_power,
    estimate_powers,
)

SEVERITY = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}


def _evidence(
    rng: np.random.Generator,
    n: int = 12,
    versions: int = 5,
    breaks: int = 0,
    scores: bool = True,
    name: str = "p",
) -> ProblemEvidence:
    """A problem whose versions agree up to noise; ``breaks`` confident patterns break."""
    level = rng.uniform(0.6, 0.99, n)
    rows = np.clip(level[None, :] + rng.normal(0, 0.04, (versions + 2, n)), 0.01, 1.0)
    hist, base, cand = rows[:versions], rows[versions], rows[versions + 1].copy()
    right = np.flatnonzero(base > 0.5)[:breaks]
    cand[right] = 0.01
    return ProblemEvidence(
        problem=name,
        polarity=["positive" if i % 3 else "negative" for i in range(n)],
        baseline_correct=list(base > 0.5),
        candidate_correct=list(cand > 0.5),
        baseline_prob=list(base) if scores else None,
        candidate_prob=list(cand) if scores else None,
        history_correct=(hist > 0.5).tolist(),
        history_prob=hist.tolist() if scores else None,
    )


# --- exact helpers against scipy ----------------------------------------------------------------


@given(st.integers(0, 60).flatmap(lambda n: st.tuples(st.integers(-2, n + 2), st.just(n))))
def test_one_sided_binomial_matches_scipy(case: tuple[int, int]) -> None:
    k, n = case
    expected = 1.0 if k <= 0 else (0.0 if k > n else sps.binomtest(k, n, 0.5, "greater").pvalue)
    assert binom_upper_tail(k, n) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@given(st.floats(-40, 40), st.floats(0.5, 200))
def test_t_cdf_matches_scipy(t: float, df: float) -> None:
    assert t_cdf(t, df) == pytest.approx(sps.t.cdf(t, df), rel=1e-9, abs=1e-13)


@given(st.floats(0.001, 0.999), st.integers(1, 50))
def test_t_quantile_inverts_scipy(q: float, df: int) -> None:
    assert t_quantile(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-7, abs=1e-7)


@given(st.floats(0.1, 30), st.floats(0.1, 30), st.floats(0, 1))
def test_betainc_matches_scipy(a: float, b: float, x: float) -> None:
    assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-12)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_bh_matches_scipy_and_holm_dominates_it(p: list[float]) -> None:
    bh = adjust(p, Correction.BH)
    assert bh == pytest.approx(list(sps.false_discovery_control(p)), abs=1e-12)
    holm = adjust(p, Correction.HOLM)
    assert all(h >= b - 1e-12 and h >= x for h, b, x in zip(holm, bh, p, strict=True))
    assert adjust(p, Correction.NONE) == p


def test_holm_by_hand() -> None:
    assert adjust([0.01, 0.04, 0.03], Correction.HOLM) == pytest.approx([0.03, 0.06, 0.06])


@given(st.integers(0, 15), st.integers(0, 15), st.integers(0, 15))
def test_paired_interval_brackets_the_change(b: int, c: int, extra: int) -> None:
    n = b + c + extra
    low, high = paired_interval(b, c, n)
    assert -1.0 <= low <= high <= 1.0
    if n:
        assert low <= (b - c) / n <= high


def test_net_tail_with_fair_coins_is_the_binomial_tail() -> None:
    right = np.ones(10, bool)
    assert net_upper_tail(7, right, np.full(10, 0.5)) == pytest.approx(binom_upper_tail(7, 10))
    assert net_upper_tail(-20, right, np.full(10, 0.1)) == 1.0
    assert net_upper_tail(11, right, np.full(10, 0.5)) == 0.0


# --- decisions ----------------------------------------------------------------------------------


def test_confident_breaks_fail_and_noise_passes() -> None:
    rng = np.random.default_rng(1)
    broken = decide_run([_evidence(rng, breaks=4)], power=False)[0]
    assert broken.outcome is Outcome.FAIL
    assert broken.broken >= 4 and broken.interval[1] > 0
    assert "confidently worse" in broken.reason
    quiet = decide_run([_evidence(rng, breaks=0)], power=False)[0]
    assert quiet.outcome is Outcome.PASS


def test_no_history_falls_back_to_labels() -> None:
    e = dataclasses.replace(_evidence(np.random.default_rng(2), breaks=3), history_correct=[])
    e = dataclasses.replace(e, history_prob=None)
    stats = assess(e)
    assert stats.p_score is None
    verdict = decide_stats([stats])[0]
    assert verdict.rule.startswith("McNemar")
    assert verdict.p_value == pytest.approx(
        binom_upper_tail(stats.broken, stats.broken + stats.fixed)
    )


def test_labels_only_model_gates_with_labels() -> None:
    e = _evidence(np.random.default_rng(3), breaks=12, scores=False)
    verdict = decide_run([e], power=False)[0]
    assert verdict.stats.p_score is None
    assert verdict.outcome is Outcome.FAIL  # 12 of 12 broken
    assert verdict.rule == "flips (labels)"


def test_unanswered_patterns_fail_and_all_none_baseline_compares_nothing() -> None:
    e = _evidence(np.random.default_rng(4))
    none = [None] * len(e.polarity)
    missing = decide_run([dataclasses.replace(e, candidate_correct=none)], power=False)[0]
    assert missing.outcome is Outcome.FAIL and missing.rule == "answers"
    blind = dataclasses.replace(e, baseline_correct=none, baseline_prob=none)
    stats = assess(blind)
    assert stats.compared == 0 and stats.broken == stats.fixed == 0
    assert decide_stats([stats])[0].outcome is Outcome.PASS


def test_zero_patterns_pass_with_nothing_to_judge() -> None:
    e = ProblemEvidence("empty", [], [], [], [], [], [], [])
    verdict = decide_run([e])[0]
    assert verdict.outcome is Outcome.PASS and verdict.rule == "no patterns"
    assert verdict.power is not None and not verdict.power.adequate


def test_mismatched_lengths_and_bad_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match="patterns"):
        assess(ProblemEvidence("x", ["positive"], [True, False], [True]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        assess(ProblemEvidence("x", ["positive"], [True], [True], [1.5], [0.5]))


def test_canary_interval_fails_only_when_confidently_above() -> None:
    e = _evidence(np.random.default_rng(5), n=12)
    wrong = dataclasses.replace(e, candidate_correct=[i < 3 for i in range(12)], max_error_rate=0.1)
    settings = GateSettings(Rule.NEWLY_FAILING, allowed_newly_failing=99)
    assert decide_run([wrong], settings, power=False)[0].outcome is Outcome.FAIL  # 9/12 wrong
    slight = dataclasses.replace(wrong, candidate_correct=[i < 10 for i in range(12)])
    verdict = decide_run([slight], settings, power=False)[0]  # 2/12: point above, interval not
    assert verdict.outcome is Outcome.REVIEW and "interval" in verdict.rule
    point = dataclasses.replace(settings, canary_interval=False)
    assert decide_run([slight], point, power=False)[0].outcome is Outcome.FAIL


def test_more_problems_in_a_run_make_failing_harder() -> None:
    """Without the moderated spread (which the crowd would sharpen, tests/test_moderation.py)."""
    rng = np.random.default_rng(6)
    target = _evidence(rng, breaks=2, name="target")
    unmoderated = GateSettings(moderate=False)
    alone = decide_run([target], unmoderated, power=False)[0]
    others = [_evidence(rng, name=f"q{i}") for i in range(200)]
    crowd = decide_run([target, *others], unmoderated, power=False)
    assert crowd[0].adjusted_p is not None and alone.adjusted_p is not None
    assert crowd[0].adjusted_p >= alone.adjusted_p
    assert SEVERITY[crowd[0].outcome] <= SEVERITY[alone.outcome]
    single = decide_problem(target, unmoderated, problems_in_run=201)
    assert SEVERITY[single.outcome] <= SEVERITY[alone.outcome]


def test_verdict_is_frozen_and_serialises() -> None:
    verdict = decide_run([_evidence(np.random.default_rng(7), breaks=3)])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.outcome = Outcome.PASS  # type: ignore[misc]
    keys = {"problem", "outcome", "rule", "p_value", "adjusted_p", "interval", "broken", "fixed"}
    assert keys | {"power", "reason"} == set(verdict.to_dict())


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 11),
    st.sampled_from(list(Rule)),
    st.booleans(),
)
def test_one_more_break_never_makes_the_outcome_better(
    seed: int, index: int, rule: Rule, scores: bool
) -> None:
    rng = np.random.default_rng(seed)
    e = _evidence(rng, breaks=int(rng.integers(0, 4)), scores=scores)
    others = [_evidence(rng, name=f"o{i}") for i in range(3)]
    worse_correct = list(e.candidate_correct)
    worse_correct[index] = False
    worse = dataclasses.replace(e, candidate_correct=worse_correct)
    if scores and e.candidate_prob is not None:
        probs = list(e.candidate_prob)
        probs[index] = min(probs[index], 0.02)
        worse = dataclasses.replace(worse, candidate_prob=probs)
    gate = GateSettings(rule=rule, review_net_breaks=2)
    before = decide_run([e, *others], gate, power=False)[0]
    after = decide_run([worse, *others], gate, power=False)[0]
    assert SEVERITY[after.outcome] >= SEVERITY[before.outcome]


# --- power --------------------------------------------------------------------------------------


def test_power_is_deterministic_monotone_and_flags_weak_problems() -> None:
    e = _evidence(np.random.default_rng(8), n=12)
    curve = detection(e, problems_in_run=8)
    assert np.all(np.diff(curve) >= 0) and 0.0 <= curve[0] <= curve[-1] <= 1.0
    assert np.array_equal(curve, detection(e, problems_in_run=8))
    first = estimate_power(e, problems_in_run=8)
    assert first == estimate_power(e, problems_in_run=8)
    assert isinstance(first, PowerEstimate)
    assert first.detectable is None or first.detectable in set(POINTS.tolist())
    assert "patterns would catch 10 points" in first.statement()
    weak = estimate_power(_evidence(np.random.default_rng(9), n=2), problems_in_run=1000)
    assert not weak.adequate


def test_power_without_scores_or_history_still_answers() -> None:
    e = _evidence(np.random.default_rng(10), scores=False)
    bare = dataclasses.replace(e, history_correct=[])
    for evidence in (e, bare):
        estimate = estimate_power(evidence, problems_in_run=8)
        assert 0.0 <= estimate.detection_at_promise <= 1.0
        assert set(estimate.to_dict()) >= {"detectable", "patterns_for_promise", "adequate"}


def test_power_grows_with_patterns() -> None:
    e = _evidence(np.random.default_rng(11), n=12)
    few = detection(e, points=np.array([0.2]), patterns=6, problems_in_run=8)[0]
    many = detection(e, points=np.array([0.2]), patterns=60, problems_in_run=8)[0]
    assert many >= few


@pytest.mark.parametrize("scores", [True, False])
def test_the_size_bisection_finds_the_first_size_the_curve_catches(scores: bool) -> None:
    """estimate_powers bisects over sizes with the curve's own random numbers: the same answer
    as reading the whole curve, for scored and label-only problems, at any run size."""
    for seed in range(6):
        e = _evidence(np.random.default_rng(100 + seed), n=10 + seed, scores=scores)
        for run in (1, 8, 200):
            curve = detection(e, problems_in_run=run)
            hit = np.flatnonzero(curve >= 0.8)
            expected = float(POINTS[hit[0]]) if len(hit) else None
            estimate = estimate_power(e, problems_in_run=run)
            assert estimate.detectable == expected
            promised = detection(e, points=np.array([0.10]), problems_in_run=run)[0]
            assert estimate.detection_at_promise == promised


def test_power_of_a_whole_run_is_one_estimate_per_problem_in_order() -> None:
    rng = np.random.default_rng(12)
    run = [_evidence(rng, n=n, scores=bool(n % 2), name=f"p{n}") for n in (0, 5, 12, 12, 13)]
    estimates = estimate_powers(run, problems_in_run=len(run))
    assert len(estimates) == len(run)
    assert estimates == estimate_powers(run, problems_in_run=len(run))  # seeded
    empty = estimates[0]
    assert empty.detectable is None and empty.patterns_for_promise is None
    counts = list(PATTERN_COUNTS)
    for evidence, estimate in zip(run[1:], estimates[1:], strict=True):
        n = len(evidence.polarity)
        needed = estimate.patterns_for_promise
        if estimate.detection_at_promise >= 0.8:  # keeps its promise: about as many suffice
            above = [c for c in counts if c >= n]  # the count bisection looks no further than
            assert needed is not None and (len(above) < 2 or needed <= above[1])  # one step up
        else:  # does not: more patterns are needed
            assert needed is None or needed > n


def test_calibration_only_adds_to_a_scored_problem_s_detection() -> None:
    e = _evidence(np.random.default_rng(13), n=12)
    calibrated = detection(e, problems_in_run=8)
    breaks_only = detection(e, problems_in_run=8, calibration=0.0)
    assert np.all(calibrated >= breaks_only)
    labels = _evidence(np.random.default_rng(13), n=12, scores=False)
    assert np.array_equal(
        detection(labels, problems_in_run=8),
        detection(labels, problems_in_run=8, calibration=0.0),
    )
