"""The status line's wording, case by case: it is pasted to clients, so each word is tested."""

from __future__ import annotations

import pytest

from problem_registry.verdicts.metrics import PatternResult, PolarityMetrics, ProblemVersionMetrics
from problem_registry.verdicts.status import (
    Change,
    changes,
    percent,
    problem_status,
    status_line,
)


def metrics(
    version: str = "v8",
    *,
    patterns: int = 12,
    answered: int | None = None,
    wrong: int = 1,
    errored: int = 0,
    max_error_rate: float | None = 0.2,
    champion: bool = False,
    model: str = "digits",
) -> ProblemVersionMetrics:
    answered = patterns if answered is None else answered
    return ProblemVersionMetrics(
        problem="threes-vs-eights",
        title="Threes read as eights",
        status="open",
        model=model,
        version=version,
        is_champion=champion,
        max_error_rate=max_error_rate,
        allowed_regressions=0,
        patterns=patterns,
        answered=answered,
        wrong=wrong,
        errored=errored,
        positive=PolarityMetrics(patterns, answered, wrong),
        negative=PolarityMetrics(0, 0, 0),
    )


def result(pattern_id: int, version: str, correct: bool | None) -> PatternResult:
    return PatternResult(
        problem="threes-vs-eights",
        pattern_id=pattern_id,
        file=f"digit-{pattern_id}.png",
        sha256="0" * 64,
        polarity="positive",
        expected="3",
        version_id=int(version.lstrip("v")),
        model="digits",
        version=version,
        answered=correct is not None,
        predicted=None if correct is None else ("3" if correct else "8"),
        correct=correct,
    )


def grid(answers: dict[str, list[bool | None]]) -> list[PatternResult]:
    return [
        result(pattern_id, version, correct)
        for version, column in answers.items()
        for pattern_id, correct in enumerate(column, start=1)
    ]


def test_the_designed_example_reads_as_designed() -> None:
    line = status_line(metrics(), Change("v7", fixed=("a.png", "b.png")))
    assert line == "v8: 11 of 12 right, needs ≤ 20% error: meets it; 2 fixed, 0 broken since v7"


def test_a_missed_canary_says_misses_it() -> None:
    line = status_line(metrics(wrong=4), Change("v7", broken=("a.png",)))
    assert line == "v8: 8 of 12 right, needs ≤ 20% error: misses it; 0 fixed, 1 broken since v7"


def test_exactly_at_the_limit_meets_it_as_the_gate_does() -> None:
    assert "meets it" in status_line(metrics(patterns=15, wrong=3), None)
    # A limit computed in floating point a hair under 10% is still met by 1 of 10, as in gates.
    assert "meets it" in status_line(metrics(patterns=10, wrong=1, max_error_rate=1 - 0.9), None)
    assert "misses it" in status_line(metrics(patterns=10, wrong=2, max_error_rate=0.1), None)


def test_a_problem_without_a_canary_says_no_limit_is_set() -> None:
    line = status_line(metrics(max_error_rate=None), Change("v7"))
    assert line == "v8: 11 of 12 right, no error limit set; 0 fixed, 0 broken since v7"


def test_a_first_version_has_nothing_to_compare_with() -> None:
    line = status_line(metrics(version="v1"), None)
    assert (
        line
        == "v1: 11 of 12 right, needs ≤ 20% error: meets it; no earlier version to compare with"
    )


def test_a_version_without_results_says_so_and_judges_nothing() -> None:
    line = status_line(metrics(answered=0, wrong=0), Change("v7"))
    assert line == "v8: no results yet for its 12 patterns"


def test_a_problem_without_patterns_says_so() -> None:
    assert status_line(metrics(patterns=0, wrong=0), None) == "v8: no patterns yet"


def test_errored_answers_count_as_wrong_and_are_named() -> None:
    line = status_line(metrics(wrong=3, errored=2), Change("v7"))
    assert line == (
        "v8: 9 of 12 right (2 errored), needs ≤ 20% error: misses it; 0 fixed, 0 broken since v7"
    )


def test_patterns_without_a_result_are_left_out_of_the_count_and_named() -> None:
    line = status_line(metrics(answered=11, wrong=2, errored=1), None)
    assert line.startswith("v8: 9 of 11 right (1 errored, 1 not run), needs ≤ 20% error")


@pytest.mark.parametrize(
    ("rate", "text"), [(0.2, "20%"), (0.125, "12.5%"), (0.0, "0%"), (1.0, "100%"), (0.07, "7%")]
)
def test_limits_are_whole_percentages_unless_they_are_not(rate: float, text: str) -> None:
    assert percent(rate) == text


def test_changes_count_only_patterns_both_versions_answered() -> None:
    rows = grid(
        {
            "v7": [False, True, True, None, False],
            "v8": [True, False, True, True, None],
        }
    )
    change = changes(rows, "digits@v8", "digits@v7")
    assert change == Change("v7", fixed=("digit-1.png",), broken=("digit-2.png",))


def test_problem_status_compares_with_the_latest_earlier_version_that_answered() -> None:
    rows = [metrics("v6", wrong=3), metrics("v7", answered=0, wrong=0), metrics("v8", wrong=1)]
    results = grid({"v6": [False, False, True], "v7": [None] * 3, "v8": [True, True, False]})
    assert problem_status(rows, results) == (
        "v8: 11 of 12 right, needs ≤ 20% error: meets it; 2 fixed, 1 broken since v6"
    )


def test_problem_status_names_a_champion_it_compares_with() -> None:
    rows = [metrics("v7", wrong=2, champion=True), metrics("v8")]
    results = grid({"v7": [False, True], "v8": [True, True]})
    line = problem_status(rows, results, version="digits@v8", since="digits@v7")
    assert line.endswith("; 1 fixed, 0 broken since v7 (champion)")


def test_problem_status_of_a_first_version_or_the_champion_itself_compares_with_nothing() -> None:
    rows = [metrics("v1", champion=True), metrics("v2")]
    assert problem_status(rows, [], version="digits@v1").endswith(
        "no earlier version to compare with"
    )
    line = problem_status(rows, [], version="digits@v1", since="digits@v1")
    assert line.endswith("no earlier version to compare with")


def test_problem_status_names_another_model_by_its_full_reference() -> None:
    rows = [metrics("v1", model="baseline"), metrics("v2")]
    assert problem_status(rows, [], since="baseline@v1").endswith("since baseline@v1")


def test_problem_status_needs_at_least_one_version() -> None:
    with pytest.raises(ValueError, match="at least one version"):
        problem_status([], [])


def test_meets_canary_is_none_without_a_limit_or_answers_and_agrees_with_the_line() -> None:
    assert metrics(max_error_rate=None).meets_canary is None
    assert metrics(answered=0, wrong=0).meets_canary is None
    assert metrics(wrong=2, max_error_rate=1 / 6).meets_canary is True  # 2/12 == 1/6
    assert metrics(wrong=3).meets_canary is False
