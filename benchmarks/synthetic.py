"""A synthetic registry of any size, built in seconds rather than by replaying a model.

Problems, patterns and model versions go through the registry API, exactly as a user adds them, so
the pattern store, the expected labels and the schema are the real thing. The results, the big
table (1,000 problems x 15 patterns x 100 versions = 1.5 M rows), are written straight into the
database in one bulk transaction: ``executemany`` on SQLite, ``COPY`` on PostgreSQL. Replaying a
model to get them would take minutes and measure replay, not the reports that read them.

Every scoring rule is exercised: each problem holds exact, any-of, forbidden and range
expectations, positive and negative patterns, PNG and JSON inputs; about 1% of the answers are
errors and about 1% are missing (never replayed), and later versions agree with the expectations
more often::

    from synthetic import build_registry
    info = build_registry(Path(workdir), "sqlite:///reg.db", problems=1000, versions=100)

The same ``seed`` gives the same registry, on either backend.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from problem_registry.enums import Polarity
from problem_registry.expectations import Expectation
from problem_registry.store.patterns import NewPattern
from problem_registry.store.registry import Registry

PATTERNS_PER_PROBLEM = 15
LABELS = tuple(str(n) for n in range(10))
ERRORED_SHARE = 0.01
MISSING_SHARE = 0.01
RESULT_COLUMNS = ("model_version_id", "file_id", "predicted", "value", "confidence", "error")


@dataclass(frozen=True)
class SyntheticRegistry:
    """What was built, and where; ``registry`` is left open for the caller (close it)."""

    registry: Registry
    url: str
    patterns_dir: Path
    problems: int
    patterns: int
    versions: int
    results: int
    setup_seconds: float  # problems, patterns and versions through the API
    results_seconds: float  # the bulk insert of the results


def build_registry(
    workdir: Path,
    url: str,
    problems: int,
    versions: int,
    *,
    results: bool = True,
    model: str = "synthetic",
    loader: str = "synthetic_model:load",
    artifact: Callable[[int], Path | None] | None = None,
    seed: int = 0,
) -> SyntheticRegistry:
    """Build ``problems`` x 15 patterns and ``versions`` versions of ``model`` in an empty ``url``.

    ``workdir`` receives the input files and the pattern store (``workdir/patterns``). Versions
    are registered as ``model@v0``, ``v1``... with ``loader`` and ``artifact(i)`` (neither is
    loaded here), so a caller that wants to replay them passes a real loader and
    ``results=False``. With ``results`` every version gets an answer on every pattern file except
    the missing ~1%.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    registry = Registry.open(url=url, patterns_dir=workdir / "patterns", user="synthetic")
    inputs = workdir / "inputs"
    inputs.mkdir(exist_ok=True)
    for p in range(problems):
        slug = f"problem-{p:04d}"
        registry.problems.add(slug, max_error_rate=0.3, allowed_regressions=p % 3)
        new = [
            _new_pattern(inputs / f"{slug}-{i:02d}", i, rng) for i in range(PATTERNS_PER_PROBLEM)
        ]
        registry.patterns.add(slug, new)
    for v in range(versions):
        path = artifact(v) if artifact is not None else None
        registry.models.register(model, f"v{v}", loader=loader, artifact=path)
    setup = time.perf_counter() - started

    started = time.perf_counter()
    stored = _insert_results(registry, versions, rng) if results else 0
    return SyntheticRegistry(
        registry=registry,
        url=url,
        patterns_dir=workdir / "patterns",
        problems=problems,
        patterns=problems * PATTERNS_PER_PROBLEM,
        versions=versions,
        results=stored,
        setup_seconds=setup,
        results_seconds=time.perf_counter() - started,
    )


def _new_pattern(stem: Path, index: int, rng: np.random.Generator) -> NewPattern:
    """Pattern ``index`` of a problem: its expectation shape and polarity follow from the index.

    0-8 exact, 9-10 any-of, 11-12 forbidden, 13-14 range; 0-9 positive, 10-14 negative; every
    third input is JSON, the rest 8x8 PNGs. Random content, so no two patterns share a file.
    """
    label = str(rng.choice(LABELS))
    if index < 9:
        expectation = Expectation.exact(label)
    elif index < 11:
        expectation = Expectation.any_of([label, str((int(label) + 1) % 10)])
    elif index < 13:
        expectation = Expectation.none_of([label])
    else:
        low = float(rng.integers(0, 7))
        expectation = Expectation.between(low, low + 3)
    if index % 3 == 2:
        path = stem.with_suffix(".json")
        features = rng.normal(size=8).round(4).tolist()
        path.write_text(json.dumps({"features": features}), encoding="utf-8")
    else:
        path = stem.with_suffix(".png")
        pixels = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue())
    polarity = Polarity.positive if index < 10 else Polarity.negative
    return NewPattern(path, expectation, polarity=polarity)


def _insert_results(registry: Registry, versions: int, rng: np.random.Generator) -> int:
    """Every version's answers in one transaction, through the driver's fastest bulk path."""
    with registry.writing() as session:
        connection = session.connection()
        # Per file, the label a good model gives: the first expected label (a range's lower bound).
        hints = {
            int(file_id): int(float(hint))
            for file_id, hint in connection.exec_driver_sql(
                "SELECT p.file_id, coalesce(min(el.label), CAST(min(p.expect_min) AS TEXT))"
                " FROM pattern p"
                " LEFT JOIN expected_label el ON el.pattern_id = p.id GROUP BY p.file_id"
            )
        }
        version_ids = [
            int(n)
            for (n,) in connection.exec_driver_sql("SELECT id FROM model_version ORDER BY id")
        ][-versions:]
        rows = list(_result_rows(hints, version_ids, rng))
        driver: Any = connection.connection.driver_connection
        columns = ", ".join(RESULT_COLUMNS)
        if connection.dialect.name == "postgresql":
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY result ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in RESULT_COLUMNS)
            driver.executemany(f"INSERT INTO result ({columns}) VALUES ({marks})", rows)
    if registry.engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of a bulk load; measuring before it would measure
        # the planner guessing row counts.
        with registry.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    return len(rows)


def _result_rows(
    hints: dict[int, int], version_ids: list[int], rng: np.random.Generator
) -> Iterator[tuple[Any, ...]]:
    """(version, file, predicted, value, confidence, error) for every version and file.

    Version i of n gives a file's hint label with a probability rising from 0.3 to 0.8, and a
    uniform label otherwise, so error rates differ between versions and problems; how each answer
    is scored is left to the registry.
    """
    file_ids = sorted(hints)
    hinted = np.array([hints[file_id] for file_id in file_ids])
    count = len(file_ids)
    for position, version_id in enumerate(version_ids):
        share = 0.3 + 0.5 * position / max(len(version_ids) - 1, 1)
        labels = np.where(
            rng.random(count) < share, hinted, rng.integers(0, len(LABELS), size=count)
        )
        confidence = rng.random(count).round(3)
        fate = rng.random(count)
        for file_id, label, sure, roll in zip(
            file_ids, labels.tolist(), confidence.tolist(), fate.tolist(), strict=True
        ):
            if roll < MISSING_SHARE:
                continue
            if roll < MISSING_SHARE + ERRORED_SHARE:
                yield (version_id, file_id, None, None, None, "RuntimeError: synthetic failure")
            else:
                yield (version_id, file_id, LABELS[label], float(label), sure, None)
