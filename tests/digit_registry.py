"""A real registry of digit problems, with three real scikit-learn versions, for replay tests.

``tests/conftest.py`` registers its fixtures for every test module. ``digits`` builds, on the
backend of the ``registry`` fixture, four problems over held-out ``load_digits`` rows, covering
all four expectation kinds, and registers ``digits@v1..v3``. Two problems share one digit, so one
pattern file serves two problems.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import make_url

from problem_registry.enums import LoaderKind, Polarity
from problem_registry.expectations import Expectation
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry
from tests.models import digits as digit_models
from tests.models.digits import Trained, train, write_digit

LOADER = "tests.models.digits:load"


@dataclass(frozen=True)
class Case:
    """One pattern: which held-out row, what it expects, and how to judge a prediction."""

    index: int
    expectation: Expectation
    polarity: Polarity

    def is_right(self, predicted: int) -> bool:
        return self.expectation.is_met(str(predicted), float(predicted))


@dataclass
class Digits:
    registry: Registry
    trained: Trained
    cases: dict[str, list[Case]]  # problem slug -> its patterns, in the order added
    inputs: Path

    def file_of(self, index: int) -> Path:
        return self.inputs / f"digit-{index}.png"

    def expected_error_rate(self, slug: str, version: str) -> float:
        """What scikit-learn itself says, on exactly the rows of the problem's patterns."""
        cases = self.cases[slug]
        predicted = self.trained.models[version].predict(
            self.trained.test_x[[c.index for c in cases]]
        )
        return sum(not c.is_right(p) for c, p in zip(cases, predicted, strict=True)) / len(cases)


def _first(labels: np.ndarray, digit: int, count: int, skip: int = 0) -> list[int]:
    return [int(i) for i in np.flatnonzero(labels == digit)[skip : skip + count]]


def build(registry: Registry, trained: Trained, inputs: Path) -> Digits:
    y = trained.test_y
    exact = Expectation.exact
    cases = {
        "threes-vs-eights": [Case(i, exact("3"), Polarity.positive) for i in _first(y, 3, 7)]
        + [Case(i, exact("8"), Polarity.negative) for i in _first(y, 8, 5)],
        "sevens-vs-ones": [Case(i, exact("7"), Polarity.positive) for i in _first(y, 7, 6)]
        + [Case(i, exact("1"), Polarity.negative) for i in _first(y, 1, 4)],
        "nines-not-fours": [
            Case(i, Expectation.any_of(["9", "4"]), Polarity.positive) for i in _first(y, 9, 5)
        ]
        + [Case(i, Expectation.none_of(["9"]), Polarity.negative) for i in _first(y, 4, 5)],
        # Shares the first three with threes-vs-eights: the same file in two problems.
        "threes-as-numbers": [
            Case(i, Expectation.between(2.5, 3.5), Polarity.positive) for i in _first(y, 3, 5)
        ],
    }
    gates = {"threes-vs-eights": 0.2, "sevens-vs-ones": 0.3, "nines-not-fours": 0.25}
    for slug, problem_cases in cases.items():
        registry.problems.add(slug, max_error_rate=gates.get(slug))
        new = [
            NewPattern(
                write_digit(inputs / f"digit-{c.index}.png", trained.test_x[c.index]),
                c.expectation,
                c.polarity,
            )
            for c in problem_cases
        ]
        registry.patterns.add(slug, new)
    for version, artifact in trained.artifacts.items():
        registry.models.register("digits", version, loader=LOADER, artifact=artifact)
    return Digits(registry, trained, cases, inputs)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The three digit versions, trained once per session (per xdist worker)."""
    return train(tmp_path_factory.mktemp("digit-models"))


@dataclass(frozen=True)
class _Template:
    """A registry built once per backend (per xdist worker), cloned into each test's database."""

    location: str  # the SQLite file, or the PostgreSQL database name
    patterns: Path
    inputs: Path
    cases: dict[str, list[Case]]


_TEMPLATES: dict[str, _Template] = {}


def _template(
    backend: str, trained: Trained, request: pytest.FixtureRequest, folder: Path
) -> _Template:
    if backend not in _TEMPLATES:
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'template.db'}"
        else:
            url = request.getfixturevalue("postgres_server").create_database()
        template = Registry.open(url=url, patterns_dir=folder / "patterns", user="tester")
        try:
            built = build(template, trained, folder / "inputs")
        finally:
            template.close()
        location = str(folder / "template.db") if backend == "sqlite" else make_url(url).database
        _TEMPLATES[backend] = _Template(location, folder / "patterns", built.inputs, built.cases)  # type: ignore[arg-type]
    return _TEMPLATES[backend]


@pytest.fixture
def digits(
    registry: Registry,
    trained: Trained,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Digits:
    """The digit registry, on the ``registry`` fixture's own database: a copy of a template built
    once per backend, since building it (37 verified files, four problems) costs a second."""
    digit_models.CALLS.clear()
    digit_models.FRAGILE.clear()
    digit_models.HOSTILE.clear()
    backend = registry.engine.dialect.name
    template = _template(backend, trained, request, tmp_path_factory.mktemp(f"digits-{backend}"))
    registry.engine.dispose()  # no connection may stay open on the database being replaced
    if backend == "sqlite":
        source = sqlite3.connect(template.location)
        target = sqlite3.connect(str(registry.engine.url.database))
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
    else:
        server = request.getfixturevalue("postgres_server")
        name = registry.engine.url.database
        server.execute(f'DROP DATABASE "{name}"')
        server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.location}"')
    shutil.copytree(template.patterns, registry.store.root, dirs_exist_ok=True)
    return Digits(registry, trained, template.cases, template.inputs)


def register_answers(
    registry: Registry, name: str, version: str, answers: dict[str, object], folder: Path
) -> Path:
    """A predictions-file version answering exactly ``answers`` (pattern sha256 -> output)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for sha, output in answers.items():
            handle.write(json.dumps({"sha256": sha, "prediction": output}) + "\n")
    registry.models.register(
        name, version, loader=str(path), loader_kind=LoaderKind.predictions, artifact=path
    )
    return path
