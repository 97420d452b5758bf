"""`check`: pattern content missing or altered in the database is an error; a cached file's trouble
and leftovers are warnings; both backends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from problem_registry.enums import Polarity
from problem_registry.expectations import Expectation
from problem_registry.store.bundle import export_bundle, import_bundle
from problem_registry.store.integrity import check
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.store.views import PatternView
from tests.helpers import lose_content, write_json, write_png, write_text

SHARED = "shared.png"


def populate(registry: Registry, inputs: Path) -> None:
    """Two problems sharing one image, plus a text and a range pattern."""
    registry.problems.add("chihuahua-vs-muffin")
    registry.problems.add("hats-bias")
    shared = write_png(inputs / SHARED, (1, 2, 3))
    registry.patterns.add(
        "chihuahua-vs-muffin",
        [
            NewPattern(shared, Expectation.exact("muffin")),
            NewPattern(write_text(inputs / "a.txt", "a chihuahua"), Expectation.none_of(["x"])),
        ],
    )
    registry.patterns.add(
        "hats-bias",
        [
            NewPattern(shared, Expectation.exact("hat"), Polarity.negative),
            NewPattern(write_json(inputs / "s.json", {"v": 1}), Expectation.between(0, 1)),
        ],
    )


@pytest.fixture
def populated(registry: Registry, tmp_path: Path) -> Registry:
    populate(registry, tmp_path / "inputs")
    return registry


def shared_views(registry: Registry) -> list[PatternView]:
    return [view for view in registry.patterns.list() if view.original_name == SHARED]


def test_a_healthy_registry_passes_with_every_file_checked(populated: Registry) -> None:
    report = check(populated)

    assert report.ok
    assert (report.errors, report.warnings, report.files_checked) == ([], [], 3)


def test_an_empty_registry_without_a_store_folder_passes(registry: Registry) -> None:
    report = check(registry)

    assert report.ok and report.files_checked == 0


def test_lost_content_is_an_error_naming_every_problem_and_pattern_that_uses_it(
    populated: Registry,
) -> None:
    views = shared_views(populated)
    lose_content(populated, views[0].sha256, views[0].file)

    report = check(populated)

    assert not report.ok
    [error] = report.errors
    assert error.code == "missing-file" and error.file == views[0].file
    assert error.problems == ("chihuahua-vs-muffin", "hats-bias")
    assert error.patterns == tuple(sorted(view.id for view in views))
    assert "missing" in error.message and "import" in error.message
    assert "\n" not in error.message


def test_a_deleted_cached_file_is_no_error_the_database_holds_the_content(
    populated: Registry,
) -> None:
    (populated.store.root / shared_views(populated)[0].file).unlink()

    report = check(populated)

    assert report.ok and report.warnings == []


def test_content_only_in_the_cache_is_put_into_the_database(populated: Registry) -> None:
    view = shared_views(populated)[0]
    with populated.writing() as session:  # as a registry upgraded where its files were not
        session.execute(sa.text("DELETE FROM pattern_blob WHERE sha256 = :s"), {"s": view.sha256})

    report = check(populated)

    assert report.ok and [w.code for w in report.warnings] == ["content-uploaded"]
    assert check(populated).warnings == []


def test_content_altered_in_the_database_is_an_error(populated: Registry) -> None:
    view = next(v for v in populated.patterns.list() if v.kind == "text")
    with populated.writing() as session:
        session.execute(
            sa.text("UPDATE pattern_blob SET data = :d WHERE sha256 = :s"),
            {"d": b"a chihuahua, edited", "s": view.sha256},
        )

    report = check(populated)

    assert not report.ok
    assert [(e.code, e.patterns) for e in report.errors] == [("altered-file", (view.id,))]
    assert "sha256 no longer matches" in report.errors[0].message


def test_a_cached_file_replaced_by_a_link_is_a_warning(populated: Registry, tmp_path: Path) -> None:
    view = shared_views(populated)[0]
    path = populated.store.root / view.file
    copy = tmp_path / "elsewhere.png"
    copy.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(copy)

    report = check(populated)

    assert report.ok and [w.code for w in report.warnings] == ["link-cache-file"]


def test_orphans_and_leftovers_are_warnings_and_other_entries_are_not_ours(
    populated: Registry,
) -> None:
    root = populated.store.root
    orphan = f"ab/ab{'0' * 62}.png"
    (root / "ab").mkdir(exist_ok=True)
    (root / orphan).write_bytes(b"left by an interrupted add")
    (root / "ab" / ".incoming-x1y2").write_bytes(b"")
    (root / "ab" / "notes.txt").write_text("mine")
    (root / "README.md").write_text("a store folder may hold other things")
    (root / "bundle").mkdir()
    (root / "bundle" / "bundle.json").write_text("{}")

    report = check(populated)

    assert report.ok
    assert [(w.code, w.file) for w in report.warnings] == [
        ("temporary-file", "ab/.incoming-x1y2"),
        ("orphan-file", orphan),
        ("unexpected-file", "ab/notes.txt"),
    ]


def test_a_content_row_no_pattern_uses_is_only_a_warning(populated: Registry) -> None:
    sha = "cd" * 32
    with populated.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO pattern_file (sha256, kind, extension, size_bytes) "
                "VALUES (:sha, 'text', 'txt', 3)"
            ),
            {"sha": sha},
        )

    report = check(populated)

    assert report.ok
    [warning] = report.warnings
    assert warning.code == "missing-file" and "used by no pattern" in warning.message


def test_labels_contradicting_an_expectation_are_errors(populated: Registry) -> None:
    views = populated.patterns.list()
    exact = next(v for v in views if v.expect["kind"] == "exact")
    ranged = next(v for v in views if v.expect["kind"] == "range")
    with populated.engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM expected_label WHERE pattern_id = :id"), {"id": exact.id}
        )
        connection.execute(
            sa.text("INSERT INTO expected_label (pattern_id, label) VALUES (:id, 'stray')"),
            {"id": ranged.id},
        )

    report = check(populated)

    assert not report.ok
    assert sorted((e.code, e.patterns) for e in report.errors) == sorted(
        [("expectation-labels", (exact.id,)), ("expectation-labels", (ranged.id,))]
    )
    assert all("pattern relabel" in e.message for e in report.errors)


def test_sqlite_foreign_key_violations_are_errors(populated: Registry) -> None:
    if populated.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL enforces foreign keys at all times: no violation can exist")
    database = populated.engine.url.database
    assert database is not None
    with sqlite3.connect(database) as connection:  # foreign keys are off by default here
        connection.execute("INSERT INTO expected_label (pattern_id, label) VALUES (9999, 'x')")

    report = check(populated)

    assert [e.code for e in report.errors] == ["foreign-key"]
    assert "expected_label" in report.errors[0].message


def test_report_is_json_ready_and_progress_counts_every_file(populated: Registry) -> None:
    view = shared_views(populated)[0]
    lose_content(populated, view.sha256, view.file)
    seen: list[tuple[int, int]] = []

    report = check(populated, progress=lambda done, total: seen.append((done, total)))

    document = json.loads(json.dumps(report.to_dict()))
    assert document["ok"] is False and document["files_checked"] == 3
    assert document["errors"][0]["problems"] == ["chihuahua-vs-muffin", "hats-bias"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert document["database"] == populated.display_url  # the redacted form, never a password


def test_importing_the_bundle_repairs_what_check_found(populated: Registry, tmp_path: Path) -> None:
    export_bundle(populated, tmp_path / "bundle")
    views = populated.patterns.list()
    lose_content(populated, views[0].sha256, views[0].file)
    lose_content(populated, views[-1].sha256, views[-1].file)
    assert len(check(populated).errors) == 2

    import_bundle(populated, tmp_path / "bundle")

    report = check(populated)
    assert report.ok and report.warnings == []
