"""Text "more like this" by trigram vectors (issue 20): the nearest neighbours difflib picked,
found by matrix products in bounded chunks; the near-failure threshold on its own scale."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from problem_registry.triage import similarity
from problem_registry.triage.queue import NEAR_TEXT
from problem_registry.triage.similarity import (
    Item,
    closest_texts,
    distance,
    nearest,
    text_distances,
)

FAILING = [
    "The refund never arrived although the order was cancelled two weeks ago.",
    "Screen cracked on delivery; the box was crushed at one corner.",
    "Battery drains overnight even with every app closed.",
    '{"question": "is this a cat?", "answer": "no, a fox"}',
]
CASES = [
    "the refund never arrived although my order was canceled 2 weeks ago!",
    "Screen cracked on delivery, the box was crushed at a corner.",
    "Battery drains over night, even with all apps closed.",
    '{"question": "is this a cat?", "answer": "no, a dog"}',
    "Lovely colour, fits well, would buy again.",
]


def text_item(n: int, text: str, kind: str = "case") -> Item:
    return Item(kind, n, f"{n:064x}", "txt", "text", "label", fingerprint=text)


def difflib_distance(a: str, b: str) -> float:
    return 1.0 - difflib.SequenceMatcher(None, a, b).ratio()


def test_the_nearest_failing_text_is_difflibs_and_near_means_the_same_edits() -> None:
    patterns = [text_item(n, t, "pattern") for n, t in enumerate(FAILING)]
    cases = [text_item(100 + n, t) for n, t in enumerate(CASES)]
    found = closest_texts(cases, patterns)
    for case, (index, gap) in zip(CASES, found, strict=True):
        by_difflib = [difflib_distance(case, pattern) for pattern in FAILING]
        assert index == by_difflib.index(min(by_difflib)), case
        # Near by trigrams exactly where near by difflib's old threshold (0.15).
        assert (gap <= NEAR_TEXT) == (min(by_difflib) <= 0.15), (case, gap, min(by_difflib))
    # The same numbers as the full matrix and as one pair at a time.
    matrix = text_distances(cases, patterns)
    assert [round(float(matrix[n, i]), 5) for n, (i, _) in enumerate(found)] == [
        round(gap, 5) for _, gap in found
    ]
    assert distance(cases[0], patterns[0]) == (pytest.approx(found[0][1], abs=1e-5), "text")
    # "More like this" for a text: the edited copy first, by text.
    around = nearest(patterns[1], [*cases, *patterns], 3)
    assert around[0].item is cases[1] and {n.by for n in around} == {"text"}


def test_many_texts_go_through_in_chunks_with_the_same_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patterns = [text_item(n, t, "pattern") for n, t in enumerate(FAILING)]
    cases = [text_item(100 + n, CASES[n % len(CASES)] + " " * (n % 3)) for n in range(23)]
    whole = closest_texts(cases, patterns)
    monkeypatch.setattr(similarity, "TEXT_ROWS_PER_CHUNK", 4)
    for case in cases:
        case.vector = None
    chunked = closest_texts(cases, patterns)
    assert [i for i, _ in chunked] == [i for i, _ in whole]
    assert [gap for _, gap in chunked] == pytest.approx([gap for _, gap in whole], abs=1e-6)
    assert closest_texts(cases, []) == [(-1, 1.0)] * len(cases)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_two_texts_are_at_a_distance_in_0_1_symmetric_and_0_from_themselves(
    a: str, b: str
) -> None:
    left, right = text_item(1, a), text_item(2, b)
    forward = float(text_distances([left], [right])[0, 0])
    backward = float(text_distances([right], [left])[0, 0])
    assert 0.0 <= forward <= 1.0 and forward == pytest.approx(backward, abs=1e-6)
    assert float(text_distances([left], [text_item(3, a)])[0, 0]) == pytest.approx(0.0, abs=1e-6)
