"""Expectations: parsed from the CLI and CSV forms, described, serialised, and judged."""

from __future__ import annotations

import pytest

from problem_registry.enums import ExpectKind
from problem_registry.errors import InvalidExpectation
from problem_registry.expectations import Expectation, split_labels

EXAMPLES = [
    Expectation.exact("muffin"),
    Expectation.exact("golden retriever"),
    Expectation.any_of(["muffin", "cake"]),
    Expectation.none_of(["chihuahua"]),
    Expectation.none_of(["cat", "dog"]),
    Expectation.between(3.5, 4.0),
    Expectation.between(-2, 2),
    Expectation.between(0.1, 0.30000000000000004),
    Expectation.between(7, 7),
]


@pytest.mark.parametrize("expectation", EXAMPLES, ids=lambda e: e.to_text())
def test_text_form_round_trips(expectation: Expectation) -> None:
    assert Expectation.parse(expectation.to_text()) == expectation


@pytest.mark.parametrize("expectation", EXAMPLES, ids=lambda e: e.to_text())
def test_dict_form_round_trips(expectation: Expectation) -> None:
    assert Expectation.from_dict(expectation.to_dict()) == expectation


@pytest.mark.parametrize(
    ("text", "kind", "labels", "bounds"),
    [
        ("muffin", ExpectKind.exact, ("muffin",), (None, None)),
        ("  muffin ", ExpectKind.exact, ("muffin",), (None, None)),
        ("any:muffin, cake,muffin", ExpectKind.any, ("cake", "muffin"), (None, None)),
        ("not:chihuahua", ExpectKind.not_, ("chihuahua",), (None, None)),
        ("range:3.5:4", ExpectKind.range, (), (3.5, 4.0)),
        ("range:-1e3:1e3", ExpectKind.range, (), (-1000.0, 1000.0)),
    ],
)
def test_one_field_form_is_parsed(
    text: str,
    kind: ExpectKind,
    labels: tuple[str, ...],
    bounds: tuple[float | None, float | None],
) -> None:
    parsed = Expectation.parse(text)

    assert parsed.kind is kind
    assert parsed.labels == labels
    assert (parsed.low, parsed.high) == bounds


@pytest.mark.parametrize(
    ("expectation", "text", "described", "as_dict"),
    [
        (
            Expectation.exact("muffin"),
            "muffin",
            "muffin",
            {"kind": "exact", "labels": ["muffin"]},
        ),
        (
            Expectation.any_of(["muffin", "cake"]),
            "any:cake,muffin",
            "one of cake, muffin",
            {"kind": "any", "labels": ["cake", "muffin"]},
        ),
        (
            Expectation.none_of(["chihuahua"]),
            "not:chihuahua",
            "not chihuahua",
            {"kind": "not", "labels": ["chihuahua"]},
        ),
        (
            Expectation.between(3.5, 4.0),
            "range:3.5:4",
            "3.5 to 4",
            {"kind": "range", "low": 3.5, "high": 4.0},
        ),
    ],
    ids=["exact", "any", "not", "range"],
)
def test_each_shape_has_a_text_a_description_and_a_dict(
    expectation: Expectation, text: str, described: str, as_dict: dict[str, object]
) -> None:
    assert expectation.to_text() == text
    assert expectation.describe() == described
    assert expectation.to_dict() == as_dict


def test_any_and_not_labels_are_deduplicated_and_sorted() -> None:
    assert Expectation.any_of(["b", "a", " b "]).labels == ("a", "b")
    assert Expectation.none_of(["z", "z"]).labels == ("z",)
    assert Expectation.any_of(["b", "a"]) == Expectation.any_of(["a", "b"])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"expect": "muffin"}, Expectation.exact("muffin")),
        ({"expect_any": "muffin,cake"}, Expectation.any_of(["cake", "muffin"])),
        ({"expect_not": "chihuahua"}, Expectation.none_of(["chihuahua"])),
        ({"expect_range": "3.5:4.0"}, Expectation.between(3.5, 4.0)),
    ],
)
def test_exactly_one_cli_flag_gives_its_expectation(
    options: dict[str, str], expected: Expectation
) -> None:
    assert Expectation.from_options(**options) == expected


def test_none_or_several_cli_flags_are_refused_naming_them() -> None:
    with pytest.raises(InvalidExpectation, match="none was given"):
        Expectation.from_options()
    with pytest.raises(InvalidExpectation, match="got --expect and --expect-not"):
        Expectation.from_options(expect="a", expect_not="b")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Expectation.exact(""), "cannot be empty"),
        (lambda: Expectation.exact("   "), "cannot be empty"),
        (lambda: Expectation.exact("x" * 201), "at most 200"),
        (lambda: Expectation.exact("tab\there"), "control characters"),
        # Found by the hostile-input fuzz: a non-UTF-8 argument, which no database driver encodes.
        (lambda: Expectation.exact("caf\udce9"), "not valid UTF-8"),
        (lambda: Expectation.from_options(expect_any="a,\udcff"), "not valid UTF-8"),
        (lambda: Expectation.any_of([]), "at least one label"),
        (lambda: Expectation.any_of([" ", ""]), "cannot be empty"),
        (lambda: Expectation.none_of([]), "needs a label"),
        (lambda: Expectation.between(4, 3), "is empty"),
        (lambda: Expectation.between(float("nan"), 1), "finite"),
        (lambda: Expectation.between(0, float("inf")), "finite"),
        (lambda: Expectation.parse_range("3.5"), "LOW:HIGH"),
        (lambda: Expectation.parse_range("a:b"), "LOW:HIGH"),
        (lambda: Expectation.parse_range("1:2:3"), "LOW:HIGH"),
        (lambda: Expectation.parse("range:4:3"), "LOW:HIGH"),
        (lambda: Expectation.parse("any:"), "at least one label"),
        (lambda: Expectation.parse("not: , "), "needs a label"),
        (lambda: Expectation.from_options(expect_any=","), "at least one label"),
    ],
)
def test_malformed_expectation_is_refused_with_the_fix(make: object, message: str) -> None:
    with pytest.raises(InvalidExpectation, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    "data",
    [
        "muffin",
        None,
        {"kind": "exact"},
        {"kind": "exact", "labels": ["a", "b"]},
        {"kind": "exact", "labels": "muffin"},
        {"kind": "any", "labels": [1, 2]},
        {"kind": "range", "low": "1", "high": 2},
        {"kind": "range", "low": True, "high": 2},
        {"kind": "range", "low": 3, "high": 2},
        {"kind": "maybe", "labels": ["a"]},
    ],
)
def test_malformed_dict_is_refused(data: object) -> None:
    with pytest.raises(InvalidExpectation):
        Expectation.from_dict(data)


@pytest.mark.parametrize(
    ("expectation", "predicted", "value", "met"),
    [
        (Expectation.exact("muffin"), "muffin", None, True),
        (Expectation.exact("muffin"), "chihuahua", None, False),
        (Expectation.exact("muffin"), "Muffin", None, False),  # labels are case-sensitive
        (Expectation.exact("muffin"), None, None, False),  # the model raised: no answer
        (Expectation.any_of(["muffin", "cake"]), "cake", None, True),
        (Expectation.any_of(["muffin", "cake"]), "bread", None, False),
        (Expectation.none_of(["chihuahua"]), "muffin", None, True),
        (Expectation.none_of(["chihuahua"]), "chihuahua", None, False),
        (Expectation.none_of(["chihuahua"]), None, None, False),
        (Expectation.between(3.5, 4.0), "3.5", 3.5, True),
        (Expectation.between(3.5, 4.0), "4.0", 4.0, True),
        (Expectation.between(3.5, 4.0), "3.7", 3.7, True),
        (Expectation.between(3.5, 4.0), "4.01", 4.01, False),
        (Expectation.between(3.5, 4.0), "3.49", 3.49, False),
        (Expectation.between(3.5, 4.0), "high", None, False),  # a label is not a number
    ],
)
def test_an_answer_is_judged_against_the_expectation(
    expectation: Expectation, predicted: str | None, value: float | None, met: bool
) -> None:
    assert expectation.is_met(predicted, value) is met


def test_labels_are_split_on_commas_and_blanks_dropped() -> None:
    assert split_labels(" a, b ,,c ,") == ["a", "b", "c"]
    assert split_labels("") == []
