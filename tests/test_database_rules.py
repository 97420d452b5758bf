"""The database itself enforces the registry's rules, on SQLite and PostgreSQL.

Every insert here is raw SQL, bypassing the library's Python checks, as a second writer, an old
client or a hand-written script would: the schema alone must refuse what breaks a rule, and a
refused statement must leave every table as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from problem_registry.store.registry import Registry
from tests.helpers import row_counts

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def insert(connection: Connection, table: str, **values: Any) -> int | None:
    """``INSERT INTO table (...) VALUES (...)`` as plain SQL text; the new id where there is one."""
    columns = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    returning = " RETURNING id" if table not in {"expected_label", "model_metric", "result"} else ""
    row = connection.execute(
        sa.text(f"INSERT INTO {table} ({columns}) VALUES ({params}){returning}"), values
    )
    return row.scalar_one() if returning else None


def problem(connection: Connection, slug: str = "hats", **overrides: Any) -> int | None:
    values: dict[str, Any] = {
        "slug": slug,
        "title": slug,
        "description": "",
        "status": "open",
        "tags": "[]",
        "max_error_rate": None,
        "allowed_regressions": 0,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return insert(connection, "problem", **(values | overrides))


def pattern_file(connection: Connection, sha256: str = "a" * 64, **overrides: Any) -> int | None:
    values = {"sha256": sha256, "kind": "image", "extension": "png", "size_bytes": 10}
    return insert(connection, "pattern_file", **(values | overrides))


def pattern(connection: Connection, problem_id: Any, file_id: Any, **overrides: Any) -> int | None:
    values: dict[str, Any] = {
        "problem_id": problem_id,
        "file_id": file_id,
        "original_name": "a.png",
        "expect_kind": "exact",
        "expect_min": None,
        "expect_max": None,
        "polarity": "positive",
        "source": "contrived",
        "note": "",
        "added_by": "sql",
        "added_at": NOW,
    }
    return insert(connection, "pattern", **(values | overrides))


def model_version(
    connection: Connection, name: str = "digits", version: str = "v1", **overrides: Any
) -> int | None:
    values: dict[str, Any] = {
        "name": name,
        "version": version,
        "loader_kind": "python",
        "loader": "m:load",
        "artifact_path": None,
        "artifact_sha256": None,
        "is_champion": False,
        "note": "",
        "registered_by": "sql",
        "registered_at": NOW,
    }
    return insert(connection, "model_version", **(values | overrides))


def result(connection: Connection, model_version_id: Any, file_id: Any) -> None:
    insert(
        connection,
        "result",
        model_version_id=model_version_id,
        file_id=file_id,
        predicted="muffin",
        value=None,
        confidence=0.9,
        latency_ms=1.0,
        error=None,
        run_id=None,
    )


def run(connection: Connection, **overrides: Any) -> int | None:
    values: dict[str, Any] = {
        "status": "running",
        "trigger": "cli",
        "triggered_by": "sql",
        "git_commit": None,
        "candidate_id": None,
        "started_at": NOW,
        "finished_at": None,
        "predicted": 0,
        "reused": 0,
        "errored": 0,
        "message": "",
    }
    return insert(connection, "run", **(values | overrides))


@pytest.fixture
def ids(registry: Registry) -> dict[str, Any]:
    """One committed row in each table, to collide with."""
    with registry.engine.begin() as connection:
        problem_id = problem(connection, "hats")
        file_id = pattern_file(connection, "a" * 64)
        pattern_id = pattern(connection, problem_id, file_id)
        insert(connection, "expected_label", pattern_id=pattern_id, label="cowboy")
        version_id = model_version(connection, "digits", "v1", is_champion=True)
        insert(connection, "model_metric", model_version_id=version_id, name="auc", value=0.9)
        result(connection, version_id, file_id)
        run_id = run(connection, candidate_id=version_id)
    return {
        "problem": problem_id,
        "file": file_id,
        "pattern": pattern_id,
        "version": version_id,
        "run": run_id,
    }


@pytest.fixture
def refused(registry: Registry) -> Iterator[Any]:
    """``with refused() as connection:`` the statement must fail and change no table."""
    from contextlib import contextmanager

    @contextmanager
    def expect_refusal(what: str = "the statement") -> Iterator[Connection]:
        before = row_counts(registry)
        try:
            with registry.engine.begin() as connection:
                yield connection
        except IntegrityError:
            pass
        else:
            pytest.fail(f"the database accepted {what}")
        assert row_counts(registry) == before, what

    yield expect_refusal


def test_problem_slug_is_unique(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        problem(connection, "hats")


def test_a_file_appears_once_per_problem(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        pattern(connection, ids["problem"], ids["file"], original_name="copy.png")


def test_the_same_file_may_serve_two_problems(registry: Registry, ids: dict[str, Any]) -> None:
    with registry.engine.begin() as connection:
        other = problem(connection, "cowboys")
        pattern(connection, other, ids["file"])

    assert row_counts(registry)["pattern"] == 2


def test_file_content_is_stored_once(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        pattern_file(connection, "a" * 64, extension="jpg")


def test_model_name_and_version_are_unique(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        model_version(connection, "digits", "v1", loader="other:load")


def test_at_most_one_champion_per_model_name(
    registry: Registry, refused: Any, ids: dict[str, Any]
) -> None:
    with registry.engine.begin() as connection:
        model_version(connection, "digits", "v2")  # not a champion: any number of those
        model_version(connection, "digits", "v3")
        model_version(connection, "faces", "v1", is_champion=True)  # another name's champion

    with refused() as connection:
        model_version(connection, "digits", "v4", is_champion=True)
    with refused() as connection:
        connection.execute(
            sa.text("UPDATE model_version SET is_champion = :yes WHERE name = 'digits'"),
            {"yes": True},
        )


def test_a_result_is_stored_once_per_version_and_content(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        result(connection, ids["version"], ids["file"])


def test_a_metric_is_stored_once_per_version(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        insert(connection, "model_metric", model_version_id=ids["version"], name="auc", value=1.0)


def test_foreign_keys_are_enforced_on_both_backends(
    registry: Registry, refused: Any, ids: dict[str, Any]
) -> None:
    if registry.engine.dialect.name == "sqlite":
        with registry.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1

    with refused() as connection:
        pattern(connection, 9999, ids["file"])
    with refused() as connection:
        pattern(connection, ids["problem"], 9999)
    with refused() as connection:
        result(connection, 9999, ids["file"])
    with refused() as connection:
        insert(connection, "expected_label", pattern_id=9999, label="x")
    with refused() as connection:
        run(connection, candidate_id=9999)


def test_a_file_in_use_cannot_be_deleted(refused: Any, ids: dict[str, Any]) -> None:
    with refused() as connection:
        connection.execute(sa.text("DELETE FROM pattern_file WHERE id = :id"), {"id": ids["file"]})


def test_deleting_a_problem_deletes_its_patterns_and_their_labels(
    registry: Registry, ids: dict[str, Any]
) -> None:
    with registry.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM problem WHERE id = :id"), {"id": ids["problem"]})

    counts = row_counts(registry)
    assert (counts["problem"], counts["pattern"], counts["expected_label"]) == (0, 0, 0)
    assert counts["pattern_file"] == 1  # the content stays until removed on purpose
    assert counts["result"] == 1


def test_deleting_a_model_version_deletes_its_results_and_metrics_and_keeps_runs(
    registry: Registry, ids: dict[str, Any]
) -> None:
    with registry.engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM model_version WHERE id = :id"), {"id": ids["version"]}
        )
        candidate = connection.execute(
            sa.text("SELECT candidate_id FROM run WHERE id = :id"), {"id": ids["run"]}
        ).scalar_one()

    counts = row_counts(registry)
    assert (counts["result"], counts["model_metric"], counts["run"]) == (0, 0, 1)
    assert candidate is None


IMPOSSIBLE_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("problem", {"status": "closed"}),
    ("problem", {"max_error_rate": 1.5}),
    ("problem", {"max_error_rate": -0.01}),
    ("problem", {"allowed_regressions": -1}),
    ("pattern_file", {"kind": "video"}),
    ("pattern", {"polarity": "neutral"}),
    ("pattern", {"source": "rumour"}),
    ("pattern", {"expect_kind": "fuzzy"}),
    ("pattern", {"expect_kind": "range"}),  # a range needs both bounds
    ("pattern", {"expect_kind": "range", "expect_min": 1.0}),
    ("pattern", {"expect_kind": "range", "expect_min": 4.0, "expect_max": 3.0}),
    ("pattern", {"expect_kind": "exact", "expect_min": 1.0, "expect_max": 2.0}),
    ("model_version", {"loader_kind": "tensorflow"}),
    ("run", {"status": "paused"}),
]


def test_check_constraints_refuse_impossible_values(refused: Any, ids: dict[str, Any]) -> None:
    for table, overrides in IMPOSSIBLE_VALUES:
        with refused(f"{table} with {overrides}") as connection:
            if table == "problem":
                problem(connection, "fresh", **overrides)
            elif table == "pattern_file":
                pattern_file(connection, "b" * 64, **overrides)
            elif table == "pattern":
                other_file = pattern_file(connection, "c" * 64)
                pattern(connection, ids["problem"], other_file, **overrides)
            elif table == "model_version":
                model_version(connection, "digits", "v9", **overrides)
            else:
                run(connection, **overrides)


def test_valid_rows_pass_the_same_constraints(registry: Registry, ids: dict[str, Any]) -> None:
    """The refusals above are the constraints at work, not malformed SQL."""
    with registry.engine.begin() as connection:
        problem(connection, "fresh", status="retired", max_error_rate=1.0, allowed_regressions=3)
        other_file = pattern_file(connection, "c" * 64, kind="json")
        pattern(
            connection,
            ids["problem"],
            other_file,
            expect_kind="range",
            expect_min=3.0,
            expect_max=3.0,
            polarity="negative",
            source="feedback",
        )
        model_version(connection, "digits", "v9", loader_kind="predictions")
        run(connection, status="completed")

    counts = row_counts(registry)
    assert (counts["problem"], counts["pattern"], counts["model_version"], counts["run"]) == (
        2,
        2,
        2,
        2,
    )
