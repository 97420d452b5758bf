"""Gates per problem: fail / review / pass against the baseline, decided together as one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from problem_registry.replay.engine import replay
from problem_registry.verdicts.decision import Outcome
from problem_registry.verdicts.gates import GateResult, evaluate
from problem_registry.verdicts.stats import wilson_interval
from problem_registry.verdicts.tails import binom_upper_tail
from tests.digit_registry import Digits, register_answers


def gates(digits: Digits, candidate: str, **kwargs: object) -> dict[str, GateResult]:
    return {g.problem: g for g in evaluate(digits.registry, candidate, **kwargs)}  # type: ignore[arg-type]


def true_label(digits: Digits, original_name: str) -> str:
    """What the digit really is: the right answer for every pattern of these problems."""
    index = int(original_name.removeprefix("digit-").removesuffix(".png"))
    return str(digits.trained.test_y[index])


@pytest.fixture
def controlled(digits: Digits, tmp_path: Path) -> dict[str, str]:
    """``ctl@champ`` misses one pattern of threes-vs-eights; ``ctl@cand`` misses that and one
    more, so exactly one pattern is newly failing. Every other pattern is answered right."""
    registry = digits.registry
    views = registry.patterns.list()
    right = {v.sha256: true_label(digits, v.original_name) for v in views}
    threes = [v for v in views if v.problem == "threes-vs-eights" and v.expected == "3"]
    already, newly = threes[-1], threes[-2]  # not shared with threes-as-numbers
    register_answers(registry, "ctl", "champ", {**right, already.sha256: "0"}, tmp_path)
    register_answers(
        registry, "ctl", "cand", {**right, already.sha256: "0", newly.sha256: "5"}, tmp_path
    )
    registry.models.promote("ctl", "champ")
    # Every pattern of threes-vs-eights answered "0": wrong wherever the champion was right.
    ruin = {v.sha256: "0" for v in views if v.problem == "threes-vs-eights"}
    register_answers(registry, "ctl", "bad", {**right, **ruin}, tmp_path)
    replay(registry, versions=["ctl@champ", "ctl@cand", "ctl@bad"])
    return {"already": already.original_name, "newly": newly.original_name}


def canary_outcome(wrong: int, n: int, limit: float) -> Outcome:
    """The canary as documented: fail when the Wilson interval is above, review when the point."""
    low, _high = wilson_interval(wrong, n)
    return Outcome.FAIL if low > limit else Outcome.REVIEW if wrong / n > limit else Outcome.PASS


def test_with_no_champion_only_the_canary_applies(digits: Digits) -> None:
    replay(digits.registry)
    limit = {"threes-vs-eights": 0.2, "sevens-vs-ones": 0.3, "nines-not-fours": 0.25}
    outcomes = {}
    for version in ("v1", "v2", "v3"):
        for slug, gate in gates(digits, f"digits@{version}").items():
            assert gate.champion is None and (gate.verdict.broken, gate.verdict.fixed) == (0, 0)
            if slug not in limit:
                assert gate.outcome is Outcome.PASS
                continue
            rate = digits.expected_error_rate(slug, version)
            n = len(digits.cases[slug])
            expected = canary_outcome(round(rate * n), n, limit[slug])
            assert gate.outcome is expected, (slug, version, rate)
            assert gate.passed is (expected is not Outcome.FAIL)
            if expected is not Outcome.PASS:
                assert gate.verdict.rule.startswith("canary")
            assert all(f.champion_got is None and f.verdict == "failing" for f in gate.failing)
            assert len(gate.failing) == round(rate * n)
            outcomes[(slug, version)] = gate.outcome
    # The versions genuinely differ: v1 is over a limit that v3 meets.
    assert outcomes[("sevens-vs-ones", "v1")] is not Outcome.PASS
    assert outcomes[("sevens-vs-ones", "v3")] is Outcome.PASS


def test_one_newly_failing_pattern_is_noise_and_still_listed_with_the_baselines_answer(
    digits: Digits, controlled: dict[str, str]
) -> None:
    gate = gates(digits, "ctl@cand")["threes-vs-eights"]
    assert gate.champion == "ctl@champ"
    # 1 broken, 0 fixed of 12, no history: the exact one-sided test says p = 0.5.
    assert gate.outcome is Outcome.PASS and gate.passed
    assert (gate.verdict.broken, gate.verdict.fixed) == (1, 0)
    assert gate.verdict.p_value == binom_upper_tail(1, 1) == 0.5
    failing = {f.file: f for f in gate.failing}
    assert set(failing) == {controlled["already"], controlled["newly"]}
    newly, already = failing[controlled["newly"]], failing[controlled["already"]]
    assert (newly.expected, newly.got, newly.champion_got, newly.verdict) == (
        "3",
        "5",
        "3",
        "newly failing",
    )
    assert (already.got, already.champion_got, already.verdict) == ("0", "0", "already failing")
    message = gate.message
    assert message.splitlines()[0].startswith("threes-vs-eights: PASS vs ctl@champ: not worse")
    assert "p=0.5" in message and "rule: McNemar one-sided (labels)" in message
    assert f"{controlled['newly']} | 3 | 5 | 3 | newly failing" in message
    assert f"{controlled['already']} | 3 | 0 | 0 | already failing" in message
    json.dumps(gate.to_dict())  # plain data, for the plugin's reports
    assert all(g.passed for g in gates(digits, "ctl@cand").values())


def test_a_confident_regression_fails_with_its_numbers(
    digits: Digits, controlled: dict[str, str]
) -> None:
    result = gates(digits, "ctl@bad")
    gate = result["threes-vs-eights"]
    assert gate.outcome is Outcome.FAIL and not gate.passed
    broken = gate.verdict.broken
    assert broken == 11 and gate.verdict.fixed == 0  # the champion missed one already
    # ctl@cand, registered before it, is its history: each pattern's own flip rate decides.
    assert gate.verdict.rule == "flips (labels)"
    assert gate.verdict.p_value is not None and gate.verdict.p_value < 0.001
    assert gate.verdict.adjusted_p is not None and gate.verdict.adjusted_p <= 0.10
    low, high = gate.verdict.interval
    assert 0 < low <= high <= 1
    data = gate.to_dict()
    assert data["outcome"] == "fail" and data["verdict"]["p_value"] == gate.verdict.p_value
    assert data["verdict"]["power"]["statement"].startswith("catches ")
    assert gate.message.splitlines()[0].startswith("threes-vs-eights: FAIL vs ctl@champ")


def test_allowed_regressions_turns_a_failure_within_them_into_a_review(
    digits: Digits, controlled: dict[str, str]
) -> None:
    digits.registry.problems.edit("threes-vs-eights", allowed_regressions=11)
    gate = gates(digits, "ctl@bad")["threes-vs-eights"]
    assert gate.outcome is Outcome.REVIEW and gate.passed
    assert "within the 11 net break(s) this problem allows" in gate.verdict.reason
    digits.registry.problems.edit("threes-vs-eights", allowed_regressions=10)
    assert gates(digits, "ctl@bad")["threes-vs-eights"].outcome is Outcome.FAIL


def test_the_canary_judges_the_interval_and_reviews_a_point_over_the_limit(
    digits: Digits, controlled: dict[str, str]
) -> None:
    digits.registry.problems.edit("threes-vs-eights", max_error_rate=0.1)
    gate = gates(digits, "ctl@cand")["threes-vs-eights"]  # 2 of 12 wrong: 17%, 95% 5%-45%
    assert gate.outcome is Outcome.REVIEW and gate.passed
    assert gate.verdict.rule == "canary (point above max, interval not)"
    assert "2/12 wrong (95% 5%-45%) against max 10%" in gate.verdict.reason
    failed = gates(digits, "ctl@bad")["threes-vs-eights"]  # 12 of 12 wrong
    assert failed.outcome is Outcome.FAIL


def test_the_champion_itself_is_judged_by_its_canary_only(
    digits: Digits, controlled: dict[str, str]
) -> None:
    gate = gates(digits, "ctl@champ")["threes-vs-eights"]
    assert gate.champion is None and gate.outcome is Outcome.PASS


def test_a_baseline_other_than_the_champion_can_be_named(
    digits: Digits, controlled: dict[str, str]
) -> None:
    gate = gates(digits, "ctl@bad", baseline="ctl@cand")["threes-vs-eights"]
    assert gate.champion == "ctl@cand"
    assert (gate.verdict.broken, gate.verdict.fixed) == (10, 0)


def test_retired_problems_do_not_gate(digits: Digits, controlled: dict[str, str]) -> None:
    digits.registry.problems.retire("threes-vs-eights")
    assert "threes-vs-eights" not in gates(digits, "ctl@bad")
    assert all(g.passed for g in gates(digits, "ctl@cand").values())


def test_a_candidate_without_answers_fails_rather_than_passing_by_omission(
    digits: Digits, tmp_path: Path
) -> None:
    views = digits.registry.patterns.list("sevens-vs-ones")
    register_answers(
        digits.registry, "lazy", "v1", {v.sha256: v.expect["labels"][0] for v in views}, tmp_path
    )
    replay(digits.registry, versions=[], candidate="lazy@v1", problems=["sevens-vs-ones"])
    result = gates(digits, "lazy@v1")
    assert result["sevens-vs-ones"].passed
    unanswered = result["threes-vs-eights"]
    assert unanswered.outcome is Outcome.FAIL and unanswered.verdict.rule == "answers"
    assert len(unanswered.unanswered) == 12
    assert "12 of 12 patterns unanswered (counted wrong)" in unanswered.message


def test_gates_against_a_real_champion_match_scikit_learn(digits: Digits) -> None:
    registry = digits.registry
    replay(registry)
    registry.models.promote("digits", "v2")
    trained = digits.trained
    for slug, gate in gates(digits, "digits@v3").items():
        cases = digits.cases[slug]
        rows = trained.test_x[[c.index for c in cases]]
        champ = [
            c.is_right(p) for c, p in zip(cases, trained.models["v2"].predict(rows), strict=True)
        ]
        cand = [
            c.is_right(p) for c, p in zip(cases, trained.models["v3"].predict(rows), strict=True)
        ]
        broken = sum(a and not b for a, b in zip(champ, cand, strict=True))
        fixed = sum(b and not a for a, b in zip(champ, cand, strict=True))
        assert (gate.verdict.broken, gate.verdict.fixed) == (broken, fixed)
        assert gate.newly_failing == broken
        if gate.outcome is Outcome.FAIL and not gate.verdict.rule.startswith("canary"):
            assert broken > fixed  # a regression never fails with more fixed than broken
        assert gate.metrics.error_rate == pytest.approx(digits.expected_error_rate(slug, "v3"))
        assert gate.champion_metrics is not None
        assert gate.champion_metrics.error_rate == pytest.approx(
            digits.expected_error_rate(slug, "v2")
        )


def _scored(registry: Any, version: str, probability: dict[str, float], folder: Path) -> None:
    """A predictions-file version of model ``sc`` giving each pattern's expected label this
    probability (the rest on "0"), so only the scores differ between versions."""
    views = registry.patterns.list("threes-vs-eights")
    lines = []
    for view in views:
        label, p = view.expect["labels"][0], probability[view.sha256]
        answer = label if p >= 0.5 else "0"
        scores = {label: p, "0": round(1 - p, 6)}
        lines.append(json.dumps({"sha256": view.sha256, "prediction": answer, "scores": scores}))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sc-{version}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from problem_registry.enums import LoaderKind

    registry.models.register(
        "sc", version, loader=str(path), loader_kind=LoaderKind.predictions, artifact=path
    )


def test_scores_decide_when_the_model_gives_them(digits: Digits, tmp_path: Path) -> None:
    """Versions that only move the expected answer's probability a little are ordinary; a
    candidate whose probabilities fall far beyond that history fails on the score rule."""
    registry = digits.registry
    shas = [v.sha256 for v in registry.patterns.list("threes-vs-eights")]
    for i, version in enumerate(("h1", "h2", "h3", "h4", "champ")):
        wobble = {sha: 0.9 + 0.02 * ((i + k) % 3 - 1) for k, sha in enumerate(shas)}
        _scored(registry, version, wobble, tmp_path)
    registry.models.promote("sc", "champ")
    drop = {sha: (0.3 if k < 4 else 0.88) for k, sha in enumerate(shas)}
    _scored(registry, "cand", drop, tmp_path)
    replay(registry, problems=["threes-vs-eights"])
    gate = gates(digits, "sc@cand", problems=["threes-vs-eights"])["threes-vs-eights"]
    assert gate.verdict.rule == "score drop, net breaks >= 1"
    assert gate.verdict.stats.history_versions == 4
    assert (gate.verdict.broken, gate.verdict.fixed) == (4, 0)
    assert gate.outcome is Outcome.FAIL
    same = {sha: 0.9 for sha in shas}
    _scored(registry, "plain", same, tmp_path)
    replay(registry, problems=["threes-vs-eights"])
    plain = gates(digits, "sc@plain", problems=["threes-vs-eights"])["threes-vs-eights"]
    assert plain.verdict.rule == "score drop, net breaks >= 1" and plain.outcome is Outcome.PASS
