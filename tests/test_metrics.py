"""Metrics from stored results, in SQL, checked against scikit-learn on the same patterns."""

from __future__ import annotations

import json
from itertools import cycle
from pathlib import Path

import pytest
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from problem_registry.errors import ModelNotFound
from problem_registry.expectations import Expectation
from problem_registry.replay.engine import replay
from problem_registry.verdicts import aggregation
from problem_registry.verdicts.metrics import pattern_results, problem_metrics, problem_metrics_json
from problem_registry.verdicts.timeline import (
    ProblemTimeline,
    TimelinePoint,
    timelines,
    timelines_from,
)
from tests.digit_registry import Digits, register_answers
from tests.models import digits as models


def by_key(digits: Digits, **kwargs: object) -> dict[tuple[str, str], object]:
    return {(m.problem, m.version): m for m in problem_metrics(digits.registry, **kwargs)}  # type: ignore[arg-type]


def test_error_rates_equal_scikit_learns_on_the_same_patterns(digits: Digits) -> None:
    replay(digits.registry)
    rows = problem_metrics(digits.registry, model="digits")
    assert len(rows) == 4 * 3
    assert [(r.problem, r.version) for r in rows] == sorted(
        (r.problem, r.version) for r in rows
    )  # problems by slug, versions in registration order
    for row in rows:
        expected = digits.expected_error_rate(row.problem, row.version)
        assert row.error_rate == pytest.approx(expected), (row.problem, row.version)
        assert (row.patterns, row.answered, row.missing, row.errored) == (
            len(digits.cases[row.problem]),
            len(digits.cases[row.problem]),
            0,
            0,
        )
        oracle = binomtest(row.wrong, row.answered).proportion_ci(method="wilson")
        assert row.interval == pytest.approx((oracle.low, oracle.high))
    # The versions genuinely differ, as a lead would hope to see.
    rates = {r.version: r.error_rate for r in rows if r.problem == "threes-vs-eights"}
    assert len(set(rates.values())) > 1


def test_versions_aggregated_in_two_halves_give_the_same_rows(
    digits: Digits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite aggregates many versions in two halves at once (one in a thread, on its own
    connection): the rows are the whole aggregation's, in the same order."""
    replay(digits.registry)
    monkeypatch.setattr(aggregation, "SPLIT_FROM", 10**9)
    whole = problem_metrics(digits.registry, model="digits")
    monkeypatch.setattr(aggregation, "SPLIT_FROM", 2)
    halves = problem_metrics(digits.registry, model="digits")
    assert halves == whole
    assert len({row.version for row in whole}) == 3


def test_error_is_split_by_polarity(digits: Digits) -> None:
    replay(digits.registry)
    trained = digits.trained
    for row in problem_metrics(digits.registry, model="digits"):
        cases = digits.cases[row.problem]
        predicted = trained.models[row.version].predict(trained.test_x[[c.index for c in cases]])
        for polarity, counts in (("positive", row.positive), ("negative", row.negative)):
            mine = [(c, p) for c, p in zip(cases, predicted, strict=True) if c.polarity == polarity]
            assert counts.patterns == counts.answered == len(mine)
            assert counts.wrong == sum(not c.is_right(p) for c, p in mine)


def test_relabelling_changes_the_rates_without_calling_any_model(digits: Digits) -> None:
    registry = digits.registry
    replay(registry)
    before = by_key(digits)[("threes-vs-eights", "v3")]
    calls = dict(models.CALLS)
    right = next(
        r for r in pattern_results(registry, problems=["threes-vs-eights"], versions=["digits@v3"])
        if r.correct
    )  # fmt: skip

    registry.patterns.relabel(right.pattern_id, Expectation.exact("not-a-digit"))
    after = by_key(digits)[("threes-vs-eights", "v3")]
    assert after.wrong == before.wrong + 1  # type: ignore[attr-defined]
    assert after.error_rate == pytest.approx(before.error_rate + 1 / 12)  # type: ignore[attr-defined]
    assert replay(registry).predicted == 0
    assert dict(models.CALLS) == calls, "relabelling must never call a model"

    registry.patterns.relabel(
        right.pattern_id, Expectation.any_of(["not-a-digit", right.predicted])
    )
    assert by_key(digits)[("threes-vs-eights", "v3")].wrong == before.wrong  # type: ignore[attr-defined]


def test_confusion_matrix_and_f1_equal_scikit_learns(digits: Digits) -> None:
    replay(digits.registry)
    trained = digits.trained
    for row in problem_metrics(digits.registry, model="digits", confusion=True):
        confusion = row.confusion
        assert confusion is not None
        if row.problem in ("nines-not-fours", "threes-as-numbers"):
            assert confusion.cells == {}  # no exact expectations there
            continue
        cases = digits.cases[row.problem]
        truth = [str(trained.test_y[c.index]) for c in cases]
        guess = [
            str(p)
            for p in trained.models[row.version].predict(trained.test_x[[c.index for c in cases]])
        ]
        labels = confusion.labels
        assert labels == sorted(set(truth) | set(guess), key=int)
        assert [line[:-1] for line in confusion.matrix()] == confusion_matrix(
            truth, guess, labels=labels
        ).tolist()
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, guess, labels=labels, zero_division=0
        )
        scores = confusion.scores()
        assert [scores[label].precision for label in labels] == pytest.approx(list(precision))
        assert [scores[label].recall for label in labels] == pytest.approx(list(recall))
        assert [scores[label].f1 for label in labels] == pytest.approx(list(f1))
        assert [scores[label].support for label in labels] == list(support)
        assert confusion.macro_f1 == pytest.approx(
            f1_score(truth, guess, average="macro", zero_division=0)
        )
        assert confusion.errored == 0


def test_sql_scoring_agrees_with_the_python_expectation_on_every_kind(
    digits: Digits, tmp_path: Path
) -> None:
    registry = digits.registry
    views = registry.patterns.list()
    odd_answers = cycle(["3", 3.5, 2.5, "9", "4", "abc", 8, "1", ["3", 0.4], 3.0000001, "3.0"])
    answers = {}
    for number, view in enumerate(sorted({v.sha256 for v in views})):
        if number % 7 != 3:  # every seventh file unanswered: an errored result
            answers[view] = next(odd_answers)
    register_answers(registry, "odd", "v1", answers, tmp_path)
    replay(registry, versions=["odd@v1"])

    expectations = {v.id: Expectation.from_dict(v.expect) for v in views}
    rows = pattern_results(registry, versions=["odd@v1"])
    assert len(rows) == len(views)
    kinds_seen = set()
    for row in rows:
        assert row.answered
        expected = (
            False
            if row.error is not None
            else expectations[row.pattern_id].is_met(row.predicted, row.value)
        )
        assert row.correct is expected, row
        kinds_seen.add((expectations[row.pattern_id].kind.value, expected))
    assert {kind for kind, _ in kinds_seen} == {"exact", "any", "not", "range"}
    assert {ok for _, ok in kinds_seen} == {True, False}


def test_errored_results_count_as_wrong_and_missing_ones_are_left_out_of_the_rate(
    digits: Digits, tmp_path: Path
) -> None:
    registry = digits.registry
    views = registry.patterns.list("sevens-vs-ones")
    expected = {v.sha256: v.expect["labels"][0] for v in views}
    answers = dict(sorted(expected.items())[:-2])  # two patterns without a prediction: errored
    register_answers(registry, "partial", "v1", answers, tmp_path)
    replay(registry, versions=["partial@v1"], problems=["sevens-vs-ones"])

    rows = by_key(digits, model="partial")
    row = rows[("sevens-vs-ones", "v1")]
    assert (row.answered, row.errored, row.wrong, row.missing) == (10, 2, 2, 0)  # type: ignore[attr-defined]
    assert row.error_rate == pytest.approx(0.2)  # type: ignore[attr-defined]
    never = rows[("threes-vs-eights", "v1")]  # not replayed for that problem: missing
    assert (never.answered, never.missing, never.error_rate, never.interval) == (0, 12, None, None)  # type: ignore[attr-defined]
    data = never.to_dict()  # type: ignore[attr-defined]
    assert data["counts"]["missing"] == 12 and data["interval"] is None


def test_a_rows_json_is_exactly_what_json_writes_for_its_dict(
    digits: Digits, tmp_path: Path
) -> None:
    """``to_json`` (what ``report --json`` writes, issue 7) is hand-written for speed: it must be
    the json module's own text for ``to_dict``, with no answers, a champion, no canary, quotes and
    non-ASCII in a title, and with a confusion matrix."""
    registry = digits.registry
    registry.problems.add(
        "odd-one", title='A "quoted" titre, 12\u00b0 \u2014 <b>', max_error_rate=None
    )
    registry.models.promote("digits", "v2")
    views = registry.patterns.list("sevens-vs-ones")
    answers = {v.sha256: v.expect["labels"][0] for v in views[:-3]}
    register_answers(registry, "partial", "v1", answers, tmp_path)
    replay(registry, versions=["partial@v1"], problems=["sevens-vs-ones"])

    rows = problem_metrics(registry) + problem_metrics(registry, model="digits", confusion=True)
    shapes = {
        (r.answered > 0, r.is_champion, r.max_error_rate is None, r.confusion is None) for r in rows
    }
    assert len(shapes) >= 5, shapes
    for row in rows:
        written = json.dumps(
            row.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert row.to_json() == written
    # What report --json writes, put together without the rows, is the same text.
    assert problem_metrics_json(registry) == [r.to_json() for r in problem_metrics(registry)]
    chosen = {"model": "digits", "problems": ["odd-one", "sevens-vs-ones"]}
    assert problem_metrics_json(registry, **chosen) == [  # type: ignore[arg-type]
        r.to_json()
        for r in problem_metrics(registry, **chosen)  # type: ignore[arg-type]
    ]


def test_the_timeline_says_when_a_problem_was_first_fixed_and_broken_again(
    digits: Digits, tmp_path: Path
) -> None:
    registry = digits.registry
    views = registry.patterns.list("threes-vs-eights")  # needs <= 20% error
    right = {v.sha256: v.expect["labels"][0] for v in views}
    wrong = {sha: "0" for sha in right}
    shas = sorted(right)
    two_broken = {**right, shas[0]: "0", shas[1]: "0"}  # 2 of 12: meets 20%
    three_broken = {**two_broken, shas[2]: "0"}  # 3 of 12: misses it
    for version, answers in (
        ("s1", wrong),
        ("s2", two_broken),
        ("s3", right),
        ("s4", three_broken),
    ):
        register_answers(registry, "story", version, answers, tmp_path)
    replay(registry, problems=["threes-vs-eights"], versions=[f"story@s{i}" for i in range(1, 5)])

    (timeline,) = [t for t in timelines(registry, model="story") if t.problem == "threes-vs-eights"]
    assert timeline.events == [("fixed", "s2"), ("broken", "s4")]
    assert timeline.describe() == "first fixed in s2, broken again in s4"
    points = {p.version: p for p in timeline.points}
    assert points["s3"].fixed == sorted(points["s3"].fixed) and len(points["s3"].fixed) == 2
    assert len(points["s4"].broken) == 3 and points["s4"].previous == "s3"
    assert points["s4"].describe() == (
        "s4: 9 of 12 right, needs <= 20% error: misses it; 0 fixed, 3 broken since s3"
    )
    untouched = [t for t in timelines(registry, model="story") if t.problem == "sevens-vs-ones"]
    assert untouched[0].describe() == "no results yet"
    # The report builds the same timelines from the rows it has already read.
    assert timelines_from(
        "story", problem_metrics(registry, model="story"), pattern_results(registry, model="story")
    ) == timelines(registry, model="story")


def test_an_unknown_model_is_named(digits: Digits) -> None:
    with pytest.raises(ModelNotFound, match="no model named 'nope'"):
        problem_metrics(digits.registry, model="nope")


@pytest.mark.parametrize(
    ("passing", "story"),
    [
        ([False, True, False], "first fixed in v2, broken again in v3"),
        (
            [True, False, True, False],
            "passing in v1, broken in v2, fixed again in v3, broken again in v4",
        ),
        ([False, True, False, True], "first fixed in v2, broken again in v3, fixed again in v4"),
        ([True, True], "passing in every version (v1 to v2)"),
        ([False, None, False], "failing in every version (v1 to v3)"),
        ([None, None], "no results yet"),
        ([None, False, True], "first fixed in v3"),
    ],
)
def test_a_timeline_is_told_in_plain_words(passing: list[bool | None], story: str) -> None:
    points = [
        TimelinePoint(f"v{i}", 10, 0 if ok is None else 10, 0 if ok else 5, 0.2, ok)
        for i, ok in enumerate(passing, start=1)
    ]
    assert ProblemTimeline("p", "m", points).describe() == story
