"""Problems through the library API, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from problem_registry.enums import Polarity, ProblemStatus
from problem_registry.errors import DuplicateProblem, InvalidValue, ProblemNotFound
from problem_registry.expectations import Expectation
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from tests.helpers import snapshot, write_png


def test_added_problem_has_defaults_derived_from_its_slug(registry: Registry) -> None:
    view = registry.problems.add("chihuahua-vs-muffin")

    assert view.slug == "chihuahua-vs-muffin"
    assert view.title == "Chihuahua vs muffin"
    assert view.status == "open"
    assert view.tags == []
    assert view.max_error_rate is None
    assert view.allowed_regressions == 0
    assert (view.patterns, view.positives, view.negatives) == (0, 0, 0)
    assert view.created_at is not None
    assert view.created_at.endswith("Z")


def test_added_problem_keeps_its_gates_title_description_and_tags(registry: Registry) -> None:
    registry.problems.add(
        "hats",
        title="Biased toward people wearing hats",
        description="Anyone in a hat is labelled 'cowboy'.",
        tags=["Bias", " people ", "bias", ""],
        max_error_rate=0.2,
        allowed_regressions=1,
    )

    view = registry.problems.get("hats")
    assert view.title == "Biased toward people wearing hats"
    assert view.description == "Anyone in a hat is labelled 'cowboy'."
    assert view.tags == ["bias", "people"]  # lowercased, stripped, deduplicated, sorted
    assert view.max_error_rate == 0.2
    assert view.allowed_regressions == 1


def test_duplicate_slug_is_refused_and_nothing_written(registry: Registry) -> None:
    registry.problems.add("hats", title="first")
    before = snapshot(registry)

    with pytest.raises(DuplicateProblem, match="hats already exists"):
        registry.problems.add("hats", title="second")

    assert snapshot(registry) == before
    assert registry.problems.get("hats").title == "first"


MALFORMED_SLUGS = [
    "",
    "Hats",
    "two words",
    "double--hyphen",
    "-leading",
    "trailing-",
    "a/b",
    "x" * 101,
    "hats\n",  # found by the hostile-input fuzz: re's "$" also matches before a final newline
]


def test_malformed_slug_is_refused_and_nothing_written(registry: Registry) -> None:
    before = snapshot(registry)

    for slug in MALFORMED_SLUGS:
        with pytest.raises(InvalidValue, match="not a valid problem slug"):
            registry.problems.add(slug)

    assert snapshot(registry) == before


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ({"max_error_rate": 1.5}, "outside 0..1"),
        ({"max_error_rate": -0.1}, "outside 0..1"),
        ({"allowed_regressions": -1}, "negative"),
    ],
)
def test_impossible_gate_is_refused_and_nothing_written(
    registry: Registry, gates: dict[str, float], message: str
) -> None:
    before = snapshot(registry)

    with pytest.raises(InvalidValue, match=message):
        registry.problems.add("hats", **gates)  # type: ignore[arg-type]

    assert snapshot(registry) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "nul\x00here"}, "title contains a NUL"),
        ({"description": "caf\udce9"}, "description is not valid UTF-8"),
        ({"tags": ["caf\udce9"]}, "is not valid UTF-8"),
        ({"allowed_regressions": 2**31}, "is over 2,147,483,647"),
        ({"allowed_regressions": 10**30}, "is over"),
        ({"allowed_regressions": float("inf")}, "not a whole number"),
    ],
)
def test_a_value_one_backend_cannot_store_is_refused_on_both(
    registry: Registry, fields: dict[str, object], message: str
) -> None:
    """Found by the hostile-input fuzz: PostgreSQL refuses NUL and its INTEGER ends at 2**31 - 1,
    no driver encodes a lone surrogate (a non-UTF-8 argument), SQLite stops at 2**63: each ended in
    a driver's traceback, on one backend or both, instead of one clear error."""
    registry.problems.add("hats")
    before = snapshot(registry)

    with pytest.raises(InvalidValue, match=message):
        registry.problems.add("cowboys", **fields)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match=message):
        registry.problems.edit("hats", **fields)  # type: ignore[arg-type]

    assert snapshot(registry) == before


def test_a_slug_no_backend_can_store_names_no_problem(registry: Registry) -> None:
    """Found by the hostile-input fuzz: the lookup sent a lone surrogate to the driver."""
    with pytest.raises(ProblemNotFound):
        registry.problems.get("caf\udce9")
    with pytest.raises(ProblemNotFound):
        registry.patterns.list("nul\x00")


def test_unknown_slug_is_named_in_the_error_with_the_fix(registry: Registry) -> None:
    with pytest.raises(ProblemNotFound, match=r"no problem 'nope'.*problem add nope"):
        registry.problems.get("nope")
    with pytest.raises(ProblemNotFound):
        registry.problems.edit("nope", title="x")


def test_problems_are_listed_by_slug_and_filtered_by_status_and_tag(registry: Registry) -> None:
    registry.problems.add("zebra-stripes", tags=["texture"])
    registry.problems.add("apple-vs-tomato", tags=["colour"])
    registry.problems.add("muffin", tags=["texture", "food"])
    registry.problems.retire("apple-vs-tomato")

    assert [p.slug for p in registry.problems.list()] == [
        "apple-vs-tomato",
        "muffin",
        "zebra-stripes",
    ]
    assert [p.slug for p in registry.problems.list(status="open")] == ["muffin", "zebra-stripes"]
    assert [p.slug for p in registry.problems.list(tag="texture")] == ["muffin", "zebra-stripes"]
    assert [p.slug for p in registry.problems.list(status="retired", tag="colour")] == [
        "apple-vs-tomato"
    ]
    with pytest.raises(InvalidValue, match="not a problem status"):
        registry.problems.list(status="closed")


def test_statuses_agree_with_the_listed_views_in_slug_order(registry: Registry) -> None:
    registry.problems.add("zebra-stripes")
    registry.problems.add("apple-vs-tomato")
    registry.problems.add("muffin")
    registry.problems.retire("apple-vs-tomato")

    statuses = registry.problems.statuses()

    assert list(statuses) == ["apple-vs-tomato", "muffin", "zebra-stripes"]
    assert statuses == {p.slug: ProblemStatus(p.status) for p in registry.problems.list()}
    assert statuses["apple-vs-tomato"] is ProblemStatus.retired


def test_edit_changes_only_the_fields_given(registry: Registry) -> None:
    original = registry.problems.add(
        "hats", description="keep me", tags=["bias"], max_error_rate=0.3, allowed_regressions=2
    )

    edited = registry.problems.edit("hats", title="Hats again", max_error_rate=0.1)

    assert edited.title == "Hats again"
    assert edited.max_error_rate == 0.1
    assert edited.description == "keep me"
    assert edited.tags == ["bias"]
    assert edited.allowed_regressions == 2
    assert edited.created_at == original.created_at


def test_edit_with_none_removes_the_canary_gate(registry: Registry) -> None:
    registry.problems.add("hats", max_error_rate=0.3)

    assert registry.problems.edit("hats", max_error_rate=None).max_error_rate is None


def test_edit_refuses_a_bad_value_and_leaves_the_problem_unchanged(registry: Registry) -> None:
    registry.problems.add("hats", max_error_rate=0.3)
    before = snapshot(registry)
    original = registry.problems.get("hats")

    with pytest.raises(InvalidValue):
        registry.problems.edit("hats", title="new title", status="closed")
    with pytest.raises(InvalidValue):
        registry.problems.edit("hats", max_error_rate=2.0)

    assert snapshot(registry) == before
    assert registry.problems.get("hats") == original


def test_retired_problem_keeps_its_patterns(registry: Registry, tmp_path: Path) -> None:
    registry.problems.add("hats")
    registry.patterns.add(
        "hats", [NewPattern(write_png(tmp_path / "in" / "a.png"), Expectation.exact("cowboy"))]
    )

    retired = registry.problems.retire("hats")

    assert retired.status == "retired"
    assert retired.patterns == 1
    assert len(registry.patterns.list("hats")) == 1


def test_problem_counts_its_patterns_by_polarity(registry: Registry, tmp_path: Path) -> None:
    registry.problems.add("hats")
    registry.problems.add("empty")
    files = [write_png(tmp_path / "in" / f"{i}.png", color=(i, 0, 0)) for i in range(3)]
    registry.patterns.add(
        "hats",
        [
            NewPattern(files[0], Expectation.exact("cowboy"), Polarity.positive),
            NewPattern(files[1], Expectation.exact("cowboy"), Polarity.positive),
            NewPattern(files[2], Expectation.exact("farmer"), Polarity.negative),
        ],
    )

    hats = registry.problems.get("hats")
    assert (hats.patterns, hats.positives, hats.negatives) == (3, 2, 1)
    listed = {p.slug: p.patterns for p in registry.problems.list()}
    assert listed == {"empty": 0, "hats": 3}


def test_concurrent_adds_of_one_slug_leave_exactly_one_problem(
    database_url: str, tmp_path: Path
) -> None:
    """Several writers race for the same slug: one wins, the others get a clean refusal."""
    writers = 4
    registries = [
        Registry.open(url=database_url, patterns_dir=tmp_path / "patterns", user=f"w{i}")
        for i in range(writers)
    ]
    barrier = threading.Barrier(writers)
    outcomes: list[object] = []

    def add(registry: Registry) -> None:
        barrier.wait()
        try:
            outcomes.append(registry.problems.add("hats", title=registry.user))
        except DuplicateProblem as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=add, args=(r,)) for r in registries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(outcomes) == writers
        winners = [o for o in outcomes if not isinstance(o, DuplicateProblem)]
        assert len(winners) == 1
        assert [p.slug for p in registries[0].problems.list()] == ["hats"]
    finally:
        for registry in registries:
            registry.close()
