"""SQLite and PostgreSQL agree: the same operations, in any order, give the same registry.

A Hypothesis state machine drives one registry on each backend with the same random sequence of
library calls (including ones that must be refused), compares what each returned or raised after
every step, and everything each registry lists at the end of each sequence. Timestamps are the
only fields left out.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from problem_registry.enums import Polarity
from problem_registry.errors import RegistryError
from problem_registry.expectations import Expectation
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from problem_registry.store.tables import SQLModel
from tests.conftest import PostgresServer
from tests.helpers import write_json, write_png, write_text

TIMESTAMPS = {"created_at", "updated_at", "added_at", "registered_at"}
SLUGS = st.sampled_from(["hats", "muffins", "night-shots", "Bad Slug"])
LABELS = st.sampled_from(["cat", "dog", "muffin"])
EXPECTATIONS = st.one_of(
    st.builds(Expectation.exact, LABELS),
    st.builds(Expectation.any_of, st.lists(LABELS, min_size=1, max_size=3)),
    st.builds(Expectation.none_of, st.lists(LABELS, min_size=1, max_size=2)),
    st.builds(Expectation.between, st.integers(-2, 2), st.integers(2, 5)),
)
NAMES = st.sampled_from(["digits", "faces"])
VERSIONS = st.sampled_from(["v1", "v2", "v3"])


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    inputs = tmp_path / "inputs"
    return [
        write_png(inputs / "red.png", (255, 0, 0)),
        write_png(inputs / "green.png", (0, 255, 0)),
        write_png(inputs / "blue.png", (0, 0, 255)),
        write_text(inputs / "review.txt", "the soup was cold"),
        write_json(inputs / "row.json", {"age": 41}),
    ]


@pytest.fixture
def registries(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[list[Registry]]:
    opened = [
        Registry.open(url=url, patterns_dir=tmp_path / name, user="tester")
        for name, url in (
            ("sqlite-patterns", f"sqlite:///{tmp_path}/registry.db"),
            ("postgres-patterns", postgres_server.create_database()),
        )
    ]
    yield opened
    for registry in opened:
        registry.close()


def wipe(registry: Registry) -> None:
    """Empty every table (ids restart at 1 on both backends) and the store."""
    names = [table.name for table in SQLModel.metadata.sorted_tables]
    with registry.engine.begin() as connection:
        if registry.engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(names):
                connection.execute(sa.text(f"DELETE FROM {name}"))
    shutil.rmtree(registry.store.root, ignore_errors=True)


def contents(registry: Registry) -> dict[str, Any]:
    return {
        "problems": [p.model_dump(exclude=TIMESTAMPS) for p in registry.problems.list()],
        "patterns": [p.model_dump(exclude=TIMESTAMPS) for p in registry.patterns.list()],
        "models": [m.model_dump(exclude=TIMESTAMPS) for m in registry.models.list()],
        "files": sorted(
            str(path.relative_to(registry.store.root))
            for path in registry.store.root.rglob("*")
            if path.is_file()
        ),
    }


def outcome(call: Callable[[Registry], Any], registry: Registry) -> Any:
    try:
        returned = call(registry)
    except RegistryError as exc:
        return ("refused", type(exc).__name__, str(exc))
    if hasattr(returned, "model_dump"):
        return returned.model_dump(exclude=TIMESTAMPS)
    if hasattr(returned, "added"):
        return [
            [view.model_dump(exclude=TIMESTAMPS) for view in getattr(returned, field)]
            for field in ("added", "skipped")
        ]
    return returned


def test_sqlite_and_postgresql_agree_on_any_sequence_of_operations(
    registries: list[Registry], files: list[Path]
) -> None:
    sqlite, postgres = registries
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in files]

    class Agreement(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            wipe(sqlite)
            wipe(postgres)

        def both(self, call: Callable[[Registry], Any]) -> None:
            assert outcome(call, sqlite) == outcome(call, postgres)

        @rule(
            slug=SLUGS,
            rate=st.sampled_from([None, 0.0, 0.25, 1.0, 1.5]),
            tags=st.lists(st.sampled_from(["bias", "Texture", " night "]), max_size=2),
        )
        def add_problem(self, slug: str, rate: float | None, tags: list[str]) -> None:
            self.both(lambda r: r.problems.add(slug, max_error_rate=rate, tags=tags))

        @rule(slug=SLUGS, status=st.sampled_from(["open", "fixed", "retired", "closed"]))
        def edit_problem(self, slug: str, status: str) -> None:
            self.both(lambda r: r.problems.edit(slug, status=status, title=f"{slug} edited"))

        @rule(
            slug=SLUGS,
            chosen=st.lists(st.integers(0, len(files) - 1), min_size=1, max_size=3),
            expectation=EXPECTATIONS,
            polarity=st.sampled_from(Polarity),
            skip_existing=st.booleans(),
        )
        def add_patterns(
            self,
            slug: str,
            chosen: list[int],
            expectation: Expectation,
            polarity: Polarity,
            skip_existing: bool,
        ) -> None:
            new = [NewPattern(files[i], expectation, polarity) for i in chosen]
            self.both(lambda r: r.patterns.add(slug, new, skip_existing=skip_existing))

        @rule(slug=SLUGS, index=st.integers(0, len(files) - 1), expectation=EXPECTATIONS)
        def relabel(self, slug: str, index: int, expectation: Expectation) -> None:
            ref = digests[index][:12]
            self.both(lambda r: r.patterns.relabel(ref, expectation, problem=slug))

        @rule(slug=SLUGS, index=st.integers(0, len(files) - 1))
        def remove(self, slug: str, index: int) -> None:
            self.both(lambda r: r.patterns.remove(digests[index][:12], problem=slug))

        @rule(name=NAMES, version=VERSIONS, auc=st.sampled_from([0.5, 0.91, 1.0]))
        def register(self, name: str, version: str, auc: float) -> None:
            self.both(
                lambda r: r.models.register(name, version, loader="m:load", metrics={"auc": auc})
            )

        @rule(name=NAMES, version=VERSIONS)
        def promote(self, name: str, version: str) -> None:
            self.both(lambda r: r.models.promote(name, version))

        def teardown(self) -> None:
            # Once per sequence rather than after every step: listing everything on both
            # backends costs more than the step itself, and every step's outcome is compared.
            assert contents(sqlite) == contents(postgres)

    run_state_machine_as_test(
        Agreement,
        settings=settings(
            max_examples=10,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
