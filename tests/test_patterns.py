"""Patterns through the library API, on SQLite and PostgreSQL, with real files in tmp_path."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from problem_registry.enums import Polarity, Source
from problem_registry.errors import (
    AmbiguousReference,
    CorruptPattern,
    DuplicatePattern,
    InvalidValue,
    PatternNotFound,
    ProblemNotFound,
    UnsafePath,
)
from problem_registry.expectations import Expectation
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from tests.helpers import snapshot, stored_files, write_json, write_png, write_text


@pytest.fixture
def hats(registry: Registry) -> str:
    return registry.problems.add("hats").slug


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_added_image_is_stored_by_content_hash_with_its_provenance(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    image = write_png(tmp_path / "in" / "cowboy.png", color=(10, 20, 30))

    result = registry.patterns.add(
        hats,
        [
            NewPattern(
                image,
                Expectation.exact("cowboy"),
                Polarity.positive,
                Source.production,
                note="from ticket 42",
            )
        ],
    )

    [view] = result.added
    assert result.skipped == []
    digest = sha256(image)
    assert view.sha256 == digest
    assert view.kind == "image"
    assert view.file == f"{digest[:2]}/{digest}.png"
    assert view.original_name == "cowboy.png"
    assert view.problem == "hats"
    assert view.expect == {"kind": "exact", "labels": ["cowboy"]}
    assert view.expected == "cowboy"
    assert (view.polarity, view.source, view.note) == ("positive", "production", "from ticket 42")
    assert view.added_by == "tester"
    assert view.added_at is not None
    stored = registry.store.root / view.file
    assert stored.read_bytes() == image.read_bytes()
    assert stored_files(registry.store.root) == [view.file]


def test_text_and_json_patterns_are_told_apart_by_content(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    text = write_text(tmp_path / "in" / "review.txt", "a lovely film, I hated it")
    data = write_json(tmp_path / "in" / "features.dat", {"age": 41, "hat": True})

    added = registry.patterns.add(
        hats,
        [
            NewPattern(text, Expectation.exact("negative")),
            NewPattern(data, Expectation.between(3.5, 4.0)),
        ],
    ).added

    assert [(v.kind, v.file.rsplit(".", 1)[1]) for v in added] == [
        ("text", "txt"),
        ("json", "json"),
    ]
    assert added[1].expect == {"kind": "range", "low": 3.5, "high": 4.0}
    assert added[1].expected == "3.5 to 4"


@pytest.mark.parametrize(
    ("expectation", "as_dict", "described"),
    [
        (Expectation.exact("muffin"), {"kind": "exact", "labels": ["muffin"]}, "muffin"),
        (
            Expectation.any_of(["muffin", "cake"]),
            {"kind": "any", "labels": ["cake", "muffin"]},
            "one of cake, muffin",
        ),
        (
            Expectation.none_of(["chihuahua"]),
            {"kind": "not", "labels": ["chihuahua"]},
            "not chihuahua",
        ),
        (Expectation.between(-1, 2.5), {"kind": "range", "low": -1.0, "high": 2.5}, "-1 to 2.5"),
    ],
    ids=["exact", "any", "not", "range"],
)
def test_every_expectation_shape_is_stored_and_read_back(
    registry: Registry,
    hats: str,
    tmp_path: Path,
    expectation: Expectation,
    as_dict: dict[str, object],
    described: str,
) -> None:
    image = write_png(tmp_path / "in" / "a.png")

    [added] = registry.patterns.add(hats, [NewPattern(image, expectation)]).added

    view = registry.patterns.get(added.id)
    assert view.expect == as_dict
    assert view.expected == described
    assert Expectation.from_dict(view.expect) == expectation


def test_duplicate_content_in_a_problem_is_refused_and_nothing_written(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    first = write_png(tmp_path / "in" / "a.png")
    registry.patterns.add(hats, [NewPattern(first, Expectation.exact("cowboy"))])
    copy = tmp_path / "elsewhere" / "renamed.png"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    fresh = write_png(tmp_path / "in" / "b.png", color=(0, 255, 0))
    before = snapshot(registry)

    with pytest.raises(DuplicatePattern, match=r"already pattern \d+ of hats"):
        registry.patterns.add(
            hats,
            [
                NewPattern(fresh, Expectation.exact("cowboy")),
                NewPattern(copy, Expectation.exact("farmer")),
            ],
        )

    assert snapshot(registry) == before  # the fresh file was not added either: all or nothing


def test_the_same_content_twice_in_one_call_is_refused(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    a = write_png(tmp_path / "in" / "a.png")
    b = tmp_path / "in" / "b.png"
    b.write_bytes(a.read_bytes())
    before = snapshot(registry)

    with pytest.raises(DuplicatePattern, match="same content"):
        registry.patterns.add(
            hats, [NewPattern(a, Expectation.exact("x")), NewPattern(b, Expectation.exact("y"))]
        )

    assert snapshot(registry) == before


def test_skip_existing_adds_only_new_content(registry: Registry, hats: str, tmp_path: Path) -> None:
    a = write_png(tmp_path / "in" / "a.png")
    b = write_png(tmp_path / "in" / "b.png", color=(0, 0, 255))
    [first] = registry.patterns.add(hats, [NewPattern(a, Expectation.exact("x"))]).added

    result = registry.patterns.add(
        hats,
        [NewPattern(a, Expectation.exact("x")), NewPattern(b, Expectation.exact("y"))],
        skip_existing=True,
    )

    assert [v.original_name for v in result.added] == ["b.png"]
    assert [v.id for v in result.skipped] == [first.id]
    assert len(registry.patterns.list(hats)) == 2


def test_one_corrupt_file_refuses_the_whole_batch(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    good = write_png(tmp_path / "in" / "good.png")
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(good.read_bytes()[:40])
    before = snapshot(registry)

    with pytest.raises(CorruptPattern, match=r"broken\.png"):
        registry.patterns.add(
            hats,
            [NewPattern(good, Expectation.exact("x")), NewPattern(broken, Expectation.exact("x"))],
        )

    assert snapshot(registry) == before
    assert stored_files(registry.store.root) == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (lambda path: NewPattern(path, Expectation.exact("x"), note="nul\x00"), "contains a NUL"),
        (lambda path: NewPattern(path, Expectation.exact("x"), note="\udce9"), "not valid UTF-8"),
        (lambda path: NewPattern(path, Expectation.exact("x"), "sideways"), "the polarity"),  # type: ignore[arg-type]
    ],
)
def test_a_row_field_that_cannot_be_stored_refuses_the_add_before_any_file_is_written(
    registry: Registry, hats: str, tmp_path: Path, pattern: Any, message: str
) -> None:
    """Found by the hostile-input fuzz: the file entered the store, then the row failed inside
    the transaction (a driver's traceback) and left the file behind as an orphan."""
    image = write_png(tmp_path / "in" / "a.png")
    before = snapshot(registry)

    with pytest.raises(InvalidValue, match=message):
        registry.patterns.add(hats, [pattern(image)])

    assert snapshot(registry) == before


@pytest.mark.parametrize("user", ["x" * 101, "nul\x00", "\udce9"])
def test_a_user_name_that_cannot_be_stored_refuses_the_add_and_writes_nothing(
    registry: Registry, hats: str, tmp_path: Path, user: str
) -> None:
    image = write_png(tmp_path / "in" / "a.png")
    before = snapshot(registry)
    registry.user = user

    with pytest.raises(InvalidValue, match="the user name"):
        registry.patterns.add(hats, [NewPattern(image, Expectation.exact("x"))])

    assert snapshot(registry) == before


def test_a_file_whose_name_is_not_utf8_is_added_under_a_readable_name(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    """Found by the hostile-input fuzz: Python names such a file with lone surrogates, which no
    driver can store; the name is only shown, so it is kept with U+FFFD rather than refused."""
    path = write_png(tmp_path / "in" / os.fsdecode(b"caf\xe9.png"))

    [view] = registry.patterns.add(hats, [NewPattern(path, Expectation.exact("x"))]).added

    assert view.original_name == "caf\ufffd.png"


def test_unknown_problem_is_refused_before_any_file_is_stored(
    registry: Registry, tmp_path: Path
) -> None:
    image = write_png(tmp_path / "in" / "a.png")
    before = snapshot(registry)

    with pytest.raises(ProblemNotFound, match="nope"):
        registry.patterns.add("nope", [NewPattern(image, Expectation.exact("x"))])

    assert snapshot(registry) == before


def test_content_shared_by_two_problems_is_stored_once(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    registry.problems.add("cowboys")
    image = write_png(tmp_path / "in" / "a.png")

    registry.patterns.add(hats, [NewPattern(image, Expectation.exact("cowboy"))])
    registry.patterns.add("cowboys", [NewPattern(image, Expectation.none_of(["farmer"]))])

    assert len(stored_files(registry.store.root)) == 1
    assert [v.problem for v in registry.patterns.list()] == ["cowboys", "hats"]
    assert [v.expected for v in registry.patterns.list("cowboys")] == ["not farmer"]


def test_patterns_are_found_by_id_or_hash_prefix(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    [view] = registry.patterns.add(
        hats, [NewPattern(write_png(tmp_path / "a.png"), Expectation.exact("x"))]
    ).added

    assert registry.patterns.get(view.id).sha256 == view.sha256
    assert registry.patterns.get(str(view.id)).sha256 == view.sha256
    assert registry.patterns.get(view.sha256[:8]).id == view.id
    assert registry.patterns.get(view.sha256.upper()).id == view.id
    assert registry.patterns.get(view.sha256[:6], problem=hats).id == view.id
    with pytest.raises(PatternNotFound, match="no pattern 999"):
        registry.patterns.get(999)
    with pytest.raises(PatternNotFound):
        registry.patterns.get("0" * 64 if not view.sha256.startswith("0") else "f" * 64)
    with pytest.raises(InvalidValue, match="not a pattern id or a sha256 prefix"):
        registry.patterns.get("abc")  # too short to be a hash prefix, not a number
    with pytest.raises(InvalidValue):
        registry.patterns.get("zzzzzzzz")
    # Found by the hostile-input fuzz: str.isdigit() takes these, int() refused "²" (a traceback)
    # and read "٣" as pattern 3.
    for other_digits in ("²", "٣", "\u0663\u0661"):
        with pytest.raises(InvalidValue, match="not a pattern id"):
            registry.patterns.get(other_digits)


def test_a_hash_prefix_shared_by_two_problems_is_ambiguous(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    registry.problems.add("cowboys")
    image = write_png(tmp_path / "a.png")
    [in_hats] = registry.patterns.add(hats, [NewPattern(image, Expectation.exact("x"))]).added
    registry.patterns.add("cowboys", [NewPattern(image, Expectation.exact("y"))])

    with pytest.raises(AmbiguousReference, match="matches several"):
        registry.patterns.get(in_hats.sha256[:10])
    assert registry.patterns.get(in_hats.sha256[:10], problem=hats).id == in_hats.id


def test_relabel_replaces_the_expectation_and_keeps_the_pattern(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    [view] = registry.patterns.add(
        hats, [NewPattern(write_png(tmp_path / "a.png"), Expectation.any_of(["a", "b"]))]
    ).added

    relabelled = registry.patterns.relabel(view.sha256[:8], Expectation.exact("c"))
    assert (relabelled.id, relabelled.sha256) == (view.id, view.sha256)
    assert relabelled.expect == {"kind": "exact", "labels": ["c"]}

    ranged = registry.patterns.relabel(view.id, Expectation.between(1, 2))
    assert ranged.expect == {"kind": "range", "low": 1.0, "high": 2.0}

    back = registry.patterns.relabel(view.id, Expectation.none_of(["d", "e"]))
    assert back.expect == {"kind": "not", "labels": ["d", "e"]}
    assert len(registry.patterns.list(hats)) == 1


def test_removing_the_last_use_of_a_file_deletes_it_from_the_store(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    registry.problems.add("cowboys")
    shared = write_png(tmp_path / "shared.png")
    only = write_png(tmp_path / "only.png", color=(1, 2, 3))
    [in_hats, only_view] = registry.patterns.add(
        hats, [NewPattern(shared, Expectation.exact("x")), NewPattern(only, Expectation.exact("y"))]
    ).added
    [in_cowboys] = registry.patterns.add(
        "cowboys", [NewPattern(shared, Expectation.exact("z"))]
    ).added

    removed = registry.patterns.remove(only_view.id)
    assert removed.id == only_view.id
    assert stored_files(registry.store.root) == [in_hats.file]

    registry.patterns.remove(in_hats.id)
    assert stored_files(registry.store.root) == [in_cowboys.file]  # still used by cowboys

    registry.patterns.remove(in_cowboys.sha256[:12])
    assert stored_files(registry.store.root) == []
    assert registry.patterns.list() == []
    with pytest.raises(PatternNotFound):
        registry.patterns.get(in_cowboys.id)


def test_list_is_sorted_by_problem_then_id_and_filters_by_problem(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    registry.problems.add("apples")
    registry.patterns.add(
        hats, [NewPattern(write_png(tmp_path / "1.png", (1, 0, 0)), Expectation.exact("x"))]
    )
    registry.patterns.add(
        "apples", [NewPattern(write_png(tmp_path / "2.png", (2, 0, 0)), Expectation.exact("x"))]
    )
    registry.patterns.add(
        hats, [NewPattern(write_png(tmp_path / "3.png", (3, 0, 0)), Expectation.exact("x"))]
    )

    assert [(v.problem, v.original_name) for v in registry.patterns.list()] == [
        ("apples", "2.png"),
        ("hats", "1.png"),
        ("hats", "3.png"),
    ]
    assert [v.original_name for v in registry.patterns.list(hats)] == ["1.png", "3.png"]
    with pytest.raises(ProblemNotFound):
        registry.patterns.list("nope")


# --- imports -------------------------------------------------------------------------------


def test_folder_import_expects_each_folder_name_and_is_idempotent(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    write_png(folder / "muffin" / "m1.png", (200, 150, 100))
    write_png(folder / "muffin" / "m2.png", (201, 150, 100))
    write_png(folder / "chihuahua" / "c1.png", (90, 60, 30))
    write_text(folder / ".hidden" / "ignored.txt", "not imported")

    first = registry.patterns.import_folder(
        hats, folder, polarity=Polarity.negative, source=Source.feedback, note="batch 1"
    )
    again = registry.patterns.import_folder(hats, folder)

    assert sorted((v.original_name, v.expected) for v in first.added) == [
        ("c1.png", "chihuahua"),
        ("m1.png", "muffin"),
        ("m2.png", "muffin"),
    ]
    assert {(v.polarity, v.source, v.note) for v in first.added} == {
        ("negative", "feedback", "batch 1")
    }
    assert again.added == []
    assert len(again.skipped) == 3
    assert len(registry.patterns.list(hats)) == 3


def test_folder_import_refuses_links_stray_files_and_empty_folders(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    outside = write_png(tmp_path / "secret" / "s.png")
    linked = tmp_path / "linked"
    write_png(linked / "muffin" / "ok.png")
    (linked / "muffin" / "link.png").symlink_to(outside)
    stray = tmp_path / "stray"
    write_png(stray / "loose.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(registry)

    with pytest.raises(UnsafePath, match="symbolic link"):
        registry.patterns.import_folder(hats, linked)
    with pytest.raises(InvalidValue, match="directly in"):
        registry.patterns.import_folder(hats, stray)
    with pytest.raises(InvalidValue, match="no files"):
        registry.patterns.import_folder(hats, empty)
    with pytest.raises(InvalidValue, match="not a folder"):
        registry.patterns.import_folder(hats, tmp_path / "missing")

    assert snapshot(registry) == before


def test_csv_import_reads_paths_beside_it_with_every_expectation_form(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    folder = tmp_path / "cases"
    write_png(folder / "img" / "a.png", (1, 1, 1))
    write_png(folder / "img" / "b.png", (2, 2, 2))
    write_text(folder / "c.txt", "four stars")
    write_json(folder / "d.json", {"x": 1})
    write_text(
        folder / "cases.csv",
        "path,expected,polarity,note\n"
        "img/a.png,muffin,positive,plain\n"
        'img/b.png,"any:muffin,cake",negative,\n'
        "c.txt,not:chihuahua,,\n"
        "d.json,range:3.5:4,positive,a regressor\n",
    )

    result = registry.patterns.import_csv(hats, folder / "cases.csv", source=Source.production)

    assert [(v.original_name, v.expected, v.polarity, v.note) for v in result.added] == [
        ("a.png", "muffin", "positive", "plain"),
        ("b.png", "one of cake, muffin", "negative", ""),
        ("c.txt", "not chihuahua", "positive", ""),
        ("d.json", "3.5 to 4", "positive", "a regressor"),
    ]
    assert {v.source for v in result.added} == {"production"}
    assert registry.patterns.import_csv(hats, folder / "cases.csv").added == []


# (row, error, message); {line} is the row's line number in the file.
BAD_CSV_ROWS: list[tuple[str, type[Exception], str]] = [
    ("../outside.png,x\n", UnsafePath, "line {line}: path '../outside.png' resolves outside"),
    ("/etc/hostname,x\n", UnsafePath, "line {line}: path '/etc/hostname' is absolute"),
    ("a.png,x,sideways\n", InvalidValue, "line {line}: 'sideways' is not a valid Polarity"),
    ("a.png,range:4:3\n", InvalidValue, "line {line}: range 4.0:3.0 is empty"),
    ("a.png,\n", InvalidValue, "line {line}: an expected label cannot be empty"),
    (",x\n", InvalidValue, "line {line}: empty path"),
    ("missing.png,x\n", CorruptPattern, "missing.png: missing"),
    # Found by the hostile-input fuzz: the fields past the header's came as a list (a traceback).
    ("a.png,x,positive,a note,a comma,unquoted\n", InvalidValue,
     "line {line} has more fields than the header"),
]  # fmt: skip


def test_bad_csv_row_is_refused_naming_its_line_and_nothing_written(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    folder = tmp_path / "cases"
    write_png(folder / "a.png")
    write_png(tmp_path / "outside.png", (9, 9, 9))
    before = snapshot(registry)

    for row, error, message in BAD_CSV_ROWS:
        # After a good row too: one bad row refuses the whole file.
        for line, good_rows in ((2, ""), (3, "a.png,ok\n")):
            csv_file = write_text(folder / "cases.csv", f"path,expected,polarity\n{good_rows}{row}")
            with pytest.raises(error, match=re.escape(message.format(line=line))):
                registry.patterns.import_csv(hats, csv_file)

    assert snapshot(registry) == before


def test_csv_without_the_required_columns_is_refused(
    registry: Registry, hats: str, tmp_path: Path
) -> None:
    no_expected = write_text(tmp_path / "a.csv", "path,label\na.png,x\n")
    header_only = write_text(tmp_path / "b.csv", "path,expected\n")

    with pytest.raises(InvalidValue, match="lacks column 'expected'"):
        registry.patterns.import_csv(hats, no_expected)
    with pytest.raises(InvalidValue, match="no rows"):
        registry.patterns.import_csv(hats, header_only)
    with pytest.raises(InvalidValue, match="cannot read CSV"):
        registry.patterns.import_csv(hats, tmp_path / "missing.csv")
